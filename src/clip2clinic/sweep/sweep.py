"""``clip2clinic sweep``: train one variant for every setting of a grid and several seeds,
score each run on the VALIDATION split with ``clip2clinic evaluate`` (the test split is never
read), and choose the setting with the best mean selection score over seeds.

Layout of ``OUT``: ``runs/SETTING-seedS/`` (a run dir; ``scores_validate.json`` caches its
scores), ``embeddings/`` (evaluate's cache), ``sweep.csv`` (one row per run), ``sweep.md``
(one row per setting: mean ± sd over seeds, sorted, the chosen one marked) and ``sweep.png``.
Finished runs are neither trained nor scored again, so an interrupted sweep resumes and a grid
can be extended or given more seeds by re-running.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from clip2clinic.io import InputError, atomic_path, write_csv_atomic, write_text_atomic
from clip2clinic.run_dir import RunDir
from clip2clinic.sweep.grid import Setting

log = logging.getLogger(__name__)

#: Tasks scored on the validation split (the probes need train/validate/test, so they are not).
TASKS: tuple[str, ...] = ("cxr_align", "retrieval", "normal_detection", "zeroshot")
#: Metrics of the table (headline names of ``metrics.json``), with their short headers.
METRICS: dict[str, str] = {
    "cxr_align_a": "A", "cxr_align_b": "B", "zeroshot_mean_auc": "ZS AUC",
    "retrieval_top5": "R@5", "normal_detection_acc": "NCD",
}  # fmt: skip
#: The default selection score: the mean of these metrics, averaged over seeds.
SELECTION: tuple[str, ...] = ("cxr_align_a", "cxr_align_b", "zeroshot_mean_auc")
SCORES_NAME = "scores_validate.json"


def scores_path(run: Path) -> Path:
    """The cached validation scores of the sweep's run ``run``, beside (not inside) its
    folder: ``<run>.scores_validate.json``."""
    return run.with_name(f"{run.name}.{SCORES_NAME}")


class ValidationScorer:
    """Train a run if needed, then score it on one manifest's validation split (cached)."""

    def __init__(self, manifest: str | os.PathLike, embeddings: str | os.PathLike,
                 preset: str = "embedded", progress: bool = False):
        from clip2clinic.evaluation.evaluate import Options, parse_data

        self.manifest, self.embeddings, self.progress = Path(manifest), Path(embeddings), progress
        self.preset = preset
        self.data = parse_data([f"phantom={manifest}"])
        self.options = Options(split="validate")

    def scores(self, run: Path, variant: str, seed: int, overrides: Sequence[str]) -> dict:
        """``{metric: value, ..., "train_s": seconds}`` of the run, training it first."""
        from clip2clinic.evaluation.evaluate import evaluate
        from clip2clinic.training.trainer import train_variant

        path = scores_path(run)
        if path.is_file():
            return json.loads(path.read_text(encoding="utf-8"))
        started = time.perf_counter()
        train_variant(self.manifest, run, variant, seed, overrides, progress=self.progress,
                      preset=self.preset)
        trained = time.perf_counter() - started
        record = evaluate(run, self.data, TASKS, out=RunDir(run).evaluation_of("validate").path,
                          options=self.options, progress=self.progress,
                          cache_dir=self.embeddings)  # fmt: skip
        metrics = record["metrics"]
        missing = [m for m in METRICS if m not in metrics]
        if missing:
            raise InputError(f"{run}: evaluate gave no {', '.join(missing)}")
        scores = {m: metrics[m]["value"] for m in METRICS} | {"train_s": trained}
        write_text_atomic(json.dumps(scores, indent=2), path)
        return scores


@dataclass
class SweepResult:
    """``runs``: one row per (setting, seed); ``table``: one per setting, best first;
    ``chosen``: the best setting's label."""

    runs: pd.DataFrame
    table: pd.DataFrame
    chosen: str


def run_sweep(manifest: str | os.PathLike, variant: str, settings: Sequence[Setting],
              seeds: Sequence[int], out: str | os.PathLike, overrides: Sequence[str] = (),
              selection: Sequence[str] = SELECTION, progress: bool = True,
              preset: str = "embedded",
              scorer: Callable[[Path, str, int, Sequence[str]], dict] | None = None
              ) -> SweepResult:
    """Train (with ``preset``) and score every (setting, seed), write ``sweep.csv``,
    ``sweep.md`` and ``sweep.png`` into ``out``; returns the tables. ``overrides`` apply to
    every run (e.g. ``train.epochs=6``); ``scorer`` replaces the train-and-evaluate step
    (tests)."""
    unknown = [m for m in selection if m not in METRICS]
    if unknown or not selection:
        raise InputError(f"--select: unknown metric(s) {unknown}; choose from {list(METRICS)}")
    if not seeds:
        raise InputError("--seeds: give at least one seed")
    out = Path(out)
    scorer = scorer or ValidationScorer(manifest, out / "embeddings", preset).scores
    rows = []
    total = len(settings) * len(seeds)
    for number, (setting, seed) in enumerate(
            ((s, seed) for s in settings for seed in seeds), 1):
        if progress:
            print(f"[sweep] {number}/{total}: {variant} {setting.label} seed {seed}", flush=True)
        run = out / "runs" / f"{setting.name}-seed{seed}"
        scores = scorer(run, variant, seed, [*overrides, *setting.overrides])
        rows.append({"setting": setting.label, "seed": seed,
                     **{m: scores[m] for m in METRICS}, "train_s": scores.get("train_s")})
    runs = pd.DataFrame(rows)
    runs["score"] = runs[list(selection)].mean(axis=1)
    table = summarise(runs, [s.label for s in settings])
    chosen = str(table.iloc[0]["setting"])
    write_csv_atomic(runs, out / "sweep.csv")
    write_text_atomic(markdown(table, variant, selection, chosen, len(seeds)), out / "sweep.md")
    plot(runs, table, chosen, out / "sweep.png")
    return SweepResult(runs, table, chosen)


def summarise(runs: pd.DataFrame, order: Sequence[str]) -> pd.DataFrame:
    """One row per setting: the mean and the sd over seeds of every metric and the score,
    sorted by mean score (ties keep the grid order)."""
    grouped = runs.groupby("setting", sort=False)[[*METRICS, "score"]]
    table = grouped.mean().join(grouped.std(ddof=1).fillna(0.0).add_suffix("_sd"))
    table["seeds"] = runs.groupby("setting", sort=False).size()
    table = table.reindex([s for s in order if s in table.index])
    table["grid_order"] = range(len(table))
    table = table.sort_values(["score", "grid_order"], ascending=[False, True], kind="stable")
    return table.drop(columns="grid_order").reset_index()


def markdown(table: pd.DataFrame, variant: str, selection: Sequence[str], chosen: str,
             seeds: int) -> str:
    """The settings table, in percent, best first, the chosen setting in bold."""
    picked = ", ".join(METRICS[m] for m in selection)
    lines = [f"# Sweep of {variant} on the validation split", "",
             f"{seeds} seed(s) per setting; mean ± sd over seeds, percent; sorted by the "
             f"selection score, the mean of ({picked}). Chosen: **{chosen}**.", "",
             "| setting | score | " + " | ".join(METRICS.values()) + " |",
             "|---|---|" + "---|" * len(METRICS)]
    for row in table.to_dict("records"):
        name = f"**{row['setting']}**" if row["setting"] == chosen else row["setting"]
        cells = [f"{100 * row[m]:.1f} ±{100 * row[f'{m}_sd']:.1f}" for m in ("score", *METRICS)]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(runs: pd.DataFrame, table: pd.DataFrame, chosen: str, path: Path) -> None:
    """One panel per metric and the score: seeds as dots, the mean ± sd per setting, the chosen
    setting highlighted; settings in table order (best first)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [*METRICS, "score"]
    settings = list(table["setting"])
    fig, axes = plt.subplots(1, len(panels), figsize=(2.4 * len(panels) + 1.5,
                                                      1.2 + 0.35 * len(settings)),
                             sharey=True, layout="constrained")
    for axis, metric in zip(axes, panels, strict=True):
        for y, setting in enumerate(settings):
            values = 100 * runs.loc[runs["setting"] == setting, metric].to_numpy(float)
            colour = "tab:red" if setting == chosen else "tab:blue"
            axis.scatter(values, np.full(len(values), y), s=14, color=colour, alpha=0.6)
            axis.errorbar(values.mean(), y, xerr=values.std(ddof=1) if len(values) > 1 else 0,
                          fmt="D", color=colour, markersize=5, capsize=3)
        axis.set_title(METRICS.get(metric, "selection score"), fontsize=9)
        axis.set_xlabel("%", fontsize=8)
        axis.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(range(len(settings)), settings, fontsize=7)
    axes[0].invert_yaxis()
    fig.suptitle("Validation split; dots: seeds, diamond: mean ± sd; red: chosen", fontsize=9)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
