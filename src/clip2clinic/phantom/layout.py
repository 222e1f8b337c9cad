"""The MIMIC-CXR-JPG v2.0.0 file layout and its three CSV tables, written byte-for-byte
reproducibly (gzip without a time stamp or file name) and atomically."""

from __future__ import annotations

import csv
import gzip
import io
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from clip2clinic.io import atomic_path
from clip2clinic.observations import CHEXPERT_CLASSES
from clip2clinic.phantom.truth import Study

METADATA_FILE = "mimic-cxr-2.0.0-metadata.csv.gz"
SPLIT_FILE = "mimic-cxr-2.0.0-split.csv.gz"
CHEXPERT_FILE = "mimic-cxr-2.0.0-chexpert.csv.gz"

METADATA_COLUMNS = (
    "dicom_id", "subject_id", "study_id", "PerformedProcedureStepDescription", "ViewPosition",
    "Rows", "Columns", "StudyDate", "StudyTime", "ProcedureCodeSequence_CodeMeaning",
    "ViewCodeSequence_CodeMeaning", "PatientOrientationCodeSequence_CodeMeaning",
)
SPLIT_COLUMNS = ("dicom_id", "study_id", "subject_id", "split")
#: MIMIC's chexpert table orders the 14 observations alphabetically.
CHEXPERT_COLUMNS = ("subject_id", "study_id", *sorted(CHEXPERT_CLASSES))

_VIEW_MEANING = {"PA": "postero-anterior", "AP": "antero-posterior", "LATERAL": "lateral"}
JPEG_QUALITY = 95


def study_dir(subject_id: int, study_id: int) -> Path:
    """``files/pXX/pSUBJECT/sSTUDY`` (relative), XX = the subject id's first two digits."""
    subject = str(subject_id)
    return Path("files") / f"p{subject[:2]}" / f"p{subject}" / f"s{study_id}"


def image_path(subject_id: int, study_id: int, dicom_id: str) -> Path:
    return study_dir(subject_id, study_id) / f"{dicom_id}.jpg"


def report_path(subject_id: int, study_id: int) -> Path:
    """Reports lie beside the study folder: ``files/pXX/pSUBJECT/sSTUDY.txt``."""
    folder = study_dir(subject_id, study_id)
    return folder.parent / f"{folder.name}.txt"


def procedure(study: Study) -> str:
    return "CHEST (PORTABLE AP)" if study.views[0] == "AP" else "CHEST (PA AND LAT)"


def metadata_rows(studies: Iterable[Study], size: int) -> list[tuple]:
    rows = []
    for study in studies:
        orientation = "Recumbent" if study.ward == "icu" and study.views[0] == "AP" else "Erect"
        for view, dicom_id in zip(study.views, study.dicom_ids, strict=True):
            rows.append((dicom_id, study.subject_id, study.study_id, procedure(study), view,
                         size, size, study.date, study.time, procedure(study),
                         _VIEW_MEANING[view], orientation))
    return rows


def split_rows(studies: Iterable[Study]) -> list[tuple]:
    return [(dicom_id, study.study_id, study.subject_id, study.split)
            for study in studies for dicom_id in study.dicom_ids]


def _label_cell(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def chexpert_rows(studies: Iterable[Study]) -> list[tuple]:
    """One row per study, sorted by subject and study as in MIMIC."""
    ordered = sorted(studies, key=lambda s: (s.subject_id, s.study_id))
    return [(s.subject_id, s.study_id, *(_label_cell(s.labels[c]) for c in CHEXPERT_COLUMNS[2:]))
            for s in ordered]


def write_csv_gz(target: str | os.PathLike, columns: Sequence[str], rows: Iterable[Sequence]
                 ) -> None:
    """A gzip-compressed CSV, identical bytes for identical rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    data = gzip.compress(buffer.getvalue().encode("utf-8"), mtime=0)
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_bytes_atomic(target: Path, data: bytes) -> None:
    """Write beside ``target`` under a per-process temporary name, then rename onto it.

    A lean form of :func:`clip2clinic.io.atomic_path` for the many small files of a corpus
    (no random name, no clean-up call after a successful rename); the folder must exist.
    """
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def jpeg_bytes(pixels: np.ndarray) -> bytes:
    """An 8-bit grey-scale ('L') JPEG of ``pixels``."""
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8, copy=False)).save(
        buffer, format="JPEG", quality=JPEG_QUALITY
    )
    return buffer.getvalue()
