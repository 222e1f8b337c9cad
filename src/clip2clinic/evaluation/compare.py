"""``clip2clinic compare``: paired differences between evaluated runs on the cases they share.

Every run's ``evaluate`` wrote its per-case results (``<task>_<dataset>_cases.parquet``, named
in metrics.json). For each run against a baseline run, each task and dataset both have, the
cases are matched by their ids (patient, study, image, plus the task's own key columns) and
compared:

- accuracies (CXR-Align A/B, retrieval hits, adversarial pairs, normal detection, 5x200):
  the difference of the shares right, McNemar's exact test on the cases that are 0 or 1 in
  both runs;
- AUCs (zero-shot per class and their mean over the classes defined in both runs): DeLong;

each difference with a 95% percentile interval from a paired bootstrap that resamples
patients (:mod:`clip2clinic.evaluation.paired`). Runs sharing a variant name are seeds of it:
each seed is compared with the baseline variant's run of the same seed (else the baseline
run), and the variant's row is the mean per-seed difference with a t interval across seeds.
Holm's correction runs over every p-value of the table.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from clip2clinic.evaluation.classwise import auc_strata, class_aucs, rank_auc
from clip2clinic.evaluation.paired import (
    delong_mean_test,
    delong_test,
    holm,
    mcnemar,
    paired_difference,
    seed_interval,
)
from clip2clinic.evaluation.results import N_BOOTSTRAP, metric_key
from clip2clinic.evaluation.summary import check_fingerprints, load_metrics
from clip2clinic.evaluation.tasks import ID_COLUMNS
from clip2clinic.io import InputError
from clip2clinic.observations import slug
from clip2clinic.run_dir import EvaluationDir

log = logging.getLogger(__name__)

#: Per task with per-case results: the columns besides the ids that identify a case row.
CASE_KEYS: dict[str, tuple[str, ...]] = {
    "cxr_align": ("case_id",), "retrieval": (), "adversarial": ("kind", "positive", "adversarial"),
    "normal_detection": (), "zeroshot": ("class",), "chexpert5x200": (),
}  # fmt: skip
#: Accuracies compared per task: metric name -> (0/1 outcome column, row filter or None).
ACCURACIES: dict[str, dict[str, tuple[str, Callable[[pd.DataFrame], pd.Series] | None]]] = {
    "cxr_align": {"cxr_align_a": ("correct_a", None), "cxr_align_b": ("correct_b", None)},
    "retrieval": {"retrieval_r1": ("hit_at_1", None), "retrieval_top5": ("hit_at_5", None),
                  "retrieval_r10": ("hit_at_10", None)},
    "adversarial": {"adversarial_acc": ("right", lambda f: _in_headline(f)),
                    "adversarial_acc_all": ("right", None),
                    "adversarial_acc_negation": ("right", lambda f: f["kind"] == "negated"),
                    "adversarial_acc_hallucination":
                        ("right", lambda f: f["kind"] == "hallucinated")},
    "normal_detection": {"normal_detection_acc": ("correct", None)},
    "chexpert5x200": {"chexpert5x200_acc": ("correct", None)},
}  # fmt: skip
OCCURRENCE = "_occurrence"
BASE, RUN = "_base", "_run"


@dataclass(frozen=True)
class Run:
    """An evaluated run: its metrics.json record and the folder holding its per-case files."""

    path: str
    record: dict
    folder: Path

    @classmethod
    def load(cls, run: str | os.PathLike) -> Run:
        return cls(str(run), load_metrics(run), EvaluationDir.of(run).path)

    @property
    def variant(self) -> str:
        return str(self.record["variant"])

    def case_files(self) -> dict[tuple[str, str], Path]:
        """(task, dataset key) -> per-case Parquet file, for the tasks :data:`CASE_KEYS` knows."""
        files = {}
        for name, entry in self.record.get("tasks", {}).items():
            task = next((t for t in CASE_KEYS if name.startswith(f"{t}_")), None)
            if task is not None and entry.get("cases"):
                files[(task, entry["dataset"])] = self.folder / entry["cases"]
        return files


def _in_headline(frame: pd.DataFrame) -> pd.Series:
    """Adversarial pairs counted in both runs' headline (their protocol's ``headline`` column;
    every pair for results written before it existed)."""
    keep = pd.Series(True, index=frame.index)
    for column in (f"headline{BASE}", f"headline{RUN}"):
        if column in frame.columns:
            keep &= frame[column].astype(bool)
    return keep


def match_cases(baseline: pd.DataFrame, run: pd.DataFrame, task: str, where: str) -> pd.DataFrame:
    """The rows both runs have, matched on the ids and the task's key columns (repeated keys in
    their order); outcome columns get the suffixes ``_base`` and ``_run``. No shared case is an
    error naming ``where``."""
    keys = [*ID_COLUMNS, *CASE_KEYS[task]]
    frames = []
    for frame in (baseline, run):
        missing = [k for k in keys if k not in frame.columns]
        if missing:
            raise InputError(f"{where}: per-case results lack the column(s) {', '.join(missing)}")
        frame = frame.copy()
        frame[OCCURRENCE] = frame.groupby(keys, sort=False, dropna=False).cumcount()
        frames.append(frame)
    merged = frames[0].merge(frames[1], on=[*keys, OCCURRENCE], suffixes=(BASE, RUN))
    if merged.empty:
        raise InputError(f"{where}: the two runs share no case (matched by {', '.join(keys)}); "
                         "were they evaluated on the same data?")
    if len(merged) < max(len(baseline), len(run)):
        log.warning("%s: %d shared cases of %d and %d", where, len(merged), len(baseline), len(run))
    return merged


def patients(frame: pd.DataFrame) -> np.ndarray:
    """Patient id per row; a row without one is its own patient."""
    ids = frame["patient_id"].astype(str).to_numpy()
    return np.where(ids == "", [f"\0row{i}" for i in range(len(ids))], ids)


def _mean(x: np.ndarray) -> float:
    return float(np.mean(x))


def accuracy_row(metric: str, base: np.ndarray, run: np.ndarray, groups: np.ndarray,
                 n_boot: int, seed: int) -> dict:  # fmt: skip
    """Shares right (per case, 0-1; a fraction for a tie or a multi-image case), their paired
    difference and McNemar's test on the cases that are 0 or 1 in both runs."""
    base, run = base.astype(float), run.astype(float)
    interval = paired_difference(_mean, [base], [run], groups, n_boot=n_boot, seed=seed)
    binary = np.isin(base, (0.0, 1.0)) & np.isin(run, (0.0, 1.0))
    test = mcnemar(base[binary], run[binary])
    return {"metric": metric, "test": "mcnemar", "n": len(base),
            "patients": len(np.unique(groups)), "baseline": _mean(base), "value": _mean(run),
            "difference": interval.value, "low": interval.low, "high": interval.high,
            "p": test.p, "better": test.better, "worse": test.worse,
            "fractional": int((~binary).sum())}  # fmt: skip


def _auc(labels: np.ndarray, scores: np.ndarray) -> float:
    return float(rank_auc(labels == 1, scores))


def _fixed_mean_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    aucs = class_aucs(labels, scores)
    return float(aucs.mean()) if not np.isnan(aucs).any() else math.nan


def auc_rows(dataset: str, merged: pd.DataFrame, n_boot: int, seed: int) -> list[dict]:
    """Per class with positives and negatives (and scores in both runs) the paired AUCs and
    DeLong's test; then their mean over those classes (zeroshot_mean_auc)."""
    wide = merged.pivot(index=[*ID_COLUMNS, OCCURRENCE], columns="class",
                        values=[f"label{BASE}", f"label{RUN}", f"score{BASE}", f"score{RUN}"])
    classes = list(dict.fromkeys(merged["class"]))
    labels = wide[f"label{BASE}"][classes].to_numpy(dtype=float)
    if not np.array_equal(labels, wide[f"label{RUN}"][classes].to_numpy(dtype=float),
                          equal_nan=True):
        raise InputError(f"zeroshot_{dataset}: the runs' labels differ; not the same data")
    base = wide[f"score{BASE}"][classes].to_numpy(dtype=float)
    run = wide[f"score{RUN}"][classes].to_numpy(dtype=float)
    groups = patients(wide.index.to_frame(index=False))
    usable = (labels == 0) | (labels == 1)
    defined = np.array([
        (labels[usable[:, c], c] == 1).any() and (labels[usable[:, c], c] == 0).any()
        and not np.isnan(base[usable[:, c], c]).any() and not np.isnan(run[usable[:, c], c]).any()
        for c in range(len(classes))])  # fmt: skip
    rows = []
    for c in np.flatnonzero(defined):
        keep = usable[:, c]
        y = labels[keep, c]
        interval = paired_difference(_auc, [y, base[keep, c]], [y, run[keep, c]],
                                     groups[keep], auc_strata(y, groups[keep]), n_boot, seed)
        rows.append(_auc_row(f"zeroshot_auc_{slug(classes[c])}", delong_test(y == 1, base[keep, c],
                             run[keep, c]), interval, int(keep.sum()), groups[keep]))  # fmt: skip
    if defined.any():
        y, strata = labels[:, defined], auc_strata(labels, groups, defined)
        interval = paired_difference(_fixed_mean_auc, [y, base[:, defined]],
                                     [y, run[:, defined]], groups, strata, n_boot, seed)
        test = delong_mean_test(y, base[:, defined], run[:, defined])
        cases = usable[:, defined].any(axis=1)
        rows.append(_auc_row("zeroshot_mean_auc", test, interval, int(cases.sum()),
                             groups[cases]))
    return rows


def _auc_row(metric: str, test, interval, n: int, groups: np.ndarray) -> dict:
    return {"metric": metric, "test": "delong", "n": n, "patients": len(np.unique(groups)),
            "baseline": test.baseline, "value": test.run, "difference": interval.value,
            "low": interval.low, "high": interval.high, "p": test.p}  # fmt: skip


def compare_pair(baseline: Run, run: Run, n_boot: int = N_BOOTSTRAP, seed: int = 0) -> pd.DataFrame:
    """One row per metric and dataset both runs have per-case results for: ``metric``
    (``METRIC/DATASET``), ``task``, ``dataset``, ``test``, ``n`` (cases), ``patients``,
    ``baseline`` and ``value`` (the two runs' metric), ``difference`` (run - baseline) with
    ``low``/``high``, ``p``; McNemar's rows add ``better``/``worse`` (discordant cases) and
    ``fractional`` (cases left out of the test)."""
    base_files, run_files = baseline.case_files(), run.case_files()
    shared = [key for key in base_files if key in run_files]
    if not shared:
        raise InputError(f"{baseline.path} and {run.path} have no per-case results of a common "
                         "task and dataset; evaluate both on the same data")
    rows = []
    for task, dataset in shared:
        where = f"{task}_{dataset} of {baseline.path} and {run.path}"
        merged = match_cases(pd.read_parquet(base_files[task, dataset]),
                             pd.read_parquet(run_files[task, dataset]), task, where)
        for row in _task_rows(task, dataset, merged, n_boot, seed):
            rows.append({**row, "metric": metric_key(row["metric"], dataset), "task": task,
                         "dataset": dataset})  # fmt: skip
    return pd.DataFrame(rows)


def _task_rows(task: str, dataset: str, merged: pd.DataFrame, n_boot: int,
               seed: int) -> Iterator[dict]:  # fmt: skip
    if task == "zeroshot":
        yield from auc_rows(dataset, merged, n_boot, seed)
        return
    for metric, (column, keep) in ACCURACIES[task].items():
        if f"{column}{BASE}" not in merged.columns:
            continue
        frame = merged if keep is None else merged[keep(merged).to_numpy()]
        if frame.empty:
            continue
        outcomes = frame.assign(base=frame[f"{column}{BASE}"].astype(float),
                                run=frame[f"{column}{RUN}"].astype(float))
        if task == "cxr_align":  # a case is an entry, scored as the mean over its images
            outcomes = outcomes.groupby("case_id", sort=False).agg(
                patient_id=("patient_id", "first"), base=("base", "mean"), run=("run", "mean"))
        yield accuracy_row(metric, outcomes["base"].to_numpy(), outcomes["run"].to_numpy(),
                           patients(outcomes), n_boot, seed)


# --- runs, seeds and the table -----------------------------------------------------------------


def pair_runs(runs: Sequence[Run], baseline: Run) -> list[tuple[Run, Run]]:
    """(baseline run, run) for every run not of the baseline's variant: the baseline variant's
    run of the same seed where there is one, else ``baseline``."""
    base_by_seed = {r.record.get("seed"): r for r in runs if r.variant == baseline.variant}
    seen: set[tuple[str, object]] = set()
    pairs = []
    for run in runs:
        key = (run.variant, run.record.get("seed"))
        if key in seen:
            raise InputError(f"{run.path}: a second run of variant {key[0]} with seed {key[1]}; "
                             "seeds of one variant must differ")
        seen.add(key)
        if run.variant != baseline.variant:
            pairs.append((base_by_seed.get(key[1], baseline), run))
    if not pairs:
        raise InputError(f"nothing to compare: every run is of the baseline's variant "
                         f"{baseline.variant!r}")
    return pairs


def compare_runs(runs: Sequence[str | os.PathLike], baseline: str | os.PathLike | None = None,
                 n_boot: int = N_BOOTSTRAP, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Compare every run with the baseline (default: the first run). Returns the table (one row
    per variant and metric, p-values Holm-adjusted in ``p_holm``) and the per-run rows."""
    loaded = [Run.load(r) for r in runs]
    base = loaded[0]
    if baseline is not None:
        where = EvaluationDir.of(baseline).path.resolve()
        base = next((r for r in loaded if r.folder.resolve() == where), None) \
            or Run.load(baseline)
        if all(r is not base for r in loaded):
            loaded.insert(0, base)
    check_fingerprints([r.record for r in loaded], [r.path for r in loaded])
    frames = []
    for partner, run in pair_runs(loaded, base):
        rows = compare_pair(partner, run, n_boot, seed)
        frames.append(rows.assign(variant=run.variant, seed=run.record.get("seed"),
                                  run=run.path, baseline_variant=partner.variant,
                                  baseline_seed=partner.record.get("seed"),
                                  baseline_run=partner.path))  # fmt: skip
    per_run = pd.concat(frames, ignore_index=True)
    table = pd.concat([_variant_rows(group) for _, group in
                       per_run.groupby("variant", sort=False)], ignore_index=True)  # fmt: skip
    table["p_holm"] = holm(table["p"].to_numpy(dtype=float))
    front = ["variant", "baseline_variant", "seeds", "metric"]
    return table[front + [c for c in table.columns if c not in front]], per_run


def compare_to_variant(runs: Sequence[str | os.PathLike], variant: str,
                       n_boot: int = N_BOOTSTRAP, seed: int = 0,
                       ) -> tuple[pd.DataFrame, pd.DataFrame]:  # fmt: skip
    """:func:`compare_runs` against ``variant``: each run of another variant is paired with
    ``variant``'s run of the same seed (its first run where no seed matches)."""
    variants = [str(load_metrics(run)["variant"]) for run in runs]
    if variant not in variants:
        raise InputError(f"no run of variant {variant!r} to compare with; the runs are of "
                         f"{', '.join(sorted(set(variants)))}")
    return compare_runs(runs, runs[variants.index(variant)], n_boot, seed)


def _variant_rows(group: pd.DataFrame) -> pd.DataFrame:
    """One run: its rows (interval: the patient bootstrap). Several seeds: per metric the mean
    per-seed difference with a t interval and t-test p across seeds."""
    if group["run"].nunique() == 1:
        return group.drop(columns=["seed", "run", "baseline_seed", "baseline_run"]).assign(
            seeds=1, interval="patient bootstrap")
    rows = []
    for metric, rows_of in group.groupby("metric", sort=False):
        seeds = seed_interval(rows_of["difference"].to_numpy(dtype=float))
        first = rows_of.iloc[0]
        rows.append({"variant": first["variant"], "baseline_variant": first["baseline_variant"],
                     "seeds": seeds.seeds, "metric": metric, "task": first["task"],
                     "dataset": first["dataset"], "test": "t across seeds",
                     "n": int(rows_of["n"].mean()), "patients": int(rows_of["patients"].mean()),
                     "baseline": rows_of["baseline"].mean(), "value": rows_of["value"].mean(),
                     "difference": seeds.difference, "low": seeds.low, "high": seeds.high,
                     "p": seeds.p, "interval": f"t across {seeds.seeds} seeds"})  # fmt: skip
    return pd.DataFrame(rows)
