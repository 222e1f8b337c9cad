"""``clip2clinic evaluate``: embed once (cached per checkpoint and data), run the tasks, write
``metrics.json``, one CSV per task and dataset, and ``roc.csv``.

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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from sklearn.metrics import roc_curve

from clip2clinic.api import Clip2Clinic, resolve_checkpoint
from clip2clinic.data.datasets import READERS, open_dataset
from clip2clinic.data.manifest import label_matrix, read_manifest
from clip2clinic.data.prepare.pipeline import cache_dir_for
from clip2clinic.evaluation import (
    adversarial,
    cxr_align,
    normal_detection,
    probes,
    retrieval,
    summary,
    zeroshot,
)
from clip2clinic.evaluation.classwise import blank_as_negative
from clip2clinic.evaluation.embeddings import cached_image_embeddings, cached_text_embeddings
from clip2clinic.evaluation.results import (
    N_BOOTSTRAP,
    Estimate,
    TaskResult,
    dataset_key,
    headline_metrics,
    metric_key,
)
from clip2clinic.io import InputError, as_text, write_csv_atomic, write_text_atomic
from clip2clinic.observations import FINDINGS

log = logging.getLogger(__name__)

#: Every task, in the order they run.
TASKS: tuple[str, ...] = (
    "cxr_align", "retrieval", "adversarial", "normal_detection", "zeroshot", "chexpert5x200",
    "probes",
)  # fmt: skip
MANIFEST_TASKS = frozenset(TASKS) - {"chexpert5x200"}


@dataclass
class DataSources:
    """What ``--data`` named: prepared manifests, reader datasets and CXR-Align files."""

    manifests: dict[str, Path] = field(default_factory=dict)
    datasets: dict[str, Path] = field(default_factory=dict)
    cxr_align_files: dict[str, Path] = field(default_factory=dict)


def parse_data(specs: Iterable[str]) -> DataSources:
    """Sort ``--data`` values into manifests, reader datasets and CXR-Align files."""
    sources = DataSources()
    named_manifests: list[str] = []
    for spec in specs:
        name, _, location = spec.rpartition("=")
        path = Path(location)
        if path.suffix == ".parquet":
            named_manifests.append(name or path.stem)
            sources.manifests[name or path.stem] = path
        elif path.suffix == ".json":
            sources.cxr_align_files[name or path.stem] = path
        elif name.lower() in READERS:
            sources.datasets[name.lower()] = path
        else:
            raise InputError(
                f"--data {spec!r}: expected [NAME=]manifest.parquet, [NAME=]cxr_align.json or "
                f"READER=ROOT with READER one of {', '.join(READERS)}"
            )
    if not (sources.manifests or sources.datasets):
        raise InputError("--data: give at least one prepared manifest or dataset root")
    _check_names([*named_manifests, *sources.datasets])
    return sources


def _check_names(names: Sequence[str]) -> None:
    """Every dataset keeps its metrics: two sources must not share a metric key."""
    seen: dict[str, str] = {}
    for name in names:
        try:
            key = dataset_key(name)
        except ValueError as exc:
            raise InputError(f"--data: {exc}") from None
        if key in seen:
            raise InputError(f"--data: {seen[key]!r} and {name!r} would share the metric names "
                             f"*/{key}; name one of them differently (NAME=...)")
        seen[key] = name


def parse_tasks(text: str | None) -> list[str]:
    """``all`` or a comma-separated subset of :data:`TASKS`, in :data:`TASKS` order."""
    if not text or text == "all":
        return list(TASKS)
    asked = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [t for t in asked if t not in TASKS]
    if unknown:
        raise InputError(f"--tasks: unknown task {unknown[0]!r}; choose from {', '.join(TASKS)}")
    return [t for t in TASKS if t in asked]


class Embedder:
    """The model's image and text embeddings, cached on disk per checkpoint and input list;
    callable on texts (the ``embed_texts`` of the task functions)."""

    def __init__(self, model: Clip2Clinic, cache_dir: Path, progress: bool):
        self.model, self.cache_dir, self.progress = model, cache_dir, progress

    def images(self, paths: Sequence[str | os.PathLike]) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings and the ``ok`` mask (unreadable files are skipped and counted)."""
        return cached_image_embeddings(self.model, paths, self.cache_dir, progress=self.progress)

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        unique = list(dict.fromkeys(texts))
        embeddings, _ = cached_text_embeddings(self.model, unique, self.cache_dir)
        row = {text: i for i, text in enumerate(unique)}
        return embeddings[[row[t] for t in texts]]


@dataclass
class Corpus:
    """One split of a prepared manifest with its image embeddings (readable images only)."""

    name: str
    frame: pd.DataFrame
    images: np.ndarray

    @classmethod
    def load(cls, name: str, manifest: Path, split: str, embed: Embedder) -> Corpus:
        frame = read_manifest(manifest, split=split).reset_index(drop=True)
        if frame.empty:
            raise InputError(f"{manifest}: no rows in split {split!r}")
        cache = cache_dir_for(manifest)
        images, ok = embed.images([cache / p for p in frame["image_cache"]])
        if not ok.all():
            log.warning("%s %s: %d unreadable images left out", name, split, int((~ok).sum()))
        return cls(name, frame[ok].reset_index(drop=True), images[ok])

    @property
    def labels(self) -> np.ndarray:
        return label_matrix(self.frame)

    @property
    def patients(self) -> np.ndarray:
        """The patient (subject) id of every row."""
        return self.frame["subject_id"].astype(str).to_numpy()

    @property
    def findings(self) -> np.ndarray:
        """The 13 findings (No Finding is not one), not mentioned read as absent."""
        return blank_as_negative(self.labels[:, 1:])


@dataclass
class Outcome:
    """The result of one task on one dataset, with where it ran."""

    task: str
    dataset: str
    result: TaskResult
    seconds: float
    curves: pd.DataFrame | None = None


def _cxr_align(corpus: Corpus, embed: Embedder, seed: int, file: Path | None, out: Path):
    if file is not None:
        benchmark = cxr_align.load_cxr_align(file)
    else:
        benchmark = cxr_align.build_cxr_align(corpus.frame, corpus.name, seed=seed)
        cxr_align.save_cxr_align(benchmark, out / f"cxr_align_{corpus.name}.json")
    cases = cxr_align.cxr_align_cases(benchmark)
    row_of = {image_id: i for i, image_id in enumerate(corpus.frame["image_id"])}
    found = cases["image_id"].map(row_of)
    if found.isna().any():
        log.warning("CXR-Align %s: %d of %d images not in the manifest's test split; left out",
                    corpus.name, int(found.isna().sum()), len(cases))
    cases, rows = cases[found.notna()], found.dropna().astype(int).to_numpy()
    return cxr_align.score_cxr_align(
        corpus.images[rows], embed(list(cases["report"])), embed(list(cases["negation"])),
        embed(list(cases["omitted"])), list(cases["chosen"]),
        case_ids=[f"{d}/{i}" for d, i in zip(cases["dataset"], cases["id"], strict=True)],
        seed=seed, patient_ids=corpus.patients[rows],
    )  # fmt: skip


def _retrieval(corpus: Corpus, embed: Embedder, seed: int) -> TaskResult:
    studies = corpus.frame.drop_duplicates("study_id").reset_index(drop=True)
    pair_index = corpus.frame["study_id"].map({s: i for i, s in enumerate(studies["study_id"])})
    texts = [as_text(t) for t in studies["report"]]
    return retrieval.score_retrieval(
        corpus.images, embed(texts), corpus.labels, label_matrix(studies),
        pair_index=pair_index.to_numpy(), report_texts=texts, seed=seed, groups=corpus.patients,
    )  # fmt: skip


def _normal(corpus: Corpus) -> np.ndarray:
    """Rows whose report is normal: no chosen observation (prepare leaves it empty)."""
    return np.array([not as_text(c) for c in corpus.frame["chosen"]])


def _normal_detection(corpus: Corpus, embed: Embedder, seed: int) -> TaskResult:
    normal = _normal(corpus)
    if not normal.any() or normal.all():
        raise InputError(f"{corpus.name}: normal case detection needs normal and abnormal studies")
    reports = [as_text(t) for t in corpus.frame["report"]]
    abnormal = sorted({t for t, n in zip(reports, normal, strict=True) if not n})
    normal_reports = [t for t, n in zip(reports, normal, strict=True) if n]
    return normal_detection.score_normal_detection(
        corpus.images[normal], embed(normal_reports), embed(abnormal), seed=seed,
        groups=corpus.patients[normal],
    )  # fmt: skip


def _zeroshot(
    images: np.ndarray, labels: np.ndarray, classes: Sequence[str], name: str,
    embed: Embedder, temperature: float, seed: int, n_boot: int, groups: np.ndarray,
) -> tuple[TaskResult, pd.DataFrame]:  # fmt: skip
    result = zeroshot.zero_shot_binary(images, labels, classes, embed, name,
                                       temperature=temperature, seed=seed, n_boot=n_boot,
                                       groups=groups)  # fmt: skip
    scores = zeroshot.binary_scores(images, classes, embed, temperature=temperature)
    return result, roc_points(f"zeroshot_{name}", labels, scores, classes)


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


def _probe(splits: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], classes, name,
           options: Options) -> TaskResult:  # fmt: skip
    train, validate, test = (probes.ProbeSplit(*splits[s]) for s in ("train", "validate", "test"))
    return probes.linear_probe(train, validate, test, classes, name, seeds=options.probe_seeds,
                               c_grid=options.probe_c_grid, seed=options.seed,
                               n_boot=options.n_boot)  # fmt: skip


@dataclass(frozen=True)
class Options:
    """How an evaluation runs: the manifests' split, the seed of the benchmark draws and the
    bootstrap, the bootstrap's resamples, the probes' subset seeds and their grid of C."""

    split: str = "test"
    seed: int = 0
    n_boot: int = N_BOOTSTRAP
    probe_seeds: tuple[int, ...] = probes.DEFAULT_SEEDS
    probe_c_grid: tuple[float, ...] = probes.C_GRID

    def __post_init__(self) -> None:
        if self.split not in ("test", "validate"):
            raise InputError(f"split must be 'test' or 'validate', got {self.split!r}")


class Evaluation:
    """Runs the tasks of one checkpoint on the data sources; see :func:`evaluate`."""

    def __init__(self, model: Clip2Clinic, data: DataSources, out: Path, options: Options,
                 progress: bool, cache_dir: Path):  # fmt: skip
        self.model, self.data, self.out, self.options = model, data, out, options
        self.seed, self.split, self.n_boot = options.seed, options.split, options.n_boot
        self.embed = Embedder(model, cache_dir, progress)
        self.outcomes: list[Outcome] = []

    def timed(self, task: str, dataset: str, run: Callable[[], Any]) -> None:
        start = time.perf_counter()
        value = run()
        result, curves = value if isinstance(value, tuple) else (value, None)
        self.outcomes.append(Outcome(task, dataset, result, time.perf_counter() - start, curves))
        log.info("%s on %s: %s", task, dataset, _brief(result.metrics))

    def run_manifest(self, name: str, manifest: Path, tasks: Sequence[str]) -> None:
        test = Corpus.load(name, manifest, self.split, self.embed)
        seed, embed = self.seed, self.embed
        if "cxr_align" in tasks:
            file = self.data.cxr_align_files.get(name)
            if file is None and len(self.data.manifests) == 1 and self.data.cxr_align_files:
                file = next(iter(self.data.cxr_align_files.values()))
            self.timed("cxr_align", name, lambda: _cxr_align(test, embed, seed, file, self.out))
        if "retrieval" in tasks:
            self.timed("retrieval", name, lambda: _retrieval(test, embed, seed))
        if "adversarial" in tasks:
            pairs = adversarial.build_adversarial_pairs(test.labels, seed=seed)
            self.timed("adversarial", name, lambda: adversarial.score_adversarial(
                test.images, embed, pairs, seed, groups=test.patients))
        if "normal_detection" in tasks:
            self.timed("normal_detection", name, lambda: _normal_detection(test, embed, seed))
        if "zeroshot" in tasks:
            self.timed("zeroshot", name, lambda: _zeroshot(
                test.images, test.findings, FINDINGS, name, embed, self.model.temperature, seed,
                self.n_boot, test.patients))
        if "probes" in tasks and self.split != "test":
            log.warning("probes skipped: they choose C on validate and score on test only")
        elif "probes" in tasks:
            splits = {"test": (test.images, test.findings, test.frame["subject_id"])}
            for split in ("train", "validate"):
                corpus = Corpus.load(name, manifest, split, embed)
                splits[split] = (corpus.images, corpus.findings, corpus.frame["subject_id"])
            self.timed("probes", name, lambda: _probe(splits, FINDINGS, name, self.options))

    def run_dataset(self, name: str, root: Path, tasks: Sequence[str]) -> None:
        dataset = open_dataset(name, root)
        frame = dataset.csv.reset_index(drop=True)
        present = frame["path"].notna().to_numpy()
        images, ok = self.embed.images(frame.loc[present, "path"].tolist())
        usable = np.flatnonzero(present)[ok]
        images, frame = images[ok], frame.iloc[usable].reset_index(drop=True)
        labels = dataset.labels[usable]
        split = frame["split"].to_numpy()
        patients = frame["patient_id"].astype(str).to_numpy()
        seed, embed = self.seed, self.embed
        if name == "chexpert5x200":
            if "chexpert5x200" in tasks:
                self.timed("chexpert5x200", name, lambda: zeroshot.zero_shot_5x200(
                    images, labels.argmax(axis=1), embed, dataset.pathologies, seed=seed,
                    n_boot=self.n_boot, groups=patients))
            return
        test = split == "test" if (split == "test").any() else np.ones(len(frame), dtype=bool)
        if "zeroshot" in tasks:
            self.timed("zeroshot", name, lambda: _zeroshot(
                images[test], labels[test], dataset.pathologies, name, embed,
                self.model.temperature, seed, self.n_boot, patients[test]))
        detailed = frame.get("detailed_class")
        if "zeroshot" in tasks and detailed is not None and detailed.notna().any():
            # RSNA-ab: pneumonia against the other abnormal images
            ab = zeroshot.rsna_ab_labels(detailed[test].fillna("Normal"))[:, None]
            self.timed("zeroshot", f"{name}_ab", lambda: _zeroshot(
                images[test], ab, ["Pneumonia"], f"{name}_ab", embed, self.model.temperature,
                seed, self.n_boot, patients[test]))
        if "probes" in tasks and {"train", "validate", "test"} <= set(split):
            splits = {s: (images[split == s], labels[split == s], patients[split == s])
                      for s in ("train", "validate", "test")}  # fmt: skip
            self.timed("probes", name,
                       lambda: _probe(splits, dataset.pathologies, name, self.options))

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


def run_identity(checkpoint: Path) -> dict[str, Any]:
    """The run dir, variant and seed of a checkpoint, from the run's config.yaml if present."""
    folder = resolve_checkpoint(checkpoint)
    run = checkpoint if (checkpoint / "checkpoints").is_dir() else folder.parent.parent
    config: dict[str, Any] = {}
    if (run / "config.yaml").is_file():
        config = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8")) or {}
    return {
        "run": str(run),
        "checkpoint": str(folder),
        "variant": config.get("variant") or run.name,
        "seed": (config.get("train") or {}).get("seed", config.get("seed")),
        "image_size": (config.get("data") or {}).get("image_size"),
    }


def evaluate(
    checkpoint: str | os.PathLike,
    data: DataSources,
    tasks: Sequence[str] = TASKS,
    out: str | os.PathLike | None = None,
    options: Options | None = None,
    device: str = "cpu",
    progress: bool = True,
    cache_dir: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Run ``tasks`` of ``checkpoint`` (a run dir or checkpoint folder) on ``data``; write
    ``metrics.json``, the tasks' CSVs and ``roc.csv`` into ``out`` (default
    ``RUN/evaluation``) and return the metrics record.

    ``options.split`` is the manifests' split the tasks score ("validate" for choosing
    settings, so the test split stays unseen; probes then do not run)."""
    options = options or Options()
    checkpoint = Path(checkpoint)
    identity = run_identity(checkpoint)
    out = Path(out) if out is not None else Path(identity["run"]) / summary.EVALUATION_DIR
    out.mkdir(parents=True, exist_ok=True)
    model = Clip2Clinic.from_pretrained(identity["checkpoint"], device=device,
                                        image_size=identity.pop("image_size"))
    cache = Path(cache_dir) if cache_dir is not None else out / "embeddings"
    evaluation = Evaluation(model, data, out, options, progress, cache)
    for name, manifest in data.manifests.items():
        evaluation.run_manifest(name, manifest, [t for t in tasks if t in MANIFEST_TASKS])
    for name, root in data.datasets.items():
        evaluation.run_dataset(name, root, tasks)
    return write_outputs(evaluation, identity, out, model.fingerprint)


def write_outputs(evaluation: Evaluation, identity: dict, out: Path, fingerprint: str) -> dict:
    """Write each outcome's CSV, the ROC points and metrics.json; return the record."""
    record: dict[str, Any] = {**identity, "fingerprint": fingerprint,
                              "split": evaluation.split, "tasks": {}}  # fmt: skip
    for outcome in evaluation.outcomes:
        name = f"{outcome.task}_{outcome.dataset}"
        write_csv_atomic(outcome.result.table, out / f"{name}.csv")
        record["tasks"][name] = {
            "csv": f"{name}.csv", "dataset": dataset_key(outcome.dataset),
            "seconds": round(outcome.seconds, 2),
            "metrics": sorted(metric_key(m, outcome.dataset) for m in outcome.result.metrics),
        }  # fmt: skip
    curves = [o.curves for o in evaluation.outcomes if o.curves is not None]
    if curves:
        write_csv_atomic(pd.concat(curves, ignore_index=True), out / summary.ROC_FILE)
    record["metrics"] = {k: v.to_dict() for k, v in evaluation.metrics().items()}
    strict = {k: {f: None if _is_nan(x) else x for f, x in m.items()}
              for k, m in record["metrics"].items()}  # fmt: skip
    text = json.dumps({**record, "metrics": strict}, indent=1)
    write_text_atomic(text, out / summary.METRICS_FILE)
    return record


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _brief(metrics: dict[str, Estimate]) -> str:
    return ", ".join(f"{k} {v.value:.3f}" for k, v in metrics.items())
