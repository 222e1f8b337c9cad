"""The demo, end to end on two CPU cores: phantom → prepare → train each variant → evaluate →
paired differences from the baseline (``compare_baseline/``) → ``results_summary.csv``, its
markdown table and figures.

Every stage is resumable: the phantom and ``prepare`` reuse finished work, a run whose
``checkpoints/final`` exists is not trained again (an interrupted one resumes from its newest
checkpoint), and a run with ``evaluation/metrics.json`` is not scored again. So re-running the
same command after an interruption only does what is left.

Sizes (:data:`FULL` and :data:`QUICK`) were chosen by timing each stage on the project's
2-core machine; see docs/demo.md.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from clip2clinic import configs
from clip2clinic.io import InputError
from clip2clinic.run_dir import RunDir

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

SUMMARY_NAME = "results_summary.csv"
COMPARE_DIR = "compare_baseline"
BASELINE = "baseline"


@dataclass(frozen=True)
class DemoSize:
    """How big the demo is: the phantom, the cached image size, and training per variant."""

    studies: int
    phantom_image_size: int
    image_size: int
    epochs: int
    batch_size: int = 64
    #: The variants trained; empty: every bundled variant (:func:`clip2clinic.configs.variants`).
    variants: tuple[str, ...] = ()
    overrides: tuple[str, ...] = field(default_factory=tuple)


FULL = DemoSize(studies=1000, phantom_image_size=160, image_size=128, epochs=10)
QUICK = DemoSize(studies=600, phantom_image_size=160, image_size=128, epochs=5,
                 variants=("baseline", "n", "n_g_dtcg"))


def say(message: str) -> None:
    """A stage line, logged at INFO: shown in a terminal and in a batch job's log alike (the
    progress bars are only drawn on a terminal); ``--quiet`` hides it."""
    log.info("[demo] %s", message)


#: The probes' grid of C in the demo: the standard grid without 1 and 10, whose fits take
#: most of the probes' time on the phantom (docs/demo.md).
DEMO_PROBE_C_GRID = (1e-4, 1e-3, 1e-2, 1e-1)


def evaluate_run(run_dir: str | os.PathLike, manifest: Path, cache: Path,
                 progress: bool = True) -> dict:  # fmt: skip
    """``clip2clinic evaluate`` of ``run_dir`` on the prepared phantom's test split (thresholds
    and weights were chosen on ``validate``, never on it), every task, embeddings cached in
    ``cache`` for all runs; the probes use one subset seed and C up to 0.1 to fit the demo's
    time budget. Writes ``RUN/evaluation/`` and returns the metrics record."""
    from clip2clinic.evaluation.evaluate import TASKS, Options, evaluate, parse_data

    options = Options(probe_seeds=(0,), probe_c_grid=DEMO_PROBE_C_GRID)
    return evaluate(run_dir, parse_data([f"phantom={manifest}"]), TASKS, options=options,
                    progress=progress, cache_dir=cache)  # fmt: skip


# --- summary: the call site of `clip2clinic report` --------------------------------------------


def compare_with_baseline(runs: Sequence[tuple[str, int, Path]],
                          out_dir: str | os.PathLike) -> pd.DataFrame | None:
    """``clip2clinic compare`` of every run against the baseline variant (each seed with the
    baseline's run of that seed) into ``OUT/compare_baseline/``; returns the table, or None
    when the demo trained no baseline or nothing else."""
    from clip2clinic.evaluation.compare import compare_to_variant
    from clip2clinic.evaluation.compare_output import write_comparison

    variants = {variant for variant, _, _ in runs}
    if BASELINE not in variants or variants == {BASELINE}:
        return None
    table, per_run = compare_to_variant([run_dir for _, _, run_dir in runs], BASELINE)
    write_comparison(table, per_run, Path(out_dir) / COMPARE_DIR)
    return table


def write_summary(run_dirs: Sequence[str | os.PathLike], out_dir: str | os.PathLike,
                  comparison: pd.DataFrame | None = None) -> Path:
    """``OUT/results_summary.csv`` (one row per variant, seeds averaged), its markdown table
    (with the paired differences from the baseline in ``comparison``) and figures, from the
    evaluated runs; returns the CSV's path."""
    from clip2clinic.evaluation.summary import write_report

    return write_report(run_dirs, Path(out_dir) / SUMMARY_NAME, comparison)["csv"]


# --- the whole demo ----------------------------------------------------------------------------


def run_demo(out: str | os.PathLike, variants: Sequence[str] | None = None, quick: bool = False,
             seeds: int = 1, progress: bool = True, size: DemoSize | None = None) -> Path:
    """Run the demo into ``out`` (``phantom/``, ``prepared/``, ``runs/VARIANT-seedS/``,
    ``results_summary.csv``); returns the summary CSV. ``size`` overrides the preset sizes
    (tests use a tiny one)."""
    from clip2clinic.phantom import generate_phantom
    from clip2clinic.training.trainer import train_variant

    size = size or (QUICK if quick else FULL)
    known = configs.variants()
    variants = tuple(variants or size.variants or known)
    unknown = [v for v in variants if v not in known]
    if unknown:
        raise InputError(f"unknown variant(s) {unknown}; choose from {', '.join(known)}")
    if seeds < 1:
        raise InputError(f"seeds must be >= 1, got {seeds}")
    out = Path(out)
    workers = max(1, os.cpu_count() or 1)
    started = time.perf_counter()

    def elapsed() -> str:
        seconds = time.perf_counter() - started
        return f"{int(seconds // 60)}:{seconds % 60:04.1f}"

    say(f"{len(variants)} variant(s) x {seeds} seed(s): {', '.join(variants)}; "
        f"{size.studies} phantom studies, {size.epochs} epochs each")
    say(f"[1/5] phantom ({size.studies} studies, {size.phantom_image_size} px)")
    generate_phantom(out / "phantom", size.studies, size.phantom_image_size, seed=0,
                     workers=workers, progress=progress)
    say(f"[2/5] prepare ({size.image_size} px images, labels, hard negatives, graphs, text "
        f"features)  [{elapsed()}]")
    manifest = prepare_phantom(out / "phantom", out / "prepared" / "manifest.parquet",
                               size.image_size, workers)
    runs = [(variant, seed, out / "runs" / f"{variant}-seed{seed}")
            for variant in variants for seed in range(seeds)]
    overrides = [f"train.epochs={size.epochs}", f"data.batch_size={size.batch_size}",
                 *size.overrides]
    for number, (variant, seed, run_dir) in enumerate(runs, 1):
        say(f"[3/5] train {number}/{len(runs)}: {variant} (seed {seed})  [{elapsed()}]")
        train_variant(manifest, run_dir, variant, seed, overrides, progress)
    for number, (variant, seed, run_dir) in enumerate(runs, 1):
        if RunDir(run_dir).evaluation.done:
            continue
        say(f"[4/5] evaluate {number}/{len(runs)}: {variant} (seed {seed})  [{elapsed()}]")
        evaluate_run(run_dir, manifest, out / "embeddings", progress)
    say(f"[5/5] paired differences from the baseline, summary and figures  [{elapsed()}]")
    comparison = compare_with_baseline(runs, out)
    summary = write_summary([run_dir for _, _, run_dir in runs], out, comparison)
    say(f"done in {elapsed()}: {summary}")
    return summary


def prepare_phantom(root: Path, manifest: Path, image_size: int, workers: int) -> Path:
    """``prepare mimic`` of the phantom with the embedded text model (skipped when the manifest
    was already written with the same settings)."""
    from clip2clinic.data.corpus import PreparedCorpus
    from clip2clinic.data.prepare import PrepareOptions, prepare
    from clip2clinic.data.prepare.pipeline import PREPARE_VERSION

    options = PrepareOptions(dataset="mimic", root=str(root), out=str(manifest),
                             image_size=image_size, workers=workers)
    done = PreparedCorpus(manifest).report()
    if manifest.is_file() and done is not None:
        if done.get("prepare_version") == PREPARE_VERSION and all(
                done["options"].get(k) == v for k, v in _prepare_settings(options).items()):
            return manifest
    prepare(options)
    return manifest


def _prepare_settings(options) -> dict:
    """The options that change what ``prepare`` writes (not how many workers wrote it)."""
    from dataclasses import asdict

    settings = json.loads(json.dumps(asdict(options)))
    settings.pop("workers")
    return settings
