"""The contract every dataset reader follows (after torchxrayvision's ``pathologies``,
``labels``, ``csv``).

A reader is built from a dataset root in the dataset's official layout and exposes:

- ``pathologies``: the class names, in label-column order;
- ``csv`` (alias ``frame``): a pandas DataFrame, one row per image, with at least the columns
  of :data:`COLUMNS` (``path`` is None where the image file is absent, ``view`` None where the
  dataset does not say), plus ``report`` (text), ``report_path``, or the sections that the
  reader's ``report(i)`` composes (CheXpert Plus) where the dataset has reports;
- ``labels``: a float32 array ``len(csv) x len(pathologies)``: 1 positive, 0 negative,
  -1 uncertain (where the dataset has that notion), NaN unknown;
- ``len(dataset)`` and ``dataset[i]``: a dict with the image (``images.load_image``, then the
  optional ``transform``), its labels, ids, split, view, path and report.

A root that lacks what a reader needs raises :class:`DatasetRootError` naming the missing file or
folder and printing the official layout.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from clip2clinic.data.images import load_image
from clip2clinic.io import InputError, as_text, decode_lenient
from clip2clinic.vocabulary import SPLITS

#: Split names used by every reader (MIMIC-CXR's spelling).

#: Columns every reader's frame has.
COLUMNS = ("image_id", "patient_id", "study_id", "split", "view", "path")


class DatasetRootError(InputError):
    """A dataset root does not hold what its reader needs."""


class XrayDataset:
    """Base class of the readers; subclasses build ``frame`` and ``labels`` from their root."""

    #: Human-readable dataset name.
    name: ClassVar[str] = "dataset"
    #: The official layout the reader expects, shown when the root does not match.
    layout: ClassVar[str] = ""
    #: Whether rows carry report text (``report`` or ``report_path`` columns).
    has_reports: ClassVar[bool] = False

    def __init__(
        self,
        frame: pd.DataFrame,
        pathologies: Sequence[str],
        labels: np.ndarray,
        transform: Callable[[np.ndarray], Any] | None = None,
    ) -> None:
        missing = [column for column in COLUMNS if column not in frame.columns]
        if missing:
            raise ValueError(f"{self.name} frame lacks column(s) {missing}")
        labels = np.asarray(labels, dtype=np.float32).reshape(len(frame), len(pathologies))
        unknown = set(frame["split"].dropna()) - set(SPLITS)
        if unknown:
            raise ValueError(f"{self.name}: unknown split name(s) {sorted(unknown)}")
        frame = frame.reset_index(drop=True)
        for column in COLUMNS:  # pandas' str dtype would turn None into NaN
            frame[column] = none_for_missing(frame[column])
        self.frame = frame
        self.pathologies = list(pathologies)
        self.labels = labels
        self.transform = transform

    # -- the torchxrayvision-style surface

    @property
    def csv(self) -> pd.DataFrame:
        """The per-image table (torchxrayvision's name for it)."""
        return self.frame

    def __len__(self) -> int:
        return len(self.frame)

    def __repr__(self) -> str:
        counts = self.frame["split"].value_counts().to_dict()
        return f"{type(self).__name__}({len(self)} images, splits={counts})"

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"{self.name}: index {index} out of range for {len(self)} images")
        row = self.frame.iloc[index]
        path = row["path"]
        image = None if path is None else load_image(path)
        if image is not None and self.transform is not None:
            image = self.transform(image)
        sample = {
            "index": index % len(self),
            "image": image,
            "labels": self.labels[index],
            **{column: row[column] for column in COLUMNS},
        }
        if self.has_reports:
            sample["report"] = self.report(index)
        return sample

    def report(self, index: int) -> str | None:
        """The report of row ``index``: its ``report`` text, or the file at ``report_path``
        (None where that file is missing or the dataset has no reports)."""
        row = self.frame.iloc[index]
        if "report" in self.frame.columns:
            return as_text(row["report"])
        path = row.get("report_path")
        if path is None or not os.path.isfile(path):
            return None
        return decode_lenient(Path(path).read_bytes(), str(path))

    def label_frame(self) -> pd.DataFrame:
        """``labels`` as a DataFrame with one column per pathology (index aligned with csv)."""
        return pd.DataFrame(self.labels, columns=self.pathologies, index=self.frame.index)

    def subset(self, split: str | None = None, mask: Sequence[bool] | None = None) -> XrayDataset:
        """A copy restricted to one split and/or a boolean row mask."""
        keep = np.ones(len(self), dtype=bool)
        if split is not None:
            if split not in SPLITS:
                raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
            keep &= (self.frame["split"] == split).to_numpy()
        if mask is not None:
            keep &= np.asarray(mask, dtype=bool)
        clone = copy.copy(self)
        clone.frame = self.frame[keep].reset_index(drop=True)
        clone.labels = self.labels[keep]
        return clone


# --------------------------------------------------------------------------- root checks


def missing_root_error(
    dataset: type[XrayDataset], root: Path, missing: Sequence[str]
) -> DatasetRootError:
    """The error for a root that lacks ``missing`` (paths relative to the root)."""
    what = ", ".join(missing)
    return DatasetRootError(
        f"{dataset.name} root {root}: missing {what}. Expected the official layout:\n"
        f"{dataset.layout.rstrip()}"
    )


def require(dataset: type[XrayDataset], root: Path, *relative: str) -> None:
    """Raise :class:`DatasetRootError` unless every ``relative`` path exists under ``root``."""
    if not root.is_dir():
        raise missing_root_error(dataset, root, ["the root folder itself"])
    missing = [name for name in relative if not (root / name).exists()]
    if missing:
        raise missing_root_error(dataset, root, missing)


def first_existing(
    dataset: type[XrayDataset], root: Path, candidates: Sequence[str], required: bool = True
) -> Path | None:
    """The first of ``candidates`` (relative to ``root``) that exists; if none does, raise
    (or return None when not ``required``)."""
    for name in candidates:
        if (root / name).exists():
            return root / name
    if required:
        raise missing_root_error(dataset, root, [" or ".join(candidates)])
    return None


def index_files(folder: Path, suffixes: Sequence[str]) -> dict[str, str]:
    """Map file stem -> path for every file under ``folder`` (recursively) with one of
    ``suffixes`` (lower-case, with the dot)."""
    found: dict[str, str] = {}
    for directory, _, names in os.walk(folder):
        for name in names:
            stem, suffix = os.path.splitext(name)
            if suffix.lower() in suffixes:
                found.setdefault(stem, os.path.join(directory, name))
    return found


def to_float_labels(frame: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """Label columns read as text ("1.0", "0", "-1", "") as a float32 array, NaN for blanks."""
    values = frame[list(columns)].apply(pd.to_numeric, errors="coerce")
    return np.array(values.to_numpy(dtype=np.float32), copy=True)  # writable


def none_for_missing(values: pd.Series) -> pd.Series:
    """``values`` with None (not NaN) for missing cells, as the contract promises (an object
    series where something is missing; unchanged otherwise)."""
    missing = values.isna()
    if not missing.any():
        return values
    return values.astype(object).where(~missing, None)
