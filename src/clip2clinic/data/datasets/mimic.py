"""MIMIC-CXR-JPG (PhysioNet, v2.0.0/2.1.0) with the free-text reports of MIMIC-CXR.

One row per image (dicom_id), at ``files/pXX/pSUBJECT/sSTUDY/DICOM_ID.jpg`` (XX: the first two
digits of the subject id), its report at ``files/pXX/pSUBJECT/sSTUDY.txt``. Labels are per
study (the CheXpert or NegBio file of the release, the 14 CheXpert observations), shared by
every image of the study; a study missing from the label file gets NaN. The split is the
official ``mimic-cxr-2.0.0-split.csv.gz`` (by patient).
By default only frontal images (ViewPosition PA or AP) are kept, as in the paper.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clip2clinic.data.datasets.base import (
    XrayDataset,
    missing_root_error,
    require,
    to_float_labels,
)
from clip2clinic.io import read_table
from clip2clinic.observations import CHEXPERT_CLASSES

METADATA = "mimic-cxr-2.0.0-metadata.csv.gz"
SPLIT = "mimic-cxr-2.0.0-split.csv.gz"
LABEL_FILES = {
    "chexpert": "mimic-cxr-2.0.0-chexpert.csv.gz",
    "negbio": "mimic-cxr-2.0.0-negbio.csv.gz",
}
FRONTAL_VIEWS = ("PA", "AP")


class MimicCxr(XrayDataset):
    """MIMIC-CXR-JPG images, official split, CheXpert/NegBio study labels and report files."""

    name = "MIMIC-CXR-JPG"
    has_reports = True
    layout = """\
ROOT/                                   (physionet.org/files/mimic-cxr-jpg/2.0.0 or 2.1.0)
  mimic-cxr-2.0.0-metadata.csv.gz       dicom_id,subject_id,study_id,...,ViewPosition,...
  mimic-cxr-2.0.0-split.csv.gz          dicom_id,study_id,subject_id,split (train/validate/test)
  mimic-cxr-2.0.0-chexpert.csv.gz       subject_id,study_id + the 14 CheXpert observations
  (or mimic-cxr-2.0.0-negbio.csv.gz)
  files/pXX/pSUBJECT/sSTUDY/DICOM_ID.jpg
REPORTS_ROOT/ (default ROOT; the unzipped mimic-cxr-reports.zip)
  files/pXX/pSUBJECT/sSTUDY.txt"""

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        reports_root: str | os.PathLike | None = None,
        views: Sequence[str] | None = FRONTAL_VIEWS,
        labeler: str = "chexpert",
        uncertain: float = -1.0,
        transform: Callable[[np.ndarray], Any] | None = None,
    ) -> None:
        """``views``: ViewPosition values to keep (None keeps all, lateral included);
        ``labeler``: "chexpert" or "negbio" label file; ``uncertain``: the value given to
        uncertain (-1) labels (keep -1, or e.g. 0, 1 or NaN)."""
        if labeler not in LABEL_FILES:
            raise ValueError(f"labeler must be one of {sorted(LABEL_FILES)}, got {labeler!r}")
        root = Path(root)
        require(type(self), root, METADATA, SPLIT, LABEL_FILES[labeler], "files")
        reports = Path(reports_root) if reports_root is not None else root
        if not (reports / "files").is_dir():
            raise missing_root_error(type(self), reports, ["files (the report folder)"])

        ids = ["dicom_id", "subject_id", "study_id"]
        metadata = read_table(root / METADATA, required=[*ids, "ViewPosition"], path_columns=ids)
        split = read_table(root / SPLIT, required=["dicom_id", "split"])
        study_labels = read_table(
            root / LABEL_FILES[labeler], required=["subject_id", "study_id", *CHEXPERT_CLASSES]
        )
        images = metadata.merge(split[["dicom_id", "split"]], on="dicom_id", how="inner")
        if views is not None:
            wanted = {v.upper() for v in views}
            images = images[images["ViewPosition"].fillna("").str.upper().isin(wanted)]
        images = images.merge(
            study_labels.drop_duplicates(["subject_id", "study_id"]),
            on=["subject_id", "study_id"],
            how="left",
        ).reset_index(drop=True)

        subject, study = images["subject_id"], images["study_id"]
        folders = "files/p" + subject.str[:2] + "/p" + subject + "/s" + study  # vectorised
        frame = pd.DataFrame(
            {
                "image_id": images["dicom_id"],
                "patient_id": subject,
                "study_id": study,
                "split": images["split"],
                "view": images["ViewPosition"],
                "path": f"{root}/" + folders + "/" + images["dicom_id"] + ".jpg",
                "report_path": f"{reports}/" + folders + ".txt",
            }
        )
        labels = to_float_labels(images, CHEXPERT_CLASSES)
        labels[labels == -1] = uncertain
        super().__init__(frame, CHEXPERT_CLASSES, labels, transform)
