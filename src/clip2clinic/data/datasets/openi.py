"""Open-i / Indiana University chest X-ray collection (the Kaggle CSV copy).

One row per image of ``indiana_projections.csv``, joined to its report in
``indiana_reports.csv`` by ``uid``; the uid is both the patient and the study (the collection
has one study per patient). Images are optional: without an images folder the reader runs in
reports-only mode (``path`` is None, ``dataset[i]["image"]`` is None).

The report text is rebuilt in MIMIC's section style, ``FINDINGS: ...`` then ``IMPRESSION: ...``
(empty sections left out), so the report pipeline parses both datasets the same way; the raw
``findings`` and ``impression`` columns are kept.

Labels come from the curated MeSH ``Problems`` field (the collection's own coding of each
report): a pathology is 1 when one of its terms below is listed and 0 otherwise; reports coded
"No Indexing" get NaN. Pathologies without a reliable MeSH term (Enlarged Cardiomediastinum,
Pleural Other) are left out. There is no official split: a seeded split by patient is made.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clip2clinic.data.datasets.base import DatasetRootError, XrayDataset, first_existing, require
from clip2clinic.data.datasets.splits import group_split
from clip2clinic.io import as_text, read_table

REPORTS = "indiana_reports.csv"
PROJECTIONS = "indiana_projections.csv"
IMAGE_FOLDERS = ("images_normalized", "images/images_normalized", "images")

#: CheXpert observation -> the MeSH Problems terms that code it.
PROBLEM_TERMS: dict[str, tuple[str, ...]] = {
    "No Finding": ("normal",),
    "Cardiomegaly": ("Cardiomegaly",),
    "Lung Lesion": ("Nodule", "Mass"),
    "Lung Opacity": ("Opacity", "Airspace Disease", "Infiltrate"),
    "Edema": ("Pulmonary Edema",),
    "Consolidation": ("Consolidation",),
    "Pneumonia": ("Pneumonia",),
    "Atelectasis": ("Pulmonary Atelectasis",),
    "Pneumothorax": ("Pneumothorax",),
    "Pleural Effusion": ("Pleural Effusion",),
    "Fracture": ("Fractures, Bone",),
    "Support Devices": (
        "Catheters, Indwelling",
        "Surgical Instruments",
        "Implanted Medical Device",
        "Medical Device",
        "Tube, Inserted",
        "Stents",
    ),
}
NOT_CODED = "No Indexing"


def mimic_style_report(findings: str, impression: str) -> str:
    """``FINDINGS: ...`` and ``IMPRESSION: ...`` paragraphs, empty sections left out."""
    parts = [
        f"{title}: {text.strip()}"
        for title, text in (("FINDINGS", findings), ("IMPRESSION", impression))
        if text.strip()
    ]
    return "\n\n".join(parts)


def problem_labels(problems: pd.Series) -> np.ndarray:
    """The MeSH Problems field ("A;B;C") as a float32 array over :data:`PROBLEM_TERMS`."""
    labels = np.zeros((len(problems), len(PROBLEM_TERMS)), dtype=np.float32)
    for row, cell in enumerate(problems):
        terms = {term.strip() for term in as_text(cell).split(";")}
        if NOT_CODED in terms:
            labels[row] = np.nan
            continue
        for column, codes in enumerate(PROBLEM_TERMS.values()):
            labels[row, column] = float(any(code in terms for code in codes))
    return labels


class OpenI(XrayDataset):
    """Open-i / IU X-ray: images (optional) with their reports and MeSH-derived labels."""

    name = "Open-i (IU X-ray)"
    has_reports = True
    layout = """\
ROOT/                          (the Kaggle copy, raddar/chest-xrays-indiana-university)
  indiana_reports.csv          uid,MeSH,Problems,image,indication,comparison,findings,impression
  indiana_projections.csv      uid,filename,projection (Frontal/Lateral)
  images_normalized/FILENAME   (or images/images_normalized/ or images/; optional: without
                               images the reader runs in reports-only mode)"""

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        images: str | os.PathLike | None = None,
        views: Sequence[str] | None = None,
        fractions: Sequence[float] = (0.7, 0.1, 0.2),
        seed: int = 0,
        transform: Callable[[np.ndarray], Any] | None = None,
    ) -> None:
        """``images``: the image folder (default: the first of the official ones that exists);
        ``views``: projections to keep ("Frontal", "Lateral"); ``fractions``/``seed``: the
        train/validate/test split by patient."""
        root = Path(root)
        require(type(self), root, REPORTS, PROJECTIONS)
        image_dir = (
            Path(images)
            if images is not None
            else first_existing(type(self), root, IMAGE_FOLDERS, required=False)
        )
        if image_dir is not None and not image_dir.is_dir():
            raise DatasetRootError(f"{self.name}: image folder {image_dir} does not exist")
        self.image_dir = image_dir

        reports = read_table(root / REPORTS, required=["uid", "Problems", "findings", "impression"])
        projections = read_table(root / PROJECTIONS, required=["uid", "filename", "projection"],
                                 path_columns=["filename"])
        if views is not None:
            wanted = {v.lower() for v in views}
            projections = projections[projections["projection"].str.lower().isin(wanted)]
        rows = projections.merge(reports, on="uid", how="inner").reset_index(drop=True)

        findings = rows["findings"].map(as_text)
        impression = rows["impression"].map(as_text)
        frame = pd.DataFrame(
            {
                "image_id": rows["filename"],
                "patient_id": rows["uid"],
                "study_id": rows["uid"],
                "split": group_split(rows["uid"], fractions, seed),
                "view": rows["projection"],
                "path": [
                    str(image_dir / name) if image_dir is not None else None
                    for name in rows["filename"]
                ],
                "findings": findings,
                "impression": impression,
                "report": [
                    mimic_style_report(f, i) for f, i in zip(findings, impression, strict=True)
                ],
            }
        )
        super().__init__(frame, list(PROBLEM_TERMS), problem_labels(rows["Problems"]), transform)

    @property
    def reports_only(self) -> bool:
        """True when no image folder was found (rows carry reports and labels, no images)."""
        return self.image_dir is None
