"""CheXpert (v1.0 or v1.0-small) and the CheXpert 5x200 zero-shot set of GLoRIA.

CheXpert: ``train.csv`` -> split "train", ``valid.csv`` -> split "validate" (the official
splits are patient-disjoint). Labels are the 14 observations as released (1, 0, -1 uncertain,
NaN blank); the patient id is parsed from the path (``patientNNNNN``).

5x200: 200 frontal training images for each of Atelectasis, Cardiomegaly, Consolidation, Edema
and Pleural Effusion. With GLoRIA's released ``chexpert_5x200.csv`` that file is read as it is
(use it to compare with published numbers). Without it the set is rebuilt by GLoRIA's rule
(preprocess_datasets.py): frontal rows of train.csv, blanks read as 0, and for each class the
rows where that class is 1 and every other finding (the 13 observations other than No Finding)
is 0, so uncertain (-1) rows are excluded; then 200 rows per class sampled with ``seed``. The
rule is GLoRIA's, the sample is ours: do not expect a rebuild to equal the released file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clip2clinic.data.datasets.base import (
    XrayDataset,
    missing_root_error,
    to_float_labels,
)
from clip2clinic.io import InputError, read_table
from clip2clinic.observations import CHEXPERT_CLASSES, FINDINGS

FOLDERS = ("CheXpert-v1.0-small", "CheXpert-v1.0")
SPLIT_FILES = {"train": "train.csv", "validate": "valid.csv"}
FIVE_CLASSES = ("Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion")
FIVE_BY_200_CSV = "chexpert_5x200.csv"
PATIENT = re.compile(r"(patient\d+)")

LAYOUT = """\
ROOT/                          (CheXpert-v1.0 or CheXpert-v1.0-small, or the folder holding it)
  train.csv                    Path,Sex,Age,Frontal/Lateral,AP/PA + the 14 observations
  valid.csv                    same columns
  train/patientNNNNN/studyN/viewN_frontal.jpg
  valid/patientNNNNN/studyN/viewN_frontal.jpg"""


def dataset_folder(dataset: type[XrayDataset], root: Path) -> Path:
    """The CheXpert folder: ``root`` itself when it holds train.csv, else a v1.0 sub-folder."""
    for folder in (root, *(root / name for name in FOLDERS)):
        if (folder / "train.csv").is_file():
            return folder
    raise missing_root_error(dataset, root, ["train.csv (in ROOT or ROOT/CheXpert-v1.0[-small])"])


def image_path(folder: Path, relative: str) -> str:
    """Resolve a CSV ``Path`` ("CheXpert-v1.0-small/train/...") against the dataset folder,
    whichever of the two versions the user has."""
    parts = Path(relative).parts
    if parts and parts[0].startswith("CheXpert"):
        parts = parts[1:]
    return str(folder.joinpath(*parts))


def chexpert_frame(table: pd.DataFrame, folder: Path, split: str) -> pd.DataFrame:
    """The contract columns for rows of a CheXpert-style CSV."""
    relative = table["Path"].str.replace("\\", "/", regex=False)
    patient = relative.str.extract(PATIENT, expand=False)
    study = relative.str.extract(r"(patient\d+/study\d+)", expand=False)
    lateral = table["Frontal/Lateral"].str.lower().eq("lateral")
    view = table["AP/PA"].where(~lateral, "Lateral") if "AP/PA" in table else None
    return pd.DataFrame(
        {
            "image_id": relative.str.replace(r"^CheXpert[^/]*/", "", regex=True).str.replace(
                r"\.jpg$", "", regex=True
            ),
            "patient_id": patient,
            "study_id": study,
            "split": split,
            "view": view if view is not None else table["Frontal/Lateral"],
            "path": [image_path(folder, p) for p in relative],
            "frontal": ~lateral,
        }
    )


class CheXpert(XrayDataset):
    """CheXpert train/valid images with their 14 released labels."""

    name = "CheXpert"
    layout = LAYOUT

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        views: Sequence[str] | None = None,
        uncertain: float = -1.0,
        transform: Callable[[np.ndarray], Any] | None = None,
    ) -> None:
        """``views``: keep rows whose view ("AP", "PA", "Lateral", ...) is listed (None: all);
        ``uncertain``: the value given to uncertain (-1) labels."""
        folder = dataset_folder(type(self), Path(root))
        required = ["Path", "Frontal/Lateral", *CHEXPERT_CLASSES]
        frames, labels = [], []
        for split, name in SPLIT_FILES.items():
            if not (folder / name).is_file():
                raise missing_root_error(type(self), folder, [name])
            table = read_table(folder / name, required=required, path_columns=["Path"])
            frames.append(chexpert_frame(table, folder, split))
            labels.append(to_float_labels(table, CHEXPERT_CLASSES))
        frame = pd.concat(frames, ignore_index=True)
        values = np.concatenate(labels)
        values[values == -1] = uncertain
        if views is not None:
            keep = frame["view"].fillna("").str.lower().isin({v.lower() for v in views})
            frame, values = frame[keep.to_numpy()], values[keep.to_numpy()]
        super().__init__(frame, CHEXPERT_CLASSES, values, transform)


def five_by_200_rows(train: pd.DataFrame, per_class: int = 200, seed: int = 0) -> pd.DataFrame:
    """GLoRIA's 5x200 rule applied to CheXpert's train.csv rows (see the module notes)."""
    frontal = train[train["Frontal/Lateral"].str.lower() == "frontal"]
    findings = frontal[list(FINDINGS)].apply(pd.to_numeric, errors="coerce").fillna(0.0)
    chosen = []
    for name in FIVE_CLASSES:
        others = [f for f in FINDINGS if f != name]
        candidates = frontal[(findings[name] == 1) & (findings[others] == 0).all(axis=1)]
        if len(candidates) < per_class:
            raise InputError(
                f"CheXpert 5x200: only {len(candidates)} frontal training images are positive "
                f"for exactly {name!r} (need {per_class})"
            )
        chosen.append(candidates.sample(n=per_class, random_state=seed))
    return pd.concat(chosen)


class CheXpert5x200(XrayDataset):
    """The 5-class, 200-per-class CheXpert zero-shot set (released CSV or seeded rebuild)."""

    name = "CheXpert 5x200"
    layout = LAYOUT + f"\n  {FIVE_BY_200_CSV}             (optional: GLoRIA's released file)"

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        csv: str | os.PathLike | None = None,
        per_class: int = 200,
        seed: int = 0,
        transform: Callable[[np.ndarray], Any] | None = None,
    ) -> None:
        """``csv``: GLoRIA's released file (default: ``chexpert_5x200.csv`` in the root or the
        CheXpert folder if present); otherwise ``per_class`` images per class are drawn from
        train.csv with ``seed``. Every row is in split "test"."""
        root = Path(root)
        folder = dataset_folder(type(self), root)
        released = Path(csv) if csv is not None else None
        if released is None:
            for candidate in (root / FIVE_BY_200_CSV, folder / FIVE_BY_200_CSV):
                if candidate.is_file():
                    released = candidate
                    break
        required = ["Path", "Frontal/Lateral", *FIVE_CLASSES]
        if released is not None:
            rows = read_table(released, required=required, path_columns=["Path"])
            self.source = f"released file {released}"
        else:
            train = read_table(
                folder / "train.csv", required=["Path", "Frontal/Lateral", *FINDINGS]
            )
            rows = five_by_200_rows(train, per_class, seed)
            self.source = f"rebuilt from {folder / 'train.csv'} by GLoRIA's rule, seed {seed}"
        labels = to_float_labels(rows, FIVE_CLASSES)
        labels[np.isnan(labels)] = 0.0
        super().__init__(chexpert_frame(rows, folder, "test"), FIVE_CLASSES, labels, transform)
