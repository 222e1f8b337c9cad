"""Figures of evaluated runs, as a paper would show them (written by ``clip2clinic report``
and the demo; see docs/evaluation.md#figures):

- :func:`plot_headline`: the headline metrics per variant, each seed a dot, the mean with its
  95% interval, chance and the baseline's mean as lines; below, with a comparison table from
  :func:`clip2clinic.evaluation.compare.compare_runs`, each variant's paired difference from
  the baseline with its interval;
- :func:`plot_roc`: zero-shot ROC curves, one panel per class, one colour per variant (the
  mean curve over its seeds);
- :func:`plot_training_curves`: training (and validation) loss per step from the runs' logs.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from clip2clinic.configs import TABLE_ORDER, table_position
from clip2clinic.evaluation.results import split_key
from clip2clinic.evaluation.summary import HEADLINE
from clip2clinic.io import atomic_path
from clip2clinic.run_dir import EvaluationDir, RunDir

#: Chance level of metrics that have a fixed one (two-way choices, AUC, five-way 5x200).
FIXED_CHANCE = {"cxr_align_a": 0.5, "cxr_align_b": 0.5, "zeroshot_mean_auc": 0.5,
                "chexpert5x200_acc": 0.2}  # fmt: skip
#: Short panel titles of the headline metrics.
TITLES = {"cxr_align_a": "CXR-Align A", "cxr_align_b": "CXR-Align B",
          "zeroshot_mean_auc": "zero-shot mean AUC", "retrieval_top5": "retrieval top-5",
          "normal_detection_acc": "normal case detection"}  # fmt: skip
BASELINE = "baseline"
_GRID = np.linspace(0.0, 1.0, 101)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _colours(variants: Sequence[str]) -> dict[str, tuple]:
    """A fixed colour per variant (its row in :data:`~clip2clinic.configs.TABLE_ORDER`), so
    every figure agrees."""
    plt = _pyplot()
    palette = plt.get_cmap("tab10").colors
    known = list(TABLE_ORDER)
    return {v: palette[(known.index(v) if v in known else len(known) + i) % len(palette)]
            for i, v in enumerate(variants)}


def _label_grid(axes, used: int, xlabel: str, ylabel: str) -> None:
    """Hide the grid's panels past the first ``used``; label the bottom row's x axes and the
    first column's y axes."""
    for axis in list(axes.flat)[used:]:
        axis.set_visible(False)
    for axis in axes[-1]:
        axis.set_xlabel(xlabel, fontsize=8)
    for axis in axes[:, 0]:
        axis.set_ylabel(ylabel, fontsize=8)


def save_figure(figure, target: Path) -> None:
    """Write ``figure`` atomically (format from the suffix) and close it."""
    plt = _pyplot()
    with atomic_path(target) as tmp:
        figure.savefig(tmp, dpi=130, format=target.suffix.lstrip("."), bbox_inches="tight")
    plt.close(figure)


# --- chance levels -----------------------------------------------------------------------------


def chance_levels(runs: Sequence[str | os.PathLike], records: Sequence[dict]) -> dict[str, float]:
    """Chance of each headline metric: fixed ones (:data:`FIXED_CHANCE`) and, from the first
    run's per-case files, retrieval top-5 (5 / the reports in the pool) and normal detection
    (mean 1 / candidates), averaged over datasets as the headline is."""
    levels = dict(FIXED_CHANCE)
    if not runs:
        return levels
    folder, record = EvaluationDir.of(runs[0]).path, records[0]
    found: dict[str, list[float]] = {"retrieval_top5": [], "normal_detection_acc": []}
    for name, task in record.get("tasks", {}).items():
        cases = task.get("cases")
        if not cases or not (folder / cases).is_file():
            continue
        if name.startswith("retrieval_"):
            frame = pd.read_parquet(folder / cases, columns=["paired_report"])
            found["retrieval_top5"].append(min(1.0, 5 / frame["paired_report"].nunique()))
        elif name.startswith("normal_detection_"):
            frame = pd.read_parquet(folder / cases, columns=["candidates"])
            found["normal_detection_acc"].append(float((1 / frame["candidates"]).mean()))
    levels |= {metric: float(np.mean(values)) for metric, values in found.items() if values}
    return levels


# --- the headline figure -------------------------------------------------------------------------


def seed_values(records: Sequence[dict], metric: str) -> dict[str, list[float]]:
    """Per variant (in table order), the seeds' values of ``metric`` (NaN ones left out)."""
    values: dict[str, list[float]] = {}
    for record in records:
        estimate = record["metrics"].get(metric) or {}
        value = estimate.get("value")
        values.setdefault(record["variant"], [])
        if value is not None and not math.isnan(value):
            values[record["variant"]].append(float(value))
    return dict(sorted(values.items(), key=lambda kv: table_position(kv[0])))


def mean_interval(values: Sequence[float], record_bounds: tuple[float, float]) -> tuple:
    """(mean, low, high): a t interval across seeds with two or more, else the one run's
    bootstrap interval ``record_bounds``."""
    from scipy import stats

    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        return math.nan, math.nan, math.nan
    mean = float(values.mean())
    if len(values) == 1:
        return mean, *record_bounds
    half = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
    return mean, mean - half, mean + half


def plot_headline(records: Sequence[dict], target: Path, chance: Mapping[str, float],
                  comparison: pd.DataFrame | None = None,
                  metrics: Sequence[str] = HEADLINE) -> None:
    """The headline figure (see the module doc); ``comparison``: the table of
    :func:`~clip2clinic.evaluation.compare.compare_runs` (rows variant × metric)."""
    plt = _pyplot()
    metrics = [m for m in metrics if any(m in r["metrics"] for r in records)]
    with_differences = comparison is not None and not comparison.empty
    rows = 2 if with_differences else 1
    figure, axes = plt.subplots(rows, len(metrics), figsize=(3.3 * len(metrics), 3.6 * rows),
                                squeeze=False, layout="constrained")
    variants = list(seed_values(records, metrics[0]))
    colours = _colours(variants)
    for column, metric in enumerate(metrics):
        _headline_panel(axes[0, column], records, metric, variants, colours, chance.get(metric))
        if with_differences:
            _difference_panel(axes[1, column], comparison, metric, variants, colours)
    axes[0, 0].set_ylabel("score (%)")
    axes[0, 0].legend(fontsize=7, loc="best", frameon=False)
    if with_differences:
        axes[1, 0].set_ylabel("variant − baseline (points)")
    seeds = sorted({len(v) for v in seed_values(records, metrics[0]).values()})
    interval = ("t interval across seeds" if seeds[-1] > 1 else "patient bootstrap interval")
    counts = "/".join(map(str, seeds))
    figure.suptitle(f"Headline metrics on the test split: dots are seeds ({counts} per "
                    f"variant), bars the mean with its 95% {interval}"
                    + ("; below, paired differences from the baseline (red: Holm p < 0.05)"
                       if with_differences else ""), fontsize=9)
    save_figure(figure, target)


def _headline_panel(axis, records, metric, variants, colours, chance) -> None:
    values = seed_values(records, metric)
    bounds = {}
    for record in records:  # a lone seed's own bootstrap interval
        estimate = record["metrics"].get(metric) or {}
        bounds[record["variant"]] = (_number(estimate.get("low")), _number(estimate.get("high")))
    rng = np.random.default_rng(0)
    for x, variant in enumerate(variants):
        seeds = values.get(variant, [])
        mean, low, high = mean_interval(seeds, bounds.get(variant, (math.nan, math.nan)))
        low, high = max(low, 0.0), min(high, 1.0)  # a t interval may pass a share's bounds
        jitter = rng.uniform(-0.12, 0.12, len(seeds))
        axis.scatter(x + jitter, 100 * np.asarray(seeds), s=12, color=colours[variant],
                     alpha=0.55, linewidths=0, zorder=3)
        if not math.isnan(mean):
            axis.errorbar(x + 0.28, 100 * mean,
                          yerr=[[100 * max(mean - low, 0)], [100 * max(high - mean, 0)]]
                          if not math.isnan(low) else None,
                          fmt="s", ms=4, color=colours[variant], capsize=3, zorder=4)
    base = values.get(BASELINE)
    if base:
        axis.axhline(100 * np.mean(base), color="#444444", lw=0.9, ls="--",
                     label="baseline mean")
    if chance is not None:
        axis.axhline(100 * chance, color="#999999", lw=0.9, ls=":", label="chance")
    axis.set_title(TITLES.get(metric, metric), fontsize=10)
    axis.set_xticks(range(len(variants)), variants, rotation=45, ha="right", fontsize=8)
    axis.set_xlim(-0.6, len(variants) - 0.3)
    axis.grid(axis="y", alpha=0.3)


def comparison_rows(comparison: pd.DataFrame, metric: str) -> tuple[pd.DataFrame, str | None]:
    """The comparison's rows of ``metric`` (compare works per dataset: ``metric/<dataset>``;
    with several datasets the first one's) indexed by variant, and that dataset."""
    names = comparison["metric"].map(lambda name: split_key(name)[0])
    rows = comparison[names == metric]
    datasets = list(dict.fromkeys(rows["dataset"])) if "dataset" in rows else []
    if len(datasets) > 1:
        rows = rows[rows["dataset"] == datasets[0]]
    return rows.set_index("variant"), (datasets[0] if len(datasets) > 1 else None)


def _difference_panel(axis, comparison, metric, variants, colours) -> None:
    rows, dataset = comparison_rows(comparison, metric)
    for x, variant in enumerate(variants):
        if variant not in rows.index:
            continue
        row = rows.loc[variant]
        diff, low, high = (100 * float(row[k]) for k in ("difference", "low", "high"))
        significant = float(row.get("p_holm", math.nan)) < 0.05
        error = None if math.isnan(low) else [[max(diff - low, 0)], [max(high - diff, 0)]]
        axis.errorbar(x, diff, yerr=error, fmt="o", ms=5, capsize=3,
                      color="#c44e52" if significant else colours[variant])
    axis.axhline(0, color="#444444", lw=0.9, ls="--")
    axis.set_xticks(range(len(variants)), variants, rotation=45, ha="right", fontsize=8)
    axis.set_xlim(-0.6, len(variants) - 0.3)
    where = f" ({dataset})" if dataset else ""
    axis.set_title(f"{TITLES.get(metric, metric)}{where}: vs baseline", fontsize=9)
    axis.grid(axis="y", alpha=0.3)


def _number(value) -> float:
    return math.nan if value is None else float(value)


# --- ROC ---------------------------------------------------------------------------------------


def mean_roc(curves: pd.DataFrame) -> np.ndarray:
    """The mean TPR over the runs in ``curves`` (column ``run``) on a 101-point FPR grid."""
    rows = []
    for _, curve in curves.groupby("run", sort=False):
        curve = curve.sort_values(["fpr", "tpr"])
        rows.append(np.interp(_GRID, curve["fpr"], curve["tpr"]))
    return np.mean(rows, axis=0)


def plot_roc(curves: pd.DataFrame, target: Path) -> None:
    """Zero-shot ROC: one panel per (task, class), one colour per variant (mean over seeds),
    the legend below the panels. ``curves``: task, class, fpr, tpr, variant, run."""
    plt = _pyplot()
    panels = list(dict.fromkeys(zip(curves["task"], curves["class"], strict=True)))
    tasks = list(dict.fromkeys(curves["task"]))
    columns = min(4, len(panels))
    rows = math.ceil(len(panels) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(2.7 * columns, 2.7 * rows + 0.6),
                                squeeze=False, sharex=True, sharey=True, layout="constrained")
    variants = sorted(set(curves["variant"]), key=table_position)
    colours = _colours(variants)
    for axis, (task, name) in zip(axes.flat, panels, strict=False):
        panel = curves[(curves["task"] == task) & (curves["class"] == name)]
        for variant in variants:
            of_variant = panel[panel["variant"] == variant]
            if len(of_variant):
                axis.plot(_GRID, mean_roc(of_variant), lw=1.1, color=colours[variant],
                          label=variant)
        axis.plot([0, 1], [0, 1], ls=":", color="grey", lw=0.8)
        title = name if len(tasks) == 1 else f"{task.removeprefix('zeroshot_')}: {name}"
        axis.set_title(title, fontsize=9)
        axis.set_aspect("equal")
    _label_grid(axes, len(panels), "false positive rate", "true positive rate")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", ncol=min(len(variants), 9),
                  fontsize=8, frameon=False)
    seeds = curves.groupby("variant")["run"].nunique().max()
    figure.suptitle("Zero-shot ROC per class" + (f" (mean curve over {seeds} seeds)"
                                                  if seeds > 1 else ""), fontsize=10)
    save_figure(figure, target)


# --- training curves ---------------------------------------------------------------------------


def load_training_logs(runs: Sequence[str | os.PathLike],
                       records: Sequence[dict]) -> pd.DataFrame:
    """Every run's ``logs/metrics.csv`` rows with ``variant`` and ``run`` columns (runs
    without one are left out)."""
    frames = []
    for run, record in zip(runs, records, strict=True):
        path = RunDir(record.get("run") or EvaluationDir.of(run).path.parent).log_table
        if not path.is_file():
            path = RunDir(EvaluationDir.of(run).path.parent).log_table
        if path.is_file():
            frames.append(pd.read_csv(path).assign(variant=record["variant"], run=str(run)))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def plot_training_curves(logs: pd.DataFrame, target: Path) -> None:
    """One panel per variant (the losses of variants differ in scale: more directions, more
    reports): the training loss per logged step, each seed a line, and where logged the
    validation loss at epoch ends (dots)."""
    plt = _pyplot()
    variants = sorted(set(logs["variant"]), key=table_position)
    colours = _colours(variants)
    columns = min(3, len(variants))
    rows = math.ceil(len(variants) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3.6 * columns, 2.6 * rows),
                                squeeze=False, sharex=True, layout="constrained")
    validation = "val_loss" in logs and logs["val_loss"].notna().any()
    for axis, variant in zip(axes.flat, variants, strict=False):
        for _, run in logs[logs["variant"] == variant].groupby("run"):
            axis.plot(run["step"], run["loss"], lw=0.9, alpha=0.8, color=colours[variant],
                      label="training")
            if validation:
                val = run.dropna(subset=["val_loss"])
                axis.plot(val["step"], val["val_loss"], "o--", ms=3, lw=0.7, color="black",
                          label="validation")
        axis.set_title(variant, fontsize=9)
        axis.grid(alpha=0.3)
        handles, labels = axis.get_legend_handles_labels()
        unique = dict(zip(labels, handles, strict=True))
        axis.legend(unique.values(), unique.keys(), fontsize=7, frameon=False)
    _label_grid(axes, len(variants), "step", "loss")
    seeds = logs.groupby("variant")["run"].nunique().max()
    figure.suptitle("Training loss per logged step" + (" and validation loss per epoch"
                    if validation else "") + f" (logs/metrics.csv; {seeds} seed(s), one line "
                    "each)", fontsize=10)
    save_figure(figure, target)
