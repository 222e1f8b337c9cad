"""Zero-shot classification (paper Sec. 5.3, Table 2): binary per class, and CheXpert 5x200.

Both are pure functions of L2-normalised image embeddings and a text embedder
``embed_texts(texts) -> array`` (one unit-norm row per text).

- :func:`zero_shot_binary`: per class, the image is scored against a positive prompt ensemble
  ("{c}", "There is evidence of {c}.", ...) and a negative one ("No {c}", ...); each ensemble is
  the mean of its prompts' embeddings, renormalised; the score is the softmax over the pair,
  ``P(positive) = sigmoid((s_pos - s_neg) / temperature)``. AUC per class and its mean.
- :func:`zero_shot_5x200`: five-way accuracy on CheXpert 5x200; a class's score is the mean
  cosine similarity over its prompts (every severity x subtype x location combination).

Prompt wording lives beside this module: ``zeroshot_prompts.json`` and
``chexpert5x200_prompts.json``.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.metrics import roc_curve

# RSNA-ab's labels live with the RSNA reader; re-exported here, where RSNA-ab is scored.
from clip2clinic.data.datasets.rsna import RSNA_AB_CLASSES as RSNA_AB_CLASSES
from clip2clinic.data.datasets.rsna import rsna_ab_labels as rsna_ab_labels
from clip2clinic.evaluation.classwise import (
    CLASS_AUC,
    MEAN_CLASS_ACCURACY,
    auc_strata,
    finite_image_rows,
    known,
    label_matrix,
    mean_auc_estimate,
    warn_undefined,
)
from clip2clinic.evaluation.results import (
    N_BOOTSTRAP,
    Estimate,
    TaskResult,
    bootstrap,
    proportion_estimate,
)
from clip2clinic.evaluation.tasks import Scored, Task, with_ids
from clip2clinic.observations import FINDINGS, slug

if TYPE_CHECKING:
    from clip2clinic.evaluation.sources import Context, Corpus, ReaderData

TextEmbedder = Callable[[Sequence[str]], np.ndarray]

BINARY_PROMPTS_FILE = Path(__file__).with_name("zeroshot_prompts.json")
CXR_CLIP_PROMPTS_FILE = Path(__file__).with_name("zeroshot_prompts_cxr_clip.json")
FIVE_BY_200_PROMPTS_FILE = Path(__file__).with_name("chexpert5x200_prompts.json")
FIVE_BY_200_CLASSES = ("Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion")



@dataclass(frozen=True)
class PromptTemplates:
    """Binary prompt ensembles: templates with ``{c}``, class wording, special cases, and
    per-dataset special cases (``datasets``: reader name -> class -> pair). ``verbatim``: the
    class name fills ``{c}`` as the dataset spells it ('_' read as a space), not lower-cased."""

    positive: tuple[str, ...]
    negative: tuple[str, ...]
    wording: Mapping[str, str]
    special: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]]
    skip: frozenset[str]
    verbatim: bool = False
    datasets: Mapping[str, Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]]] = (
        field(default_factory=dict))

    @classmethod
    def load(cls, path: str | Path = BINARY_PROMPTS_FILE) -> PromptTemplates:
        """Read a prompt file in the layout of ``zeroshot_prompts.json`` (or
        ``zeroshot_prompts_cxr_clip.json``)."""
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(
            positive=tuple(data["positive"]),
            negative=tuple(data["negative"]),
            wording={_key(k): v for k, v in data.get("wording", {}).items()},
            special=_pairs(data.get("special", {})),
            skip=frozenset(_key(k) for k in data.get("skip", ())),
            verbatim=bool(data.get("verbatim", False)),
            datasets={name.lower(): _pairs(pairs)
                      for name, pairs in data.get("datasets", {}).items()},
        )  # fmt: skip

    def for_dataset(self, reader: str) -> PromptTemplates:
        """These templates with reader ``reader``'s own pairs (e.g. BioViL's for RSNA) added to
        the special cases."""
        own = self.datasets.get(reader.lower())
        return replace(self, special={**self.special, **own}) if own else self

    def prompts(self, class_name: str) -> tuple[list[str], list[str]] | None:
        """The positive and negative prompts of a class; None when it has no meaningful prompt."""
        key = _key(class_name)
        if key in self.skip:
            return None
        if key in self.special:
            positive, negative = self.special[key]
            return list(positive), list(negative)
        name = re.sub(r"\s+", " ", class_name.replace("_", " ")).strip()
        words = self.wording.get(key, name if self.verbatim else key)
        return (
            [_sentence(t.format(c=words)) for t in self.positive],
            [_sentence(t.format(c=words)) for t in self.negative],
        )


def _pairs(data: Mapping[str, Mapping[str, Sequence[str]]],
           ) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:  # fmt: skip
    return {_key(k): (tuple(v["positive"]), tuple(v["negative"])) for k, v in data.items()}


def _key(class_name: str) -> str:
    return re.sub(r"\s+", " ", class_name.replace("_", " ")).strip().lower()


def _sentence(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text[:1].upper() + text[1:]


@cache
def default_templates() -> PromptTemplates:
    """The prompts of ``zeroshot_prompts.json`` (read once)."""
    return PromptTemplates.load()


#: ``prompts`` protocol choice -> its prompt file.
PROMPT_FILES = {"ensemble": BINARY_PROMPTS_FILE, "cxr_clip": CXR_CLIP_PROMPTS_FILE}


@cache
def protocol_templates(choice: str) -> PromptTemplates:
    """The binary prompts of a ``prompts`` protocol choice (``cxr_clip`` or ``ensemble``)."""
    return PromptTemplates.load(PROMPT_FILES[choice])


def embed_prompt_sets(
    prompt_sets: Sequence[Sequence[str]], embed_texts: TextEmbedder
) -> np.ndarray:
    """One embedding per prompt set: its prompts' mean embedding, renormalised (one call to
    ``embed_texts`` for all prompts)."""
    flat = [p for prompts in prompt_sets for p in prompts]
    vectors = _embed(flat, embed_texts)
    bounds = np.cumsum([0, *(len(p) for p in prompt_sets)])
    means = np.stack([vectors[a:b].mean(axis=0) for a, b in itertools.pairwise(bounds)])
    return means / np.linalg.norm(means, axis=1, keepdims=True)


def _embed(texts: Sequence[str], embed_texts: TextEmbedder) -> np.ndarray:
    vectors = np.asarray(embed_texts(list(texts)), dtype=float)
    if vectors.ndim != 2 or len(vectors) != len(texts):
        raise ValueError(
            f"embed_texts returned shape {vectors.shape} for {len(texts)} texts; "
            "expected one row per text"
        )
    return vectors


def binary_scores(
    image_emb: np.ndarray,
    class_names: Sequence[str],
    embed_texts: TextEmbedder,
    templates: PromptTemplates | None = None,
    temperature: float = 0.1,
) -> np.ndarray:
    """``n x C`` probabilities P("{c}" | image) of the pair ("{c}", "No {c}"); NaN columns for
    classes without prompts."""
    templates = templates or default_templates()
    image_emb = np.asarray(image_emb, dtype=float)
    scores = np.full((len(image_emb), len(class_names)), math.nan)
    phrased = [(i, templates.prompts(name)) for i, name in enumerate(class_names)]
    phrased = [(i, p) for i, p in phrased if p is not None]
    if not phrased:
        return scores
    ensembles = embed_prompt_sets([s for _, pair in phrased for s in pair], embed_texts)
    similarity = image_emb @ ensembles.T  # n x 2k: positive, negative, positive, ...
    columns = [i for i, _ in phrased]
    scores[:, columns] = expit((similarity[:, 0::2] - similarity[:, 1::2]) / temperature)
    return scores


def zero_shot_binary(
    image_emb: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    embed_texts: TextEmbedder,
    dataset: str,
    templates: PromptTemplates | None = None,
    temperature: float = 0.1,
    seed: int = 0,
    n_boot: int = N_BOOTSTRAP,
    groups: np.ndarray | None = None,
) -> TaskResult:
    """Binary zero-shot classification of every class: AUC per class and their mean.

    ``labels``: ``n x C`` (or ``n`` for one class), 1 positive, 0 negative; NaN or -1 leaves the
    image out for that class (counted in the table's ``n_excluded``). A class with no positives
    (or no negatives) gets NaN and a warning. Metrics: ``zeroshot_mean_auc`` (mean over classes
    with a defined AUC; interval from resampling images and recomputing the mean) and
    ``zeroshot_mean_acc`` (the prompt pair's own decision, P > 0.5, per class, averaged);
    ``evaluate`` keys them by dataset. The table has one row per class. ``groups`` (patient
    ids, one per image) make the intervals resample patients; AUC intervals are stratified so
    each class keeps its positives, accuracies get Wilson intervals. The per-case results
    have one row per image and class: its ``label`` (NaN: left out) and ``score``.
    """
    image_emb, finite = finite_image_rows(image_emb, "zero-shot")
    labels = label_matrix(labels, len(class_names), len(image_emb))
    labels = np.where(finite[:, None], labels, math.nan)
    patients = np.arange(len(labels)) if groups is None else np.asarray(groups)
    templates = templates or default_templates()
    scores = binary_scores(image_emb, class_names, embed_texts, templates, temperature)
    judged = known(labels) & ~np.isnan(scores)
    correct = np.where(judged, (scores > 0.5) == (labels == 1), math.nan)

    rows = []
    for c, name in enumerate(class_names):
        usable = known(labels[:, c])
        row = {
            "dataset": dataset,
            "class": name,
            "n": int(usable.sum()),
            "n_positive": int((labels[usable, c] == 1).sum()),
            "n_excluded": int((~usable).sum()),
        }
        if np.isnan(scores[:, c]).all():
            row["status"] = "no prompt"
            warnings.warn(f"{dataset}: class {name!r} has no zero-shot prompt; NaN", stacklevel=2)
        else:
            row["status"] = warn_undefined(f"{dataset} {name}", labels[:, c])
        mine = patients[usable]
        auc = bootstrap(CLASS_AUC, [labels[usable, c:c + 1], scores[usable, c:c + 1]], n_boot,
                        seed, groups=mine, strata=auc_strata(labels[usable, c], mine))
        acc = proportion_estimate(correct[usable, c], mine)
        row |= _columns("auc", auc) | _columns("acc", acc)
        rows.append(row)

    metrics = {
        "zeroshot_mean_auc": mean_auc_estimate(labels, scores, seed, n_boot, groups),
        "zeroshot_mean_acc": _mean_accuracy_estimate(correct, seed, n_boot, groups),
    }
    n, n_classes = scores.shape
    cases = pd.DataFrame({"image": np.repeat(np.arange(n), n_classes),
                          "class": np.tile(np.asarray(class_names, dtype=object), n),
                          "label": labels.ravel(), "score": scores.ravel()})  # fmt: skip
    return TaskResult(metrics, pd.DataFrame(rows), cases)


def _mean_accuracy_estimate(correct: np.ndarray, seed: int, n_boot: int,
                            groups: np.ndarray | None) -> Estimate:  # fmt: skip
    """Mean over classes (with judged cases) of the per-class accuracy; NaN = not judged."""
    estimate = bootstrap(MEAN_CLASS_ACCURACY, [correct], n_boot, seed, groups=groups)
    n = int((~np.isnan(correct)).any(axis=1).sum())
    return Estimate(estimate.value, estimate.low, estimate.high, n)


def _columns(prefix: str, estimate: Estimate) -> dict[str, float]:
    return {prefix: estimate.value, f"{prefix}_low": estimate.low, f"{prefix}_high": estimate.high}


#: ``five_by_200`` protocol choices: keep repeated prompt combinations (CXR-CLIP) or not.
FIVE_BY_200_PROMPT_SETS = ("cxr_clip", "unique")


def five_by_200_prompts(
    path: str | Path = FIVE_BY_200_PROMPTS_FILE,
    per_class: int | None = None,
    seed: int = 0,
    prompt_set: str = "unique",
) -> dict[str, list[str]]:
    """Class -> prompts: every combination of the class's word lists (blanks dropped), each
    distinct prompt once (``prompt_set`` "unique") or repeats kept as CXR-CLIP generates them
    ("cxr_clip": a word listed twice makes its prompts weigh twice in the class's mean), or
    ``per_class`` of them drawn with ``seed`` (all when fewer)."""
    if prompt_set not in FIVE_BY_200_PROMPT_SETS:
        raise ValueError(f"prompt_set must be one of {FIVE_BY_200_PROMPT_SETS}, "
                         f"got {prompt_set!r}")
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    rng = np.random.default_rng(seed)
    prompts = {}
    for name, word_lists in data.items():
        if name.startswith("_"):
            continue
        combos = (" ".join(w for w in words if w) for words in itertools.product(*word_lists))
        every = [re.sub(r"\s+", " ", c).strip() for c in combos]
        if prompt_set == "unique":
            every = list(dict.fromkeys(every))
        if per_class is not None and per_class < len(every):
            every = [every[i] for i in sorted(rng.choice(len(every), per_class, replace=False))]
        prompts[name] = every
    return prompts


def zero_shot_5x200(
    image_emb: np.ndarray,
    class_index: np.ndarray,
    embed_texts: TextEmbedder,
    class_names: Sequence[str] = FIVE_BY_200_CLASSES,
    prompts_per_class: int | None = None,
    prompt_seed: int = 0,
    seed: int = 0,
    n_boot: int = N_BOOTSTRAP,
    groups: np.ndarray | None = None,
    prompt_set: str = "unique",
) -> TaskResult:
    """CheXpert 5x200 accuracy: each image goes to the class whose prompts it is most similar
    to on average (mean cosine similarity over the class's prompts).

    ``class_index``: the true class of each image, an index into ``class_names``. All prompts
    are used unless ``prompts_per_class`` asks for a seeded sample; ``prompt_set``: see
    :func:`five_by_200_prompts`. Metric ``chexpert5x200_acc``
    with its Wilson interval (by patient with ``groups``); the table has one row per true class
    (its accuracy and where its images went). ``seed`` and ``n_boot`` are kept for callers;
    accuracies need no bootstrap. The per-case results have one row per image: its ``class``,
    the ``predicted`` one, ``correct`` and its mean similarity to each class's prompts.
    """
    image_emb, finite = finite_image_rows(image_emb, "zero-shot")
    truth = np.asarray(class_index)
    if truth.shape != (len(image_emb),) or truth.dtype.kind not in "iu":
        raise ValueError(
            f"class_index must be {len(image_emb)} integers (one per image), "
            f"got shape {truth.shape} of {truth.dtype}"
        )
    bad = np.flatnonzero((truth < 0) | (truth >= len(class_names)))
    if bad.size:
        raise ValueError(f"class_index row {bad[0]}: {truth[bad[0]]} is not a class index")
    every = five_by_200_prompts(per_class=prompts_per_class, seed=prompt_seed,
                                prompt_set=prompt_set)
    missing = [c for c in class_names if c not in every]
    if missing:
        raise ValueError(f"no 5x200 prompts for class {missing[0]!r}; known: {list(every)}")
    prompt_lists = [every[c] for c in class_names]
    vectors = _embed([p for prompts in prompt_lists for p in prompts], embed_texts)
    bounds = np.cumsum([0, *(len(p) for p in prompt_lists)])
    similarity = image_emb[finite] @ vectors.T
    class_scores = np.stack(
        [similarity[:, a:b].mean(axis=1) for a, b in itertools.pairwise(bounds)], axis=1
    )
    truth = truth[finite]
    patients = (np.arange(len(finite)) if groups is None else np.asarray(groups))[finite]
    predicted = class_scores.argmax(axis=1)
    correct = (predicted == truth).astype(float)

    rows = []
    for k, name in enumerate(class_names):
        mine = truth == k
        row = {"class": name, "n": int(mine.sum()), "n_prompts": len(prompt_lists[k])}
        row |= _columns("acc", proportion_estimate(correct[mine], patients[mine]))
        for j, other in enumerate(class_names):
            row[f"predicted_{slug(other)}"] = int((predicted[mine] == j).sum())
        rows.append(row)
    accuracy = proportion_estimate(correct, patients)
    cases = pd.DataFrame({
        "image": np.flatnonzero(finite), "class": [class_names[k] for k in truth],
        "predicted": [class_names[k] for k in predicted], "correct": correct.astype(bool),
        **{f"score_{slug(name)}": class_scores[:, k] for k, name in enumerate(class_names)},
    })  # fmt: skip
    return TaskResult({"chexpert5x200_acc": accuracy}, pd.DataFrame(rows), cases)


# --- runners -----------------------------------------------------------------------------------


def run_zeroshot(images: np.ndarray, labels: np.ndarray, classes: Sequence[str], name: str,
                 context: Context, groups: np.ndarray, ids: pd.DataFrame, reader: str = "",
                 notes: Mapping[str, object] | None = None) -> Scored:
    """:func:`zero_shot_binary` of one dataset with the protocol's prompts (``reader``'s own
    pairs where it has them) and the model's temperature, and its ROC points (task
    ``zeroshot_<name>``); ``ids``: the images' ids for the per-case results; ``notes``: what
    the dataset's protocol chose, recorded with the prompts used."""
    templates = protocol_templates(context.protocol.prompts).for_dataset(reader)
    result = zero_shot_binary(images, labels, classes, context.embed, name, templates,
                              temperature=context.temperature, seed=context.seed,
                              n_boot=context.n_boot, groups=groups)  # fmt: skip
    scores = binary_scores(images, classes, context.embed, templates, context.temperature)
    curves = roc_points(f"zeroshot_{name}", labels, scores, classes)
    used = {c: templates.prompts(c) for c in classes}
    record = {**(notes or {}), "prompts": context.protocol.prompts,
              "classes": {c: None if p is None else {"positive": p[0], "negative": p[1]}
                          for c, p in used.items()}}  # fmt: skip
    return Scored(name, with_ids(result, ids), curves, record)


def roc_points(task: str, labels: np.ndarray, scores: np.ndarray, classes: Sequence[str]):
    """ROC curve points (task, class, fpr, tpr) of every class with both label values."""
    frames = []
    for c, name in enumerate(classes):
        usable = np.isin(labels[:, c], (0, 1)) & ~np.isnan(scores[:, c])
        if len(np.unique(labels[usable, c])) < 2:
            continue
        fpr, tpr, _ = roc_curve(labels[usable, c], scores[usable, c])
        frames.append(pd.DataFrame({"task": task, "class": name, "fpr": fpr, "tpr": tpr}))
    return pd.concat(frames, ignore_index=True) if frames else None


def run_zeroshot_corpus(corpus: Corpus, context: Context) -> Iterator[Scored]:
    """Zero-shot over the 13 CheXpert findings of a manifest's scored split."""
    yield run_zeroshot(corpus.images, corpus.findings, FINDINGS, corpus.name, context,
                       corpus.patients, corpus.ids, notes={"blank_labels": "negative"})


def run_zeroshot_dataset(data: ReaderData, context: Context) -> Iterator[Scored]:
    """Zero-shot over a reader dataset's classes on its test split (every image when it has
    none), then RSNA-ab (``<name>_ab``: pneumonia against the other abnormal images) where the
    dataset has detailed classes. CheXpert 5x200 has its own task."""
    if data.is_five_by_200:
        return
    test = data.test
    patients, ids = data.patients[test], data.ids[test]
    yield run_zeroshot(data.images[test], data.labels[test], data.classes, data.name, context,
                       patients, ids, data.name, data.notes)
    ab = data.rsna_ab_labels()
    if ab is not None:
        yield run_zeroshot(data.images[test], ab[test], ["Pneumonia"], f"{data.name}_ab",
                           context, patients, ids, data.name, data.notes)


def run_chexpert5x200(data: ReaderData, context: Context) -> Iterator[Scored]:
    """CheXpert 5x200 accuracy of the ``chexpert5x200`` dataset (every listed image)."""
    if not data.is_five_by_200:
        return
    prompt_set = context.protocol.five_by_200
    result = zero_shot_5x200(
        data.images, data.labels.argmax(axis=1), context.embed, data.classes, seed=context.seed,
        n_boot=context.n_boot, groups=data.patients, prompt_set=prompt_set,
    )  # fmt: skip
    n_prompts = dict(zip(result.table["class"], result.table["n_prompts"].astype(int).tolist(),
                         strict=True))  # fmt: skip
    notes = {**data.notes, "prompts": prompt_set, "n_prompts": n_prompts,
             "prompt_source": "chexpert5x200_prompts.json (GLoRIA's word lists as in CXR-CLIP's "
                              "cxrclip/prompt/constants.py)"}  # fmt: skip
    yield Scored(data.name, with_ids(result, data.ids), notes=notes)


TASK = Task("zeroshot", on_corpus=run_zeroshot_corpus, on_dataset=run_zeroshot_dataset)
CHEXPERT5X200_TASK = Task("chexpert5x200", on_dataset=run_chexpert5x200)
