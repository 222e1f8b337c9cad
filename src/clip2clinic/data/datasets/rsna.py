"""RSNA Pneumonia Detection Challenge (stage 2 training set).

``stage_2_train_labels.csv`` has one row per box (``patientId,x,y,width,height,Target``) and one
row with Target 0 for an image without boxes; the reader keeps one row per ``patientId`` (sorted,
as GLoRIA's groupby does) with label Pneumonia = 1 when any box exists, and the boxes as a list
of ``(x, y, width, height)``.

In RSNA every ``patientId`` is exactly one image (the id names the DICOM file); the patients
behind the images are not released. So the "patient" split groups by ``patientId``, which is
the best the release allows and amounts to an image-level split.

Splits (``split=``):
- "gloria" (default): GLoRIA's 70/15/15 row split (scikit-learn, ``random_state`` = seed, 0 in
  GLoRIA); ``fractions`` do not apply to it;
- "patient": our seeded split grouped by patientId, by ``fractions`` (70/15/15 by default).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clip2clinic.data.datasets.base import XrayDataset, index_files, require
from clip2clinic.data.datasets.splits import gloria_split, group_split
from clip2clinic.io import InputError, read_table

LABELS = "stage_2_train_labels.csv"
IMAGES = "stage_2_train_images"
#: Optional: the detailed class of each image (Lung Opacity, No Lung Opacity / Not Normal,
#: Normal), read into the ``detailed_class`` column when present (RSNA-ab uses it).
DETAILED = "stage_2_detailed_class_info.csv"
#: RSNA's detailed class (stage_2_detailed_class_info.csv) -> RSNA-ab label: pneumonia (lung
#: opacity) against every other abnormal image; normal images are not part of the task.
RSNA_AB_CLASSES = {"Lung Opacity": 1.0, "No Lung Opacity / Not Normal": 0.0, "Normal": math.nan}


def rsna_ab_labels(detailed_classes: Sequence[str]) -> np.ndarray:
    """RSNA-ab labels from RSNA's detailed class per image: 1 pneumonia, 0 other abnormal, NaN
    normal (left out); an unknown class name raises ValueError naming it."""
    unknown = sorted(set(detailed_classes) - set(RSNA_AB_CLASSES))
    if unknown:
        raise ValueError(
            f"unknown RSNA detailed class {unknown[0]!r}; expected {list(RSNA_AB_CLASSES)}"
        )
    return np.array([RSNA_AB_CLASSES[c] for c in detailed_classes], dtype=float)



class RsnaPneumonia(XrayDataset):
    """RSNA Pneumonia: one row per image, label Pneumonia, GLoRIA's or a grouped split."""

    name = "RSNA Pneumonia"
    layout = """\
ROOT/
  stage_2_train_labels.csv       patientId,x,y,width,height,Target
  stage_2_detailed_class_info.csv  patientId,class  (optional; RSNA-ab)
  stage_2_train_images/PATIENTID.dcm"""

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        split: str = "gloria",
        fractions: Sequence[float] = (0.7, 0.15, 0.15),
        seed: int = 0,
        transform: Callable[[np.ndarray], Any] | None = None,
    ) -> None:
        """``split``: "gloria" or "patient" (see the module notes)."""
        if split not in ("gloria", "patient"):
            raise ValueError(f"split must be 'gloria' or 'patient', got {split!r}")
        root = Path(root)
        require(type(self), root, LABELS, IMAGES)
        table = read_table(
            root / LABELS, required=["patientId", "x", "y", "width", "height", "Target"]
        )
        target = pd.to_numeric(table["Target"], errors="coerce")
        if target.isna().any():
            bad = int(target.isna().idxmax()) + 2
            raise InputError(f"{root / LABELS}: line {bad}: Target is not a number")
        boxes = table[["x", "y", "width", "height"]].apply(pd.to_numeric, errors="coerce")
        table = table.assign(
            Target=target,
            box=[
                tuple(map(float, b)) if t == 1 and not np.isnan(b).any() else None
                for b, t in zip(boxes.to_numpy(), target, strict=True)
            ],
        )
        per_image = table.groupby("patientId", sort=True).agg(
            Target=("Target", "max"), boxes=("box", lambda b: [x for x in b if x is not None])
        )
        per_image = per_image.reset_index()
        files = index_files(root / IMAGES, (".dcm",))
        if split == "gloria":
            names = gloria_split(per_image.index, seed=seed)
        else:
            names = group_split(per_image["patientId"], fractions, seed)
        frame = pd.DataFrame(
            {
                "image_id": per_image["patientId"],
                "patient_id": per_image["patientId"],
                "study_id": per_image["patientId"],
                "split": names.to_numpy(),
                "view": None,
                "path": [files.get(p) for p in per_image["patientId"]],
                "boxes": per_image["boxes"],
                "detailed_class": _detailed_classes(root, per_image["patientId"]),
            }
        )
        labels = per_image[["Target"]].to_numpy(dtype=np.float32)
        super().__init__(frame, ["Pneumonia"], labels, transform)


def _detailed_classes(root: Path, patients: pd.Series) -> list[str | None]:
    """Each image's class from the optional detailed class file (None where absent)."""
    if not (root / DETAILED).is_file():
        return [None] * len(patients)
    table = read_table(root / DETAILED, required=["patientId", "class"])
    by_patient = table.drop_duplicates("patientId").set_index("patientId")["class"]
    return [by_patient.get(p) for p in patients]
