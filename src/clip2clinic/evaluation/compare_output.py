"""What ``clip2clinic compare`` writes: ``compare.csv``, ``compare_runs.csv``, ``compare.md`` and
the forest plot ``compare_forest.png`` of the differences with their 95% intervals."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

from clip2clinic.io import atomic_path, write_csv_atomic, write_text_atomic


def _points(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{100 * value:+.1f}"


def _p(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.3g}"


def markdown(table: pd.DataFrame) -> str:
    """The table in percent (differences in percentage points) with its tests."""
    lines = ["| variant | vs | seeds | metric | n | baseline | run | difference [95% CI] | test "
             "| p | p (Holm) |", "|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for row in table.itertuples(index=False):
        low, high = float(row.low), float(row.high)
        interval = "" if math.isnan(low) else f" [{_points(low)}, {_points(high)}]"
        lines.append(
            f"| {row.variant} | {row.baseline_variant} | {row.seeds} | {row.metric} | {row.n} | "
            f"{100 * row.baseline:.1f} | {100 * row.value:.1f} | "
            f"{_points(float(row.difference))}{interval} | {row.test} | {_p(float(row.p))} | "
            f"{_p(float(row.p_holm))} |"
        )
    note = ("\nDifferences: run - baseline in percentage points; intervals: patient-paired "
            "bootstrap (one seed) or t across seeds; p: McNemar (accuracies), DeLong (AUCs) or "
            "a t-test across seeds; Holm-adjusted over every p of the table.\n")  # fmt: skip
    return "\n".join(lines) + "\n" + note


def forest_plot(table: pd.DataFrame, target: Path) -> None:
    """One line per variant and metric: the difference (dot) and its interval (whiskers)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r.variant} vs {r.baseline_variant}: {r.metric}" for r in table.itertuples()]
    y = np.arange(len(table))[::-1]
    diff = 100 * table["difference"].to_numpy(dtype=float)
    low = np.nan_to_num(diff - 100 * table["low"].to_numpy(dtype=float)).clip(0)
    high = np.nan_to_num(100 * table["high"].to_numpy(dtype=float) - diff).clip(0)
    figure, axis = plt.subplots(figsize=(8, 1.2 + 0.28 * len(table)), layout="constrained")
    significant = table["p_holm"].to_numpy(dtype=float) < 0.05
    for mask, color in ((significant, "#c44e52"), (~significant, "#4c72b0")):
        axis.errorbar(diff[mask], y[mask], xerr=[low[mask], high[mask]], fmt="o", ms=4,
                      color=color, capsize=3)
    axis.axvline(0, color="grey", lw=0.8, ls="--")
    axis.set_yticks(y, labels, fontsize=7)
    axis.set_xlabel("difference, run - baseline (percentage points; 95% interval)")
    axis.set_title("paired differences (red: Holm-adjusted p < 0.05)", fontsize=10)
    axis.grid(axis="x", alpha=0.3)
    with atomic_path(target) as tmp:
        figure.savefig(tmp, dpi=120, format="png")
    plt.close(figure)


def write_comparison(table: pd.DataFrame, per_run: pd.DataFrame,
                     out: str | os.PathLike) -> dict[str, Path]:  # fmt: skip
    """Write the table (CSV, markdown), the per-run rows and the forest plot into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = {"csv": out / "compare.csv", "runs": out / "compare_runs.csv",
               "markdown": out / "compare.md", "forest_plot": out / "compare_forest.png"}
    write_csv_atomic(table, written["csv"])
    write_csv_atomic(per_run, written["runs"])
    write_text_atomic(markdown(table), written["markdown"])
    forest_plot(table, written["forest_plot"])
    return written
