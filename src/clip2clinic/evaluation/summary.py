"""From evaluated runs to one table: ``results_summary.csv``, a markdown table and plots.

``clip2clinic evaluate`` writes ``RUN/evaluation/metrics.json``::

    {"run": ..., "variant": "n_g_dtcg", "seed": 0, "checkpoint": ...,
     "metrics": {"cxr_align_a": {"value": 0.97, "low": 0.95, "high": 0.99, "n": 412},
                 "cxr_align_a/mimic": {...}, ...}}

(``<metric>/<dataset>`` per dataset, plain ``<metric>`` the headline aggregate over datasets)

and, for zero-shot tasks, ``RUN/evaluation/roc.csv`` (task, class, fpr, tpr). This module
reads them back. Runs that share a variant (several seeds) become one row: the value is the
mean over seeds, ``_low``/``_high`` the mean of the seeds' bootstrap bounds and ``_seed_sd``
the standard deviation across seeds (NaN for one seed); two runs with the same checkpoint
fingerprint are refused (:func:`check_fingerprints`). The markdown file holds the headline
aggregates and, per dataset, the layouts of the paper's Tables 2, 5 and 6 (and 3-4).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from clip2clinic.configs import table_position
from clip2clinic.evaluation.results import split_key
from clip2clinic.io import InputError, atomic_path, write_csv_atomic, write_text_atomic
from clip2clinic.run_dir import EvaluationDir

#: Metrics shown first, in this order (contract 3 of DESIGN.md), then the rest by name.
HEADLINE = (
    "cxr_align_a",
    "cxr_align_b",
    "zeroshot_mean_auc",
    "retrieval_top5",
    "normal_detection_acc",
)

#: Per-dataset tables in the paper's layouts: title, then (column label, metric) per dataset.
PAPER_TABLES: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("Classification (Table 2): zero-shot and linear probes (FT10, FT100 mean AUC)",
     (("ZS AUC", "zeroshot_mean_auc"), ("ZS acc", "zeroshot_mean_acc"),
      ("ZS acc", "chexpert5x200_acc"), ("FT10", "probe_ft10_mean_auc"),
      ("FT100", "probe_ft100_mean_auc"))),
    ("Report retrieval (Table 5)",
     (("@5", "retrieval_top5"), ("F1", "retrieval_f1"), ("Recall", "retrieval_recall"),
      ("Precision", "retrieval_precision"))),
    ("CXR-Align (Table 6)", (("A", "cxr_align_a"), ("B", "cxr_align_b"))),
    ("Normal case detection and adversarial pairs (Tables 3, 4)",
     (("NCD", "normal_detection_acc"), ("adversarial", "adversarial_acc"),
      ("adv. negated", "adversarial_acc_negation"),
      ("adv. hallucinated", "adversarial_acc_hallucination"))),
)  # fmt: skip



def load_metrics(run: str | os.PathLike) -> dict:
    """The metrics.json of an evaluated run; a clear error when it is absent or malformed."""
    path = EvaluationDir.of(run).metrics_file
    if not path.is_file():
        raise InputError(f"{path}: not found; run `clip2clinic evaluate --checkpoint {run}` first")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        for name, estimate in record["metrics"].items():
            missing = {"value", "low", "high", "n"} - set(estimate)
            if missing:
                raise KeyError(f"metrics.{name}.{sorted(missing)[0]}")
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise InputError(f"{path}: not a clip2clinic metrics file ({exc})") from None
    record.setdefault("variant", Path(record.get("run", path.parent.parent)).name)
    record.setdefault("seed", None)
    return record


def check_fingerprints(records: Sequence[dict], runs: Sequence[str | os.PathLike]) -> None:
    """Refuse two runs whose checkpoints have the same fingerprint (metrics.json
    ``fingerprint``: a hash of config and weights): one model evaluated twice is not two
    seeds. Records without a fingerprint (older files) are not checked."""
    first: dict[str, str | os.PathLike] = {}
    for run, record in zip(runs, records, strict=True):
        fingerprint = record.get("fingerprint")
        if not fingerprint:
            continue
        if fingerprint in first:
            raise InputError(
                f"{first[fingerprint]} and {run} hold the same checkpoint (fingerprint "
                f"{fingerprint[:12]}); one model evaluated twice is not two seeds or two "
                "variants; give each checkpoint once"
            )
        first[fingerprint] = run


def metric_names(records: Sequence[dict]) -> list[str]:
    """Every metric present in any record: the contract's headline ones first, then the other
    aggregates by name, then the per-dataset ones (``<metric>/<dataset>``) by name."""
    present = {name for record in records for name in record["metrics"]}
    rest = sorted(present - set(HEADLINE), key=lambda m: (split_key(m)[1] is not None, m))
    return [m for m in HEADLINE if m in present] + rest


def headline_names(metrics: Sequence[str]) -> list[str]:
    """The aggregates among ``metrics`` (names without a dataset)."""
    return [m for m in metrics if split_key(m)[1] is None]


def summary_frame(records: Sequence[dict]) -> pd.DataFrame:
    """One row per variant: ``variant``, ``seeds``, ``runs``, then per metric the value and its
    ``_low``, ``_high`` and ``_seed_sd`` columns (fractions; NaN where a run lacks it)."""
    if not records:
        raise InputError("no evaluated runs given")
    names = metric_names(records)
    rows = []
    variants = sorted({r["variant"] for r in records}, key=table_position)
    for variant in variants:
        group = [r for r in records if r["variant"] == variant]
        row: dict[str, object] = {
            "variant": variant,
            "seeds": len(group),
            "runs": ";".join(str(r.get("run", "")) for r in group),
        }
        for name in names:
            estimates = [r["metrics"].get(name) for r in group]
            values = np.array([e["value"] if e else math.nan for e in estimates], dtype=float)
            lows = np.array([e["low"] if e else math.nan for e in estimates], dtype=float)
            highs = np.array([e["high"] if e else math.nan for e in estimates], dtype=float)
            row[name] = _nanmean(values)
            row[f"{name}_low"] = _nanmean(lows)
            row[f"{name}_high"] = _nanmean(highs)
            finite = values[~np.isnan(values)]
            row[f"{name}_seed_sd"] = float(np.std(finite, ddof=1)) if finite.size > 1 else math.nan
        rows.append(row)
    return pd.DataFrame(rows)


def _nanmean(values: np.ndarray) -> float:
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else math.nan


def markdown_table(summary: pd.DataFrame, metrics: Sequence[str] | None = None,
                   headers: Sequence[str] | None = None) -> str:
    """Variants × metrics as a markdown table, in percent: ``value [low, high]``; ``headers``
    name the metric columns (default: the metric names)."""
    metrics = list(metrics or [c for c in summary.columns if f"{c}_low" in summary.columns])
    header = "| variant | seeds | " + " | ".join(headers or metrics) + " |"
    lines = [header, "|---|---|" + "---|" * len(metrics)]
    for _, row in summary.iterrows():
        cells = [_percent(row[m], row[f"{m}_low"], row[f"{m}_high"]) for m in metrics]
        lines.append(f"| {row['variant']} | {row['seeds']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def dataset_tables(summary: pd.DataFrame, metrics: Sequence[str]) -> str:
    """The per-dataset tables of :data:`PAPER_TABLES` (markdown sections) for the metrics
    present: one column per dataset and measure, headed ``<dataset> <label>``."""
    sections = []
    for title, measures in PAPER_TABLES:
        wanted = {metric for _, metric in measures}
        datasets = sorted({d for metric, d in map(split_key, metrics)
                           if d is not None and metric in wanted})  # fmt: skip
        columns = [(f"{d} {label}", f"{metric}/{d}") for d in datasets
                   for label, metric in measures if f"{metric}/{d}" in metrics]  # fmt: skip
        if columns:
            headers, names = zip(*columns, strict=True)
            sections.append(f"## {title}\n\n{markdown_table(summary, names, headers)}")
    return "\n".join(sections)


def _percent(value: float, low: float, high: float) -> str:
    if math.isnan(value):
        return "n/a"
    if math.isnan(low):
        return f"{100 * value:.1f}"
    return f"{100 * value:.1f} [{100 * low:.1f}, {100 * high:.1f}]"


def plot_metrics(summary: pd.DataFrame, metrics: Sequence[str], target: Path) -> None:
    """One bar chart per metric, variants side by side, with their 95% intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = min(3, len(metrics))
    rows = math.ceil(len(metrics) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.2 * rows), squeeze=False,
                                layout="constrained")
    positions = np.arange(len(summary))
    for axis, metric in zip(axes.flat, metrics, strict=False):
        values = summary[metric].to_numpy(dtype=float)
        low = np.nan_to_num(values - summary[f"{metric}_low"].to_numpy(dtype=float)).clip(0)
        high = np.nan_to_num(summary[f"{metric}_high"].to_numpy(dtype=float) - values).clip(0)
        axis.bar(positions, values, yerr=[low, high], capsize=3, color="#4c72b0")
        axis.set_xticks(positions, summary["variant"], rotation=45, ha="right", fontsize=8)
        axis.set_title(metric, fontsize=10)
        axis.set_ylim(0, 1.05)
        axis.grid(axis="y", alpha=0.3)
    for axis in list(axes.flat)[len(metrics) :]:
        axis.set_visible(False)
    figure.suptitle("metrics per variant (mean over seeds; whiskers: mean of the seeds' 95% "
                    "intervals)", fontsize=11)
    _save(figure, target)


def plot_roc(curves: pd.DataFrame, target: Path) -> None:
    """ROC curves per zero-shot task: one panel per task, one line per (variant, class)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(dict.fromkeys(curves["task"]))
    figure, axes = plt.subplots(1, len(tasks), figsize=(4.5 * len(tasks), 4.2), squeeze=False)
    for axis, task in zip(axes.flat, tasks, strict=True):
        for (variant, name), curve in curves[curves["task"] == task].groupby(
            ["variant", "class"], sort=False
        ):
            axis.plot(curve["fpr"], curve["tpr"], lw=1, label=f"{variant}: {name}")
        axis.plot([0, 1], [0, 1], ls="--", color="grey", lw=0.8)
        axis.set(title=task, xlabel="false positive rate", ylabel="true positive rate")
        axis.legend(fontsize=6, loc="lower right")
    figure.tight_layout()
    _save(figure, target)


def _save(figure, target: Path) -> None:
    import matplotlib.pyplot as plt

    with atomic_path(target) as tmp:
        figure.savefig(tmp, dpi=120, format=target.suffix.lstrip("."))
    plt.close(figure)


def load_curves(runs: Sequence[str | os.PathLike], records: Sequence[dict]) -> pd.DataFrame:
    """The ROC points of every run that has them, with a ``variant`` column."""
    frames = []
    for run, record in zip(runs, records, strict=True):
        path = EvaluationDir.of(run).roc_file
        if path.is_file():
            frames.append(pd.read_csv(path).assign(variant=record["variant"]))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def write_report(runs: Sequence[str | os.PathLike], out_csv: str | os.PathLike) -> dict[str, Path]:
    """Write the summary CSV, ``results_summary.md`` and the plots beside it; return paths."""
    records = [load_metrics(run) for run in runs]
    check_fingerprints(records, runs)
    summary = summary_frame(records)
    out_csv = Path(out_csv)
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    written = {"csv": out_csv, "markdown": out_csv.with_suffix(".md")}
    write_csv_atomic(summary, out_csv)
    metrics = metric_names(records)
    headline = headline_names(metrics) or metrics
    tables = dataset_tables(summary, metrics)
    text = markdown_table(summary, headline) + (f"\n{tables}" if tables else "")
    write_text_atomic(text, written["markdown"])
    written["metrics_plot"] = out_csv.with_name(f"{out_csv.stem}_metrics.png")
    plot_metrics(summary, headline, written["metrics_plot"])
    curves = load_curves(runs, records)
    if not curves.empty:
        written["roc_plot"] = out_csv.with_name(f"{out_csv.stem}_roc.png")
        plot_roc(curves, written["roc_plot"])
    return written
