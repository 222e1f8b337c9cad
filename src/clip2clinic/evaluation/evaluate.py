"""``clip2clinic evaluate``: embed once (cached per checkpoint and data), run the tasks, write
``metrics.json``, one CSV per task and dataset, the per-case results
(``<task>_<dataset>_cases.parquet``, with patient, study and image ids) and ``roc.csv``.

This module is the orchestration only: for every source it loads the data once
(:mod:`clip2clinic.evaluation.sources`), runs each registered task's runner on it
(:data:`REGISTRY`; :mod:`clip2clinic.evaluation.tasks` says what a task is, each task module
exports its runners beside its scorer), collects the outcomes and writes them.

Data sources (``--data``, repeatable):

- ``[NAME=]manifest.parquet``: a corpus made by ``clip2clinic prepare`` (MIMIC-CXR, Open-i, the
  phantom). Its test split feeds CXR-Align (built with the evaluation phrasing pool), retrieval,
  adversarial pairs, normal case detection and zero-shot over the CheXpert findings; its
  train/validate/test splits feed the linear probes. NAME defaults to the file's stem.
- ``READER=ROOT``: a dataset in its official layout (``rsna``, ``siim``, ``vindr``,
  ``chestxray14``, ``chexpert``, ``chexpert5x200``; :mod:`clip2clinic.data.datasets`): zero-shot
  on its test split (5x200 accuracy for ``chexpert5x200``) and linear probes where it has
  train/validate/test splits.
- ``[NAME=]file.json``: a CXR-Align file (ours or the released one), scored instead of building
  one; its image ids are looked up in the manifest of the same NAME (or the only manifest).

Metric names: every task's metric on one dataset is ``<metric>/<dataset>`` (``cxr_align_a/mimic``,
``zeroshot_mean_auc/rsna_ab``, ``probe_ft10_mean_auc/siim``); the plain ``<metric>`` is the
headline aggregate, the mean over the datasets that have it
(:func:`clip2clinic.evaluation.results.headline_metrics`). Intervals resample (or count) patients
where the data has patient ids (:mod:`clip2clinic.evaluation.results`).
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import pandas as pd

from clip2clinic.api import Clip2Clinic, resolve_checkpoint
from clip2clinic.evaluation import (
    adversarial,
    cxr_align,
    normal_detection,
    probes,
    retrieval,
    zeroshot,
)
from clip2clinic.evaluation.embeddings import EmbedSettings
from clip2clinic.evaluation.protocol import PROTOCOLS, Protocol
from clip2clinic.evaluation.results import (
    N_BOOTSTRAP,
    Estimate,
    TaskResult,
    dataset_key,
    headline_metrics,
    metric_key,
)
from clip2clinic.evaluation.sources import (
    Context,
    Corpus,
    DataSources,
    Embedder,
    ReaderData,
    parse_data,
)
from clip2clinic.evaluation.tasks import Scored, Task
from clip2clinic.io import InputError, atomic_path, write_csv_atomic, write_text_atomic
from clip2clinic.provenance import device_name, provenance
from clip2clinic.run_dir import EvaluationDir, RunDir

__all__ = ["REGISTRY", "TASKS", "DataSources", "Options", "evaluate", "parse_data",
           "parse_tasks", "run_identity"]  # fmt: skip

log = logging.getLogger(__name__)

#: The registered tasks, in the order they run on each source.
REGISTRY: tuple[Task, ...] = (
    cxr_align.TASK, retrieval.TASK, adversarial.TASK, normal_detection.TASK, zeroshot.TASK,
    zeroshot.CHEXPERT5X200_TASK, probes.TASK,
)  # fmt: skip
#: Tasks that score image-report pairs (the Open-i protocol chooses which pairs).
PAIR_TASKS = frozenset({"cxr_align", "retrieval", "normal_detection"})
#: The manifest ``dataset`` value of an Open-i corpus (``clip2clinic prepare openi``).
OPENI = "openi"
#: Every task's name, in the order they run.
TASKS: tuple[str, ...] = tuple(task.name for task in REGISTRY)


def parse_tasks(text: str | None) -> list[str]:
    """``all`` or a comma-separated subset of :data:`TASKS`, in :data:`TASKS` order."""
    if not text or text == "all":
        return list(TASKS)
    asked = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [t for t in asked if t not in TASKS]
    if unknown:
        raise InputError(f"--tasks: unknown task {unknown[0]!r}; choose from {', '.join(TASKS)}")
    return [t for t in TASKS if t in asked]


@dataclass
class Outcome:
    """The result of one task on one dataset, with where it ran."""

    task: str
    dataset: str
    result: TaskResult
    seconds: float
    curves: pd.DataFrame | None = None
    notes: dict[str, Any] | None = None


@dataclass(frozen=True)
class Options:
    """How an evaluation runs: the manifests' split, the seed of the benchmark draws and the
    bootstrap, the bootstrap's resamples, the probes' subset seeds and their grid of C, and
    the protocol (:mod:`clip2clinic.evaluation.protocol`; default the paper's)."""

    split: str = "test"
    seed: int = 0
    n_boot: int = N_BOOTSTRAP
    probe_seeds: tuple[int, ...] = probes.DEFAULT_SEEDS
    probe_c_grid: tuple[float, ...] = probes.C_GRID
    protocol: Protocol = PROTOCOLS["paper"]

    def __post_init__(self) -> None:
        if self.split not in ("test", "validate"):
            raise InputError(f"split must be 'test' or 'validate', got {self.split!r}")
        self.protocol.check()


class Evaluation:
    """Runs the registered tasks of one checkpoint on the data sources and collects their
    outcomes; see :func:`evaluate`."""

    def __init__(self, model: Clip2Clinic, data: DataSources, out: Path, options: Options,
                 progress: bool, cache_dir: Path,
                 embedding: EmbedSettings | None = None):  # fmt: skip
        self.model, self.data, self.out, self.options = model, data, out, options
        self.split = options.split
        self.embed = Embedder(model, cache_dir, progress, embedding)
        settings = {f.name: getattr(options, f.name) for f in fields(options)}
        self.context = Context(self.embed, data, out, model.temperature, **settings)
        self.outcomes: list[Outcome] = []
        self.failures: dict[str, str] = {}

    def run(self, task: str, runs: Iterable[Scored], source: str = "",
            notes: dict[str, Any] | None = None) -> None:  # fmt: skip
        """Collect what a runner yields, timing each dataset's result (``notes``: protocol
        choices the caller made, recorded beside the runner's own); a task that fails is
        recorded in ``failures`` (keyed "task on source") and the others still run."""
        start = time.perf_counter()
        try:
            for scored in runs:
                seconds = time.perf_counter() - start
                chosen = {**(notes or {}), **(scored.notes or {})} or None
                self.outcomes.append(Outcome(task, scored.dataset, scored.result, seconds,
                                             scored.curves, chosen))  # fmt: skip
                log.info("%s on %s: %s", task, scored.dataset, _brief(scored.result.metrics))
                start = time.perf_counter()
        except Exception as exc:  # noqa: BLE001 - one task's failure must not lose the rest
            self.failures[f"{task} on {source}"] = f"{type(exc).__name__}: {exc}"
            log.error("%s on %s failed: %s: %s", task, source, type(exc).__name__, exc)

    def run_manifest(self, name: str, manifest: Path, tasks: Sequence[Task]) -> None:
        corpus = Corpus.load(name, manifest, self.split, self.embed)
        pairs, notes = self.pair_corpus(corpus, manifest)
        for task in tasks:
            if task.on_corpus is not None:
                data = pairs if task.name in PAIR_TASKS else corpus
                self.run(task.name, task.on_corpus(data, self.context), name,
                         notes if task.name in PAIR_TASKS else None)  # fmt: skip

    def pair_corpus(self, corpus: Corpus, manifest: Path) -> tuple[Corpus, dict[str, Any]]:
        """The image-report pairs that retrieval, CXR-Align and normal case detection score,
        and a note of which: for an Open-i corpus under the ``openi_pairs=all_frontal``
        protocol, every frontal pair of every split (CXR-CLIP's Open-i test set; do not score
        a corpus the model was trained on this way), else the scored split."""
        is_openi = bool((corpus.frame["dataset"] == OPENI).all())
        if not is_openi:
            return corpus, {}
        choice = self.options.protocol.openi_pairs
        if choice != "all_frontal" or self.split != "test":
            return corpus, {"openi_pairs": f"split {self.split}, every view"}
        pairs = Corpus.load(corpus.name, manifest, None, self.embed, frontal_only=True)
        log.info("%s: Open-i protocol: %d frontal pairs of every split", corpus.name,
                 len(pairs.frame))
        return pairs, {"openi_pairs": "all_frontal", "pairs": len(pairs.frame)}

    def run_dataset(self, name: str, root: Path, tasks: Sequence[Task]) -> None:
        data = ReaderData.load(name, root, self.embed, self.options.protocol,
                               self.data.dataset_options.get(name))
        for task in tasks:
            if task.on_dataset is not None:
                self.run(task.name, task.on_dataset(data, self.context), name)

    def metrics(self) -> dict[str, Estimate]:
        """The headline aggregates (``<metric>``, over datasets) then every task's metrics per
        dataset (``<metric>/<dataset>``)."""
        keyed: dict[str, Estimate] = {}
        for outcome in self.outcomes:
            for name, estimate in outcome.result.metrics.items():
                key = metric_key(name, outcome.dataset)
                if key in keyed:
                    raise ValueError(f"{key} measured twice; dataset names must differ")
                keyed[key] = estimate
        return {**headline_metrics(keyed), **keyed}


class EvaluationIncomplete(InputError):
    """Some tasks failed; the others' outputs were written. ``record`` is what was written."""

    def __init__(self, message: str, record: dict[str, Any]):
        super().__init__(message)
        self.record = record


def run_identity(checkpoint: Path, allow_partial: bool = False) -> dict[str, Any]:
    """The run dir, variant and seed of a checkpoint, from the run's config.yaml if present.

    A run dir without a final checkpoint (training did not finish) raises InputError unless
    ``allow_partial``, which scores its newest step checkpoint with a warning."""
    folder = resolve_checkpoint(checkpoint)
    given = RunDir(checkpoint)
    if given.is_run() and folder != given.final:
        if not allow_partial:
            raise InputError(f"{checkpoint}: the run has no final checkpoint (training did not "
                             f"finish; the newest is {folder.name}); finish it, or pass "
                             "--allow-partial to score that step")
        log.warning("%s: no final checkpoint; scoring %s (--allow-partial)", checkpoint, folder)
    run = given if given.is_run() else RunDir.containing(folder) or RunDir(folder)
    return {**run.identity(), "checkpoint": str(folder)}


def evaluate(
    checkpoint: str | os.PathLike,
    data: DataSources,
    tasks: Sequence[str] = TASKS,
    out: str | os.PathLike | None = None,
    options: Options | None = None,
    device: str = "cpu",
    progress: bool = True,
    cache_dir: str | os.PathLike | None = None,
    allow_partial: bool = False,
    embedding: EmbedSettings | None = None,
) -> dict[str, Any]:
    """Run ``tasks`` of ``checkpoint`` (a run dir or checkpoint folder) on ``data``; write
    ``metrics.json``, the tasks' CSVs and ``roc.csv`` into ``out`` (default
    ``RUN/evaluation``) and return the metrics record.

    ``options.split`` is the manifests' split the tasks score ("validate" for choosing
    settings, so the test split stays unseen; probes then do not run). ``allow_partial``: see
    :func:`run_identity`. ``embedding``: batch size, reader processes and precision of the
    embedding (:class:`~clip2clinic.evaluation.embeddings.EmbedSettings`). When tasks fail, the
    others' outputs are still written (``failed`` in metrics.json) and
    :class:`EvaluationIncomplete` is raised."""
    options = options or Options()
    checkpoint = Path(checkpoint)
    identity = run_identity(checkpoint, allow_partial)
    target = EvaluationDir(Path(out)) if out is not None else RunDir(identity["run"]).evaluation
    target.path.mkdir(parents=True, exist_ok=True)
    model = Clip2Clinic.from_pretrained(identity["checkpoint"], device=device,
                                        image_size=identity.pop("image_size"))
    cache = Path(cache_dir) if cache_dir is not None else target.embeddings
    evaluation = Evaluation(model, data, target.path, options, progress, cache, embedding)
    selected = [task for task in REGISTRY if task.name in tasks]
    for name, manifest in data.manifests.items():
        evaluation.run_manifest(name, manifest, selected)
    for name, root in data.datasets.items():
        evaluation.run_dataset(name, root, selected)
    identity["provenance"] = provenance(data.manifests,
                                        seed=identity["seed"], device=device_name(device))
    record = write_outputs(evaluation, identity, target, model.fingerprint)
    if evaluation.failures:
        failed = "; ".join(f"{k}: {v}" for k, v in evaluation.failures.items())
        raise EvaluationIncomplete(f"{len(evaluation.failures)} task(s) failed ({failed}); the "
                                   f"other results are in {target.path}", record)
    return record


def write_outputs(evaluation: Evaluation, identity: dict, out: EvaluationDir,
                  fingerprint: str) -> dict:
    """Write each outcome's CSV and per-case Parquet, the ROC points and metrics.json; return
    the record."""
    record: dict[str, Any] = {**identity, "fingerprint": fingerprint,
                              "split": evaluation.split,
                              "protocol": evaluation.options.protocol.record(),
                              "tasks": {}}  # fmt: skip
    if evaluation.failures:
        record["failed"] = dict(evaluation.failures)
    for outcome in evaluation.outcomes:
        name = f"{outcome.task}_{outcome.dataset}"
        write_csv_atomic(outcome.result.table, out.path / out.task_csv(name))
        record["tasks"][name] = {
            "csv": out.task_csv(name), "dataset": dataset_key(outcome.dataset),
            "seconds": round(outcome.seconds, 2),
            "metrics": sorted(metric_key(m, outcome.dataset) for m in outcome.result.metrics),
        }  # fmt: skip
        if outcome.notes:
            record["tasks"][name]["protocol"] = outcome.notes
        if outcome.result.details:
            record["tasks"][name]["details"] = outcome.result.details
        if outcome.result.cases is not None:
            with atomic_path(out.path / out.cases_file(name)) as tmp:
                outcome.result.cases.to_parquet(tmp, index=False)
            record["tasks"][name]["cases"] = out.cases_file(name)
    curves = [o.curves for o in evaluation.outcomes if o.curves is not None]
    if curves:
        write_csv_atomic(pd.concat(curves, ignore_index=True), out.roc_file)
    record["metrics"] = {k: v.to_dict() for k, v in evaluation.metrics().items()}
    strict = {k: {f: None if _is_nan(x) else x for f, x in m.items()}
              for k, m in record["metrics"].items()}  # fmt: skip
    text = json.dumps({**record, "metrics": strict}, indent=1)
    write_text_atomic(text, out.metrics_file)
    return record


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _brief(metrics: dict[str, Estimate]) -> str:
    return ", ".join(f"{k} {v.value:.3f}" for k, v in metrics.items())
