"""VinDr-CXR (PhysioNet v1.0.0): image-level labels from several radiologists.

Labels are read from ``image_labels_{train,test}.csv`` (one row per image and radiologist, one
0/1 column per finding or diagnosis; the pathologies are those columns, in file order). Where
those files are absent, the box files ``annotations_{train,test}.csv`` (one row per box, with
``class_name``; "No finding" rows for clean images) are turned into the same 0/1 table; they
only hold the local findings and "No finding", not the global diagnoses (COPD, Lung tumor,
Pneumonia, Tuberculosis, Other diseases).

Each training image was read by three radiologists (``rad_id``); the test images carry the
consensus of five. The radiologists' votes are aggregated per image and label with
``aggregate``: "majority" (default; positive when more than half of the readers marked it, i.e.
2 of 3) or "any" (positive when at least one did). ``raters`` keeps the number of readers.

The release carries no patient id (``patient_id`` = ``image_id``). Splits: the official train
and test, with ``validation_fraction`` of the training images moved to "validate" (seeded).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clip2clinic.data.datasets.base import (
    XrayDataset,
    first_existing,
    index_files,
    missing_root_error,
    require,
)
from clip2clinic.data.datasets.splits import group_split
from clip2clinic.io import read_table

OFFICIAL_SPLITS = {"train": "train", "test": "test"}
IMAGE_SUFFIXES = (".dicom", ".dcm", ".png", ".jpg", ".jpeg")
ID_COLUMNS = ("image_id", "rad_id")


def _annotation_file(dataset: type[XrayDataset], root: Path, stem: str) -> Path | None:
    return first_existing(dataset, root, [f"annotations/{stem}", stem], required=False)


def votes_from_boxes(boxes: pd.DataFrame) -> pd.DataFrame:
    """Box rows (image_id, rad_id, class_name) as one 0/1 row per image and reader."""
    if "rad_id" not in boxes:
        boxes = boxes.assign(rad_id="consensus")
    marked = boxes.assign(value=1.0).pivot_table(
        index=["image_id", "rad_id"], columns="class_name", values="value", aggfunc="max"
    )
    return marked.fillna(0.0).reset_index()


def aggregate_votes(votes: pd.DataFrame, pathologies: list[str], rule: str) -> pd.DataFrame:
    """One row per image: the readers' votes combined by ``rule`` ("majority" or "any")."""
    values = votes[pathologies].apply(pd.to_numeric, errors="coerce")
    grouped = values.groupby(votes["image_id"], sort=False)
    combined = (grouped.mean() > 0.5) if rule == "majority" else (grouped.max() > 0)
    combined = combined.astype(np.float32)
    combined[grouped.count() == 0] = np.nan  # nobody gave a value
    combined["raters"] = votes.groupby("image_id", sort=False).size()
    return combined.reset_index()


class VinDrCxr(XrayDataset):
    """VinDr-CXR with per-image labels aggregated over radiologists."""

    name = "VinDr-CXR"
    layout = """\
ROOT/                                   (physionet.org/files/vindr-cxr/1.0.0)
  annotations/image_labels_train.csv    image_id,rad_id,<one 0/1 column per label>
  annotations/image_labels_test.csv
  (or annotations/annotations_{train,test}.csv: image_id,rad_id,class_name,x_min,...)
  train/IMAGE_ID.dicom
  test/IMAGE_ID.dicom"""

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        aggregate: str = "majority",
        validation_fraction: float = 0.1,
        seed: int = 0,
        transform: Callable[[np.ndarray], Any] | None = None,
    ) -> None:
        """``aggregate``: "majority" or "any" (see the module notes); ``validation_fraction``:
        share of the official training images moved to "validate"."""
        if aggregate not in ("majority", "any"):
            raise ValueError(f"aggregate must be 'majority' or 'any', got {aggregate!r}")
        root = Path(root)
        require(type(self), root, *OFFICIAL_SPLITS.values())
        votes, from_boxes = {}, {}
        for split in OFFICIAL_SPLITS:
            votes[split], from_boxes[split] = self._votes(root, split)
        pathologies = [c for c in votes["train"].columns if c not in ID_COLUMNS]
        pathologies += [
            c for c in votes["test"].columns if c not in ID_COLUMNS and c not in pathologies
        ]
        parts = []
        for split, folder in OFFICIAL_SPLITS.items():
            # A class absent from a box file was marked by nobody (0); absent from an
            # image-label file it was not asked (unknown).
            fill = 0.0 if from_boxes[split] else np.nan
            table = votes[split].reindex(columns=["image_id", *pathologies], fill_value=fill)
            images = aggregate_votes(table, pathologies, aggregate)
            files = index_files(root / folder, IMAGE_SUFFIXES)
            images["path"] = [files.get(image_id) for image_id in images["image_id"]]
            images["split"] = split
            parts.append(images)
        rows = pd.concat(parts, ignore_index=True)
        train = rows["split"] == "train"
        rows.loc[train, "split"] = group_split(
            rows.loc[train, "image_id"], (1 - validation_fraction, validation_fraction, 0.0), seed
        )
        frame = pd.DataFrame(
            {
                "image_id": rows["image_id"],
                "patient_id": rows["image_id"],
                "study_id": rows["image_id"],
                "split": rows["split"],
                "view": None,
                "path": rows["path"],
                "raters": rows["raters"].astype(int),
            }
        )
        super().__init__(frame, pathologies, rows[pathologies].to_numpy(np.float32), transform)

    @classmethod
    def _votes(cls, root: Path, split: str) -> tuple[pd.DataFrame, bool]:
        """The split's per-reader 0/1 table, and whether it came from the box file."""
        labels = _annotation_file(cls, root, f"image_labels_{split}.csv")
        if labels is not None:
            return read_table(labels, required=["image_id"]), False
        boxes = _annotation_file(cls, root, f"annotations_{split}.csv")
        if boxes is None:
            raise missing_root_error(
                cls, root, [f"annotations/image_labels_{split}.csv or annotations_{split}.csv"]
            )
        return votes_from_boxes(read_table(boxes, required=["image_id", "class_name"])), True
