"""What ``clip2clinic evaluate`` reads: the ``--data`` sources, the model's embeddings (cached
on disk) and the loaded data a task's runner scores.

- :class:`DataSources` and :func:`parse_data`: the ``--data`` values sorted into prepared
  manifests, reader datasets and CXR-Align files, their names checked to give distinct metric
  keys.
- :class:`Embedder`: image and text embeddings cached per checkpoint and input list.
- :class:`Corpus`: one split of a prepared manifest with its image embeddings;
  :class:`ReaderData`: a reader dataset (:mod:`clip2clinic.data.datasets`) with its image
  embeddings. Both keep readable images only.
- :class:`Context`: what every runner gets beside its data: the embedder, the sources, the
  output folder, the model's temperature and the run's settings.

Task modules import this module for types only; it imports none of them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from clip2clinic.data.corpus import PreparedCorpus
from clip2clinic.data.datasets import READERS, open_dataset
from clip2clinic.data.datasets.options import parse_reader_options
from clip2clinic.data.datasets.rsna import rsna_ab_labels
from clip2clinic.data.manifest import label_matrix, read_manifest
from clip2clinic.evaluation.classwise import blank_as_negative
from clip2clinic.evaluation.embeddings import (
    EmbedSettings,
    cached_image_embeddings,
    cached_text_embeddings,
)
from clip2clinic.evaluation.protocol import PROTOCOLS, Protocol
from clip2clinic.evaluation.results import dataset_key
from clip2clinic.evaluation.tasks import ID_COLUMNS
from clip2clinic.io import InputError, as_text

if TYPE_CHECKING:
    from clip2clinic.api import Clip2Clinic

log = logging.getLogger(__name__)

#: Manifest ``view`` values of frontal images (Open-i's "Frontal", MIMIC's "PA"/"AP").
FRONTAL_VIEWS = frozenset({"frontal", "pa", "ap"})
#: The reader dataset scored by CheXpert 5x200 accuracy only.
FIVE_BY_200 = "chexpert5x200"


@dataclass
class DataSources:
    """What ``--data`` named: prepared manifests, reader datasets and CXR-Align files."""

    manifests: dict[str, Path] = field(default_factory=dict)
    datasets: dict[str, Path] = field(default_factory=dict)
    cxr_align_files: dict[str, Path] = field(default_factory=dict)
    #: Reader options given in ``--data READER:KEY=VALUE[,KEY=VALUE]=ROOT``, per reader.
    dataset_options: dict[str, dict[str, Any]] = field(default_factory=dict)

    def cxr_align_file(self, name: str) -> Path | None:
        """The CXR-Align file to score on manifest ``name``: the one of the same NAME, else the
        only one given when there is one manifest; None: build one."""
        file = self.cxr_align_files.get(name)
        if file is None and len(self.manifests) == 1 and self.cxr_align_files:
            file = next(iter(self.cxr_align_files.values()))
        return file


def parse_data(specs: Iterable[str]) -> DataSources:
    """Sort ``--data`` values into manifests, reader datasets (with their options) and
    CXR-Align files."""
    sources = DataSources()
    named_manifests: list[str] = []
    for spec in specs:
        name, _, location = spec.rpartition("=")
        path = Path(location)
        reader, colon, options = name.partition(":")
        if path.suffix == ".parquet":
            named_manifests.append(name or path.stem)
            sources.manifests[name or path.stem] = path
        elif path.suffix == ".json":
            sources.cxr_align_files[name or path.stem] = path
        elif reader.lower() in READERS:
            sources.datasets[reader.lower()] = path
            if colon:
                sources.dataset_options[reader.lower()] = parse_reader_options([options],
                                                                           f"--data {spec!r}")
        else:
            raise InputError(
                f"--data {spec!r}: expected [NAME=]manifest.parquet, [NAME=]cxr_align.json or "
                f"READER[:KEY=VALUE,...]=ROOT with READER one of {', '.join(READERS)}"
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


class Embedder:
    """The model's image and text embeddings, cached on disk per checkpoint and input list;
    callable on texts (the ``embed_texts`` of the task functions)."""

    def __init__(self, model: Clip2Clinic, cache_dir: Path, progress: bool,
                 settings: EmbedSettings | None = None):  # fmt: skip
        self.model, self.cache_dir, self.progress = model, cache_dir, progress
        self.settings = settings or EmbedSettings()

    def images(self, paths: Sequence[str | os.PathLike]) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings and the ``ok`` mask (unreadable files are skipped and counted)."""
        return cached_image_embeddings(self.model, paths, self.cache_dir, self.settings,
                                       progress=self.progress)  # fmt: skip

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        unique = list(dict.fromkeys(texts))
        embeddings, _ = cached_text_embeddings(self.model, unique, self.cache_dir, self.settings)
        row = {text: i for i, text in enumerate(unique)}
        return embeddings[[row[t] for t in texts]]


@dataclass
class Corpus:
    """One split of a prepared manifest with its image embeddings (readable images only)."""

    name: str
    frame: pd.DataFrame
    images: np.ndarray

    @classmethod
    def load(cls, name: str, manifest: Path, split: str | None, embed: Embedder,
             frontal_only: bool = False) -> Corpus:  # fmt: skip
        """The rows of ``split`` (None: every split), only frontal views with
        ``frontal_only``, and their image embeddings."""
        frame = read_manifest(manifest, split=split)
        if frontal_only:
            frame = frame[frame["view"].str.lower().isin(FRONTAL_VIEWS)]
        frame = frame.reset_index(drop=True)
        if frame.empty:
            what = "frontal rows" if frontal_only else "rows"
            raise InputError(f"{manifest}: no {what} in split {split or 'any'!r}")
        images, ok = embed.images(PreparedCorpus(manifest).image_paths(frame))
        if not ok.all():
            log.warning("%s %s: %d unreadable images left out", name, split, int((~ok).sum()))
        return cls(name, frame[ok].reset_index(drop=True), images[ok])

    @property
    def labels(self) -> np.ndarray:
        return label_matrix(self.frame)

    @property
    def patients(self) -> np.ndarray:
        """The patient (subject) id of every row."""
        return self.frame["patient_id"].astype(str).to_numpy()

    @property
    def ids(self) -> pd.DataFrame:
        """The patient, study and image id of every row (the per-case tables' ids)."""
        return _ids(self.frame)

    @property
    def findings(self) -> np.ndarray:
        """The 13 findings (No Finding is not one), not mentioned read as absent."""
        return blank_as_negative(self.labels[:, 1:])


@dataclass
class ReaderData:
    """A reader dataset's images with their embeddings, labels (``len(frame) x
    len(classes)``) and frame (readable images only), as the protocol reads them; ``notes``:
    what the protocol and the reader chose (class set, label reading, test set), for
    metrics.json."""

    name: str
    frame: pd.DataFrame
    images: np.ndarray
    labels: np.ndarray
    classes: list[str]
    notes: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, name: str, root: Path, embed: Embedder,
             protocol: Protocol | None = None,
             options: dict[str, Any] | None = None) -> ReaderData:  # fmt: skip
        """Open reader ``name`` on ``root`` with the protocol's reader options, overridden by
        ``options`` (``--data READER:KEY=VALUE=ROOT``), and read its labels the protocol's
        way (class set, blank labels)."""
        protocol = protocol or PROTOCOLS["paper"]
        chosen = {**protocol.reader_options(name), **(options or {})}
        try:
            dataset = open_dataset(name, root, **chosen)
        except (ValueError, InputError) as exc:  # an unknown option or a bad value
            raise InputError(f"--data {name}: {exc}") from None
        frame = dataset.csv.reset_index(drop=True)
        present = frame["path"].notna().to_numpy()
        images, ok = embed.images(frame.loc[present, "path"].tolist())
        usable = np.flatnonzero(present)[ok]
        frame = frame.iloc[usable].reset_index(drop=True)
        test = (frame["split"] == "test").to_numpy()
        columns, labels, notes = protocol.reader_labels(
            name, list(dataset.pathologies), dataset.labels[usable], test if test.any() else None)
        notes = {"reader_options": chosen, **notes}
        if getattr(dataset, "source", None):
            notes["source"] = dataset.source
        return cls(name, frame, images[ok], labels[:, columns],
                   [dataset.pathologies[c] for c in columns], notes)  # fmt: skip

    @property
    def split(self) -> np.ndarray:
        return self.frame["split"].to_numpy()

    @property
    def patients(self) -> np.ndarray:
        """The patient id of every row."""
        return self.frame["patient_id"].astype(str).to_numpy()

    @property
    def ids(self) -> pd.DataFrame:
        """The patient, study and image id of every row (the per-case tables' ids)."""
        return _ids(self.frame)

    @property
    def test(self) -> np.ndarray:
        """Rows of the test split; every row when the dataset has no test split."""
        test = self.split == "test"
        return test if test.any() else np.ones(len(self.frame), dtype=bool)

    def rsna_ab_labels(self) -> np.ndarray | None:
        """RSNA-ab labels (``len(frame) x 1``: 1 pneumonia, 0 other abnormal, NaN normal) where
        the dataset has RSNA's detailed classes; None elsewhere."""
        detailed = self.frame.get("detailed_class")
        if detailed is None or not detailed.notna().any():
            return None
        return rsna_ab_labels(detailed.fillna("Normal"))[:, None]

    @property
    def is_five_by_200(self) -> bool:
        """CheXpert 5x200: scored by its 5-way accuracy only."""
        return self.name == FIVE_BY_200


def _ids(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({c: [as_text(v) for v in frame[c]] if c in frame else [""] * len(frame)
                         for c in ID_COLUMNS})  # fmt: skip


@dataclass(frozen=True)
class Context:
    """What a task's runner gets beside its data: the text (and image) embedder, the data
    sources, the output folder, the model's softmax temperature and the run's settings
    (``clip2clinic.evaluation.evaluate.Options``)."""

    embed: Embedder
    data: DataSources
    out: Path
    temperature: float
    split: str
    seed: int
    n_boot: int
    probe_seeds: tuple[int, ...]
    probe_c_grid: tuple[float, ...]
    protocol: Protocol = PROTOCOLS["paper"]

    def corpus(self, name: str, split: str) -> Corpus:
        """Another split of manifest ``name`` (the probes read train and validate)."""
        return Corpus.load(name, self.data.manifests[name], split, self.embed)
