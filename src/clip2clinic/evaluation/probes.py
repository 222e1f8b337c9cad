"""Fine-tuned classification (paper Table 2, FT10 / FT100) as linear probes on frozen features.

Per class, a one-vs-rest logistic regression (scikit-learn, features standardised on the
training subset) is trained on a seeded share of the TRAIN split's patients (10% for FT10, all
for FT100), its regularisation ``C`` chosen from a small grid by AUC on the VALIDATION split,
and scored once on the TEST split. Test labels never reach the fit or the choice of ``C``.

Labels: 1 positive, 0 negative; NaN or -1 (uncertain) leave that image out for that class only
(in training, validation and test alike). A class whose training subset has fewer than
``min_examples`` positives or negatives is skipped for that seed (NaN and a warning).

Metric ``probe_ft<pct>_mean_auc`` (``evaluate`` keys it by dataset): per class the test AUC
averaged over seeds, then the mean over classes; the interval comes from resampling test images
and recomputing that same seed-averaged mean. FT100 trains on every patient, so its seeds would
repeat one deterministic fit: it runs once.
"""

from __future__ import annotations

import copy
import logging
import math
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from clip2clinic.evaluation.classwise import (
    CLASS_AUC,
    auc_strata,
    class_aucs,
    finite_image_rows,
    known,
    label_matrix,
    mean_auc_estimate,
    rank_auc,
)
from clip2clinic.evaluation.results import N_BOOTSTRAP, TaskResult, bootstrap
from clip2clinic.evaluation.tasks import Scored, Task, with_ids
from clip2clinic.observations import FINDINGS
from clip2clinic.vocabulary import SPLITS

if TYPE_CHECKING:
    from clip2clinic.evaluation.sources import Context, Corpus, ReaderData

log = logging.getLogger(__name__)

#: Regularisation strengths tried on the validation split.
C_GRID = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)
#: Used when the validation split cannot rank (one label value for the class).
FALLBACK_C = 1.0
DEFAULT_FRACTIONS = (0.1, 1.0)
DEFAULT_SEEDS = (0, 1, 2)


@dataclass(frozen=True)
class ProbeSplit:
    """One split's embeddings (``n x D``), labels (``n x C`` or ``n``) and optional patient ids."""

    embeddings: np.ndarray
    labels: np.ndarray
    groups: np.ndarray | None = None

    def checked(self, name: str, n_classes: int) -> ProbeSplit:
        """A copy with a 2-D float label matrix, images whose embedding is not finite left out
        (labels NaN, with a warning); a clear error when shapes disagree."""
        x, finite = finite_image_rows(self.embeddings, name)
        labels = label_matrix(self.labels, n_classes, len(x))
        labels = np.where(finite[:, None], labels, math.nan)
        groups = None if self.groups is None else np.asarray(self.groups)
        if groups is not None and groups.shape != (len(x),):
            raise ValueError(f"{name} groups have shape {groups.shape}, expected ({len(x)},)")
        return ProbeSplit(x, labels, groups)


def patient_subset(
    n: int, fraction: float, seed: int, groups: np.ndarray | None = None
) -> np.ndarray:
    """Boolean mask of a seeded ``fraction`` of the patients (``groups``; every row its own
    patient when None): all images of a chosen patient are in, all others out."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    groups = np.arange(n) if groups is None else np.asarray(groups)
    patients = np.unique(groups)
    count = max(1, round(fraction * len(patients)))
    chosen = np.random.default_rng(seed).choice(len(patients), count, replace=False)
    return np.isin(groups, patients[chosen])


def choose_c(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    c_grid: Sequence[float] = C_GRID,
    class_weight: str | None = None,
) -> tuple[Pipeline, float, float]:
    """Fit one model per ``C`` (features standardised on the training rows; each fit starts
    from the previous, smaller C's solution) and keep the one with the best validation AUC (the
    smallest ``C`` among ties). Returns (model, C, validation AUC); when validation has one
    label value, the model of ``FALLBACK_C`` with a NaN AUC."""
    scaler = StandardScaler().fit(x_train)
    x_fit, x_check = scaler.transform(x_train), scaler.transform(x_val)
    regression = LogisticRegression(class_weight=class_weight, max_iter=2000, warm_start=True)
    ranked = np.unique(y_val).size == 2
    best = None
    for c in sorted(c_grid) if ranked else [FALLBACK_C]:
        regression.set_params(C=c).fit(x_fit, y_train)
        score = (
            float(rank_auc(y_val, regression.decision_function(x_check))) if ranked else math.nan
        )
        if best is None or score > best[2]:
            best = (copy.deepcopy(regression), c, score)
    regression, c, score = best
    return make_pipeline(scaler, regression), c, score


def linear_probe(
    train: ProbeSplit,
    validate: ProbeSplit,
    test: ProbeSplit,
    class_names: Sequence[str],
    dataset: str,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    seeds: Sequence[int] = DEFAULT_SEEDS,
    c_grid: Sequence[float] = C_GRID,
    class_weight: str | None = None,
    min_examples: int = 5,
    seed: int = 0,
    n_boot: int = N_BOOTSTRAP,
) -> TaskResult:
    """Linear probes for each training ``fraction`` (0.1 -> FT10, 1.0 -> FT100).

    Metrics ``probe_ft<pct>_mean_auc``. The table has one row per setting, class and
    seed (chosen C, validation and test AUC, training counts, status) and one per setting and
    class with ``seed`` = "mean" (the seed-averaged test AUC, its interval and the seeds' sd).
    The per-case results have one row per test image, setting, class and seed: its ``label``
    and the probe's ``score`` (its decision function; NaN where the class was skipped).
    Patients shared by the training and test (or validation) split raise ValueError.
    """
    n_classes = len(class_names)
    train = train.checked("train", n_classes)
    validate = validate.checked("validate", n_classes)
    test = test.checked("test", n_classes)
    _check_disjoint(train, validate, "validate")
    _check_disjoint(train, test, "test")

    metrics, rows, cases = {}, [], []
    for fraction in fractions:
        setting = f"ft{round(fraction * 100)}"
        runs = seeds[:1] if fraction >= 1 else seeds
        scores = np.full((len(test.labels), n_classes, len(runs)), math.nan)
        for s, run_seed in enumerate(runs):
            subset = patient_subset(len(train.labels), fraction, run_seed, train.groups)
            for c, name in enumerate(class_names):
                row, scores[:, c, s] = _probe_class(
                    train,
                    validate,
                    test,
                    subset,
                    c,
                    f"{dataset} {setting} {name} seed {run_seed}",
                    c_grid,
                    class_weight,
                    min_examples,
                )
                rows.append(
                    {"dataset": dataset, "setting": setting, "class": name, "seed": run_seed, **row}
                )
        rows += _mean_rows(dataset, setting, class_names, test, scores, seed, n_boot)
        cases.append(_case_rows(setting, class_names, runs, test.labels, scores))
        metrics[f"probe_{setting}_mean_auc"] = mean_auc_estimate(
            test.labels, scores, seed, n_boot, test.groups
        )
    return TaskResult(metrics, pd.DataFrame(rows), pd.concat(cases, ignore_index=True))


def _case_rows(setting: str, class_names: Sequence[str], seeds: Sequence[int],
               labels: np.ndarray, scores: np.ndarray) -> pd.DataFrame:
    """One row per test image, class and seed: the ``label`` (NaN: left out) and the probe's
    decision ``score`` (NaN: the class was skipped for that seed)."""
    n, n_classes, n_seeds = scores.shape
    return pd.DataFrame({
        "image": np.repeat(np.arange(n), n_classes * n_seeds),
        "setting": setting,
        "class": np.tile(np.repeat(np.asarray(class_names, dtype=object), n_seeds), n),
        "seed": np.tile(np.asarray(seeds, dtype=np.int64), n * n_classes),
        "label": np.repeat(labels.ravel(), n_seeds),
        "score": scores.ravel(),
    })  # fmt: skip


def _check_disjoint(train: ProbeSplit, other: ProbeSplit, name: str) -> None:
    if train.groups is None or other.groups is None:
        return
    shared = np.intersect1d(train.groups, other.groups)
    if shared.size:
        raise ValueError(
            f"{shared.size} patients are in both the train and {name} split "
            f"(e.g. {shared[0]!r}); the probe would leak"
        )


def _probe_class(
    train: ProbeSplit,
    validate: ProbeSplit,
    test: ProbeSplit,
    subset: np.ndarray,
    c: int,
    label: str,
    c_grid: Sequence[float],
    class_weight: str | None,
    min_examples: int,
) -> tuple[dict, np.ndarray]:
    """Train, choose C and score one class; the table row and the test scores (NaN if skipped)."""
    rows = subset & known(train.labels[:, c])
    y = train.labels[rows, c]
    positives = int(y.sum())
    row = {
        "n_train": int(rows.sum()),
        "n_train_positive": positives,
        "n_train_patients": _count_patients(train.groups, rows),
    }
    missing = np.full(len(test.labels), math.nan)
    if min(positives, len(y) - positives) < min_examples:
        warnings.warn(
            f"{label}: {positives} positives and {len(y) - positives} negatives in the "
            f"training subset (fewer than {min_examples}); skipped, NaN",
            stacklevel=3,
        )
        return row | {
            "C": math.nan,
            "val_auc": math.nan,
            "test_auc": math.nan,
            "status": "too few training examples",
        }, missing
    val = known(validate.labels[:, c])
    model, chosen, val_auc = choose_c(
        train.embeddings[rows],
        y,
        validate.embeddings[val],
        validate.labels[val, c],
        c_grid,
        class_weight,
    )
    scores = model.decision_function(test.embeddings)
    tested = known(test.labels[:, c])
    test_auc = float(class_aucs(test.labels[:, [c]], scores[:, None])[0])
    status = "ok" if not math.isnan(val_auc) else "validation has one class: C fallback"
    if math.isnan(test_auc):
        status = "test has one class"
        warnings.warn(
            f"{label}: test AUC undefined (one class among {int(tested.sum())} cases); NaN",
            stacklevel=3,
        )
    return row | {"C": chosen, "val_auc": val_auc, "test_auc": test_auc, "status": status}, scores


def _count_patients(groups: np.ndarray | None, rows: np.ndarray) -> int:
    return int(rows.sum()) if groups is None else int(np.unique(groups[rows]).size)


def _mean_rows(
    dataset: str,
    setting: str,
    class_names: Sequence[str],
    test: ProbeSplit,
    scores: np.ndarray,
    seed: int,
    n_boot: int,
) -> list[dict]:
    """Per class: the seed-averaged test AUC with its bootstrap interval (by patient, stratified
    by label) and the seeds' sd."""
    rows = []
    for c, name in enumerate(class_names):
        column = test.labels[:, [c]]
        estimate = bootstrap(
            CLASS_AUC, [column, scores[:, [c], :]], n_boot, seed,
            groups=test.groups, strata=auc_strata(column, test.groups),
        )  # fmt: skip
        per_seed = [class_aucs(column, scores[:, [c], s])[0] for s in range(scores.shape[2])]
        trained = [a for a in per_seed if not math.isnan(a)]
        rows.append(
            {
                "dataset": dataset,
                "setting": setting,
                "class": name,
                "seed": "mean",
                "n_test": int(known(column).sum()),
                "n_test_positive": int((column == 1).sum()),
                "test_auc": estimate.value,
                "test_auc_low": estimate.low,
                "test_auc_high": estimate.high,
                "test_auc_seed_sd": float(np.std(trained, ddof=1))
                if len(trained) > 1
                else math.nan,
                "seeds": len(trained),
            }
        )
    return rows


# --- runners -----------------------------------------------------------------------------------



def run_probes(splits: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
               classes: Sequence[str], name: str, context: Context,
               test_ids: pd.DataFrame) -> Scored:  # fmt: skip
    """:func:`linear_probe` on ``splits`` (split -> embeddings, labels, patient ids) with the
    run's subset seeds, grid of C, seed and bootstrap resamples; ``test_ids``: the test
    images' ids for the per-case results."""
    train, validate, test = (ProbeSplit(*splits[s]) for s in SPLITS)
    result = linear_probe(train, validate, test, classes, name, seeds=context.probe_seeds,
                          c_grid=context.probe_c_grid, seed=context.seed, n_boot=context.n_boot)
    return Scored(name, with_ids(result, test_ids))


def run_probes_corpus(corpus: Corpus, context: Context) -> Iterator[Scored]:
    """Probes over the 13 findings of a manifest: fit on its train split, C chosen on its
    validate split, scored on ``corpus`` (the test split). Skipped, with a warning, when the
    run scores the validate split."""
    if context.split != "test":
        log.warning("probes skipped: they choose C on validate and score on test only")
        return
    splits = {"test": (corpus.images, corpus.findings, corpus.frame["patient_id"])}
    for split in ("train", "validate"):
        other = context.corpus(corpus.name, split)
        splits[split] = (other.images, other.findings, other.frame["patient_id"])
    yield run_probes(splits, FINDINGS, corpus.name, context, corpus.ids)


def run_probes_dataset(data: ReaderData, context: Context) -> Iterator[Scored]:
    """Probes over a reader dataset's classes where it has train, validate and test splits,
    then RSNA-ab (``<name>_ab``: pneumonia against the other abnormal images, normal images
    left out of every split) where the dataset has RSNA's detailed classes."""
    split = data.split
    if data.is_five_by_200 or not set(SPLITS) <= set(split):
        return
    patients = data.patients
    tasks = [(data.labels, data.classes, data.name)]
    ab = data.rsna_ab_labels()
    if ab is not None:
        tasks.append((ab, ["Pneumonia"], f"{data.name}_ab"))
    for labels, classes, name in tasks:
        splits = {s: (data.images[split == s], labels[split == s], patients[split == s])
                  for s in SPLITS}  # fmt: skip
        scored = run_probes(splits, classes, name, context, data.ids[split == "test"])
        yield scored._replace(notes=data.notes or None)


TASK = Task("probes", on_corpus=run_probes_corpus, on_dataset=run_probes_dataset)
