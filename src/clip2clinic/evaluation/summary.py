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
from clip2clinic.io import InputError, write_csv_atomic, write_text_atomic
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

#: Metrics that another name already holds: alias -> that name (left out of the summary).
ALIASES = {"retrieval_r5": "retrieval_top5"}
#: Column order after the headline: the paper's Tables 2, 5, 6, 3-4, then by name.
PAPER_ORDER = (
    "zeroshot_mean_acc", "chexpert5x200_acc", "probe_ft10_mean_auc", "probe_ft100_mean_auc",
    "retrieval_r1", "retrieval_r10", "retrieval_f1", "retrieval_recall", "retrieval_precision",
    "adversarial_acc", "adversarial_acc_negation", "adversarial_acc_hallucination",
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


def all_metric_names(records: Sequence[dict]) -> list[str]:
    """Every metric present in any record, in :func:`metric_order`."""
    return sorted({name for record in records for name in record["metrics"]}, key=metric_order)


def metric_order(name: str) -> tuple:
    """The contract's headline metrics first, then the paper's tables' order
    (:data:`PAPER_ORDER`), then by name; aggregates before per-dataset metrics."""
    metric, dataset = split_key(name)
    if metric in HEADLINE:
        rank = HEADLINE.index(metric)
    elif metric in PAPER_ORDER:
        rank = len(HEADLINE) + PAPER_ORDER.index(metric)
    else:
        rank = len(HEADLINE) + len(PAPER_ORDER)
    return (dataset is not None, dataset or "", rank, metric)


def metric_names(records: Sequence[dict]) -> list[str]:
    """The summary's metrics (:func:`all_metric_names` without duplicates): an alias whose
    metric is present (:data:`ALIASES`, e.g. ``retrieval_r5`` = ``retrieval_top5``) and, when
    every run has one dataset, the per-dataset copies of the aggregates (equal to them)."""
    names = all_metric_names(records)
    present = set(names)
    datasets = {split_key(name)[1] for name in names} - {None}

    def duplicate(name: str) -> bool:
        metric, dataset = split_key(name)
        if ALIASES.get(metric) and ALIASES[metric] + (f"/{dataset}" if dataset else "") in present:
            return True
        return dataset is not None and len(datasets) == 1 and metric in present

    return [name for name in names if not duplicate(name)]


def headline_names(metrics: Sequence[str]) -> list[str]:
    """The aggregates among ``metrics`` (names without a dataset)."""
    return [m for m in metrics if split_key(m)[1] is None]


def summary_frame(records: Sequence[dict], every_metric: bool = False) -> pd.DataFrame:
    """One row per variant: ``variant``, ``seeds``, ``runs``, then per metric (of
    :func:`metric_names`, or every one with ``every_metric``) the value and its ``_low``,
    ``_high`` and ``_seed_sd`` columns (fractions; NaN where a run lacks it)."""
    if not records:
        raise InputError("no evaluated runs given")
    names = all_metric_names(records) if every_metric else metric_names(records)
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


def load_curves(runs: Sequence[str | os.PathLike], records: Sequence[dict]) -> pd.DataFrame:
    """The ROC points of every run that has them, with ``variant`` and ``run`` columns."""
    frames = []
    for run, record in zip(runs, records, strict=True):
        path = EvaluationDir.of(run).roc_file
        if path.is_file():
            frames.append(pd.read_csv(path).assign(variant=record["variant"], run=str(run)))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def write_report(runs: Sequence[str | os.PathLike], out_csv: str | os.PathLike,
                 comparison: pd.DataFrame | None = None) -> dict[str, Path]:
    """Write the summary CSV, ``results_summary.md`` and the figures beside it (the headline
    figure, zero-shot ROC per class, training curves; see
    :mod:`clip2clinic.evaluation.figures`); return the paths. ``comparison``: the table of
    :func:`~clip2clinic.evaluation.compare.compare_runs` against the baseline, added to the
    markdown (headline metrics) and the headline figure."""
    from clip2clinic.evaluation import figures
    from clip2clinic.evaluation.compare_output import markdown as comparison_markdown

    records = [load_metrics(run) for run in runs]
    check_fingerprints(records, runs)
    summary = summary_frame(records)
    out_csv = Path(out_csv)
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    written = {"csv": out_csv, "markdown": out_csv.with_suffix(".md")}
    write_csv_atomic(summary, out_csv)
    metrics = metric_names(records)
    headline = headline_names(metrics) or metrics
    tables = dataset_tables(summary_frame(records, every_metric=True), all_metric_names(records))
    text = markdown_table(summary, headline) + (f"\n{tables}" if tables else "")
    if comparison is not None and not comparison.empty:
        shown = comparison[comparison["metric"].map(lambda m: split_key(m)[0]).isin(HEADLINE)]
        text += ("\n## Paired differences from the baseline (headline metrics)\n\n"
                 + comparison_markdown(shown))
    write_text_atomic(text, written["markdown"])
    written["headline_plot"] = out_csv.with_name(f"{out_csv.stem}_headline.png")
    figures.plot_headline(records, written["headline_plot"],
                          figures.chance_levels(runs, records), comparison)
    curves = load_curves(runs, records)
    if not curves.empty:
        written["roc_plot"] = out_csv.with_name(f"{out_csv.stem}_roc.png")
        figures.plot_roc(curves, written["roc_plot"])
    logs = figures.load_training_logs(runs, records)
    if not logs.empty:
        written["training_plot"] = out_csv.with_name(f"{out_csv.stem}_training.png")
        figures.plot_training_curves(logs, written["training_plot"])
    return written
