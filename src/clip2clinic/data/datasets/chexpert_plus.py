"""CheXpert Plus (Stanford AIMI, 2024): CheXpert's images with their radiology reports.

The release's report table is ``df_chexpert_plus_240401.csv``: one row per image, the image at
``path_to_image`` ("train/patientNNNNN/studyN/viewN_frontal.jpg", relative to a CheXpert image
folder), the parsed report sections (``section_findings``, ``section_impression``,
``section_history``, ... repeated on every image of a study), ``frontal_lateral``, ``ap_pa``,
``deid_patient_id`` and the official ``split`` ("train" / "valid", CheXpert's). The images are
either the release's PNGs (``PNG/train/...``: the CSV still says ``.jpg``, the file is a
``.png``) or CheXpert-v1.0(-small)'s JPEGs, which have the same relative paths.

- Patient and study come from the path (``patientNNNNN``, ``patientNNNNN/studyN``), as in the
  CheXpert reader, so the same image has the same ids in both; ``deid_patient_id`` is kept.
- ``report(i)`` rebuilds the report in MIMIC's section style (``FINDINGS: ...`` then
  ``IMPRESSION: ...``, empty sections left out), as the Open-i reader does, so ``prepare``
  parses it like the others; the frame keeps the two sections as ``findings`` and
  ``impression``. Other sections (history, comparison, technique, ...) are not report text.
- Splits stay patient-level and seeded. ``test="valid"`` (default): CheXpert's official valid
  set (radiologist-labelled, patient-disjoint from train) is the test split and ``held_out`` of
  the training patients, drawn with ``seed``, are "validate" (GLoRIA's use of CheXpert).
  ``test="patients"``: the official valid set is "validate" and ``held_out`` of the training
  patients are "test".
- Labels: the release's CSV has none; the 14 CheXpert labels are joined from CheXpert's own
  ``train.csv`` / ``valid.csv`` when the image folder holds them (by image path), else NaN.
  ``prepare`` labels the reports itself and does not read these.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clip2clinic.data.datasets.base import (
    DatasetRootError,
    XrayDataset,
    missing_root_error,
    to_float_labels,
)
from clip2clinic.data.datasets.chexpert import FOLDERS, SPLIT_FILES
from clip2clinic.data.datasets.openi import mimic_style_report
from clip2clinic.data.datasets.splits import group_split
from clip2clinic.io import InputError, as_text, read_table
from clip2clinic.observations import CHEXPERT_CLASSES

#: The release's report table (the newest ``df_chexpert_plus_*.csv`` is taken when this
#: exact name is absent).
REPORTS_CSV = "df_chexpert_plus_240401.csv"
REQUIRED = ("path_to_image", "frontal_lateral", "section_findings", "section_impression", "split")
#: Image folders tried under the root, in order: the release's PNGs (unzipped once or twice),
#: then CheXpert-v1.0(-small), then the root itself.
IMAGE_FOLDERS = ("PNG/PNG", "PNG", *FOLDERS, ".")
#: The release's split names -> ours before the held-out draw.
OFFICIAL_SPLITS = ("train", "valid")
TEST_CHOICES = ("valid", "patients")
MISSING_CHOICES = ("error", "keep")
PATIENT_STUDY = r"(?P<patient>patient\d+)/(?P<study>study\d+)/"


class CheXpertPlus(XrayDataset):
    """CheXpert Plus: CheXpert images with their findings + impression reports."""

    name = "CheXpert Plus"
    has_reports = True
    layout = f"""\
ROOT/
  {REPORTS_CSV}    path_to_image,frontal_lateral,ap_pa,deid_patient_id,
                                 section_findings,section_impression,...,split (train/valid)
  PNG/train/patientNNNNN/studyN/viewN_frontal.png      (the release's PNGs; or PNG/PNG/...)
  or CheXpert-v1.0[-small]/train/patientNNNNN/studyN/viewN_frontal.jpg (+ train.csv, valid.csv
                                 for labels)"""

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        csv: str | os.PathLike | None = None,
        images: str | os.PathLike | None = None,
        views: Sequence[str] | None = ("Frontal",),
        test: str = "valid",
        held_out: float = 0.05,
        seed: int = 0,
        missing_images: str = "error",
        transform: Callable[[np.ndarray], Any] | None = None,
    ) -> None:
        """``csv``: the report table (default: in ROOT); ``images``: the folder holding
        ``train/`` and ``valid/`` (default: the first of :data:`IMAGE_FOLDERS` that does);
        ``views``: ``frontal_lateral`` values to keep (None: all); ``test``, ``held_out``,
        ``seed``: the split (module notes); ``missing_images``: "error" stops at the first row
        whose image is absent, naming it, "keep" keeps such rows with ``path`` None (``prepare``
        then skips and counts them)."""
        if test not in TEST_CHOICES:
            raise ValueError(f"test must be one of {TEST_CHOICES}, got {test!r}")
        if missing_images not in MISSING_CHOICES:
            raise ValueError(f"missing_images must be one of {MISSING_CHOICES}, "
                             f"got {missing_images!r}")
        if not 0.0 <= held_out < 1.0:
            raise ValueError(f"held_out must be in [0, 1), got {held_out}")
        root = Path(root)
        table_file = Path(csv) if csv is not None else reports_csv(type(self), root)
        table = read_table(table_file, required=REQUIRED, path_columns=["path_to_image"])
        image_dir = Path(images) if images is not None else image_folder(type(self), root)
        if not image_dir.is_dir():
            raise DatasetRootError(f"{self.name}: image folder {image_dir} does not exist")
        self.image_dir = image_dir

        table = table.reset_index(drop=True)
        relative = table["path_to_image"].str.replace("\\", "/", regex=False)
        ids = relative.str.extract(PATIENT_STUDY)
        official = table["split"].fillna("").str.strip().str.lower()
        _check_rows(table_file, relative, ids["patient"], official)
        lateral = table["frontal_lateral"].fillna("").str.lower().eq("lateral")
        if views is not None:
            wanted = {v.lower() for v in views}
            keep = table["frontal_lateral"].fillna("").str.lower().isin(wanted).to_numpy()
            table, relative, ids = table[keep], relative[keep], ids[keep]
            official, lateral = official[keep], lateral[keep]

        paths = image_paths(relative, image_dir)
        absent = paths.isna()
        if absent.any() and missing_images == "error":
            row = int(np.flatnonzero(absent.to_numpy())[0])
            raise InputError(
                f"{table_file}: row {table.index[row] + 1} (after the header): image "
                f"{relative.iloc[row]!r} not found in {image_dir} (as .jpg or .png); "
                f"{int(absent.sum())} of {len(paths)} rows lack their image. Point images= at "
                "the folder holding train/ and valid/, or pass missing_images=keep to skip them"
            )
        ap_pa = table["ap_pa"] if "ap_pa" in table else pd.Series(np.nan, index=table.index)
        frontal_view = ap_pa.where(ap_pa.notna(), table["frontal_lateral"])
        findings = table["section_findings"].map(as_text)
        impression = table["section_impression"].map(as_text)
        frame = pd.DataFrame(
            {
                "image_id": relative.str.replace(r"\.(jpg|png)$", "", regex=True),
                "patient_id": ids["patient"],
                "study_id": ids["patient"] + "/" + ids["study"],
                "split": patient_splits(ids["patient"], official, test, held_out, seed),
                "view": frontal_view.where(~lateral, "Lateral"),
                "path": paths,
                "findings": findings,
                "impression": impression,
            }
        )
        if "deid_patient_id" in table:
            frame["deid_patient_id"] = table["deid_patient_id"].to_numpy()
        labels, label_files = chexpert_labels(frame["image_id"], image_dir)
        self.source = f"{table_file}; labels from {label_files}"
        super().__init__(frame, CHEXPERT_CLASSES, labels, transform)

    def report(self, index: int) -> str:
        """Row ``index``'s findings and impression as one report in MIMIC's section style.

        Composed on request from the ``findings`` and ``impression`` columns rather than kept
        as a ``report`` column: ``prepare`` joins its own cleaned ``report`` onto the frame."""
        row = self.frame.iloc[index]
        return mimic_style_report(row["findings"], row["impression"])


def reports_csv(dataset: type[XrayDataset], root: Path) -> Path:
    """The report table in ``root``: :data:`REPORTS_CSV`, else the newest
    ``df_chexpert_plus_*.csv`` (the release dates its file)."""
    if (root / REPORTS_CSV).is_file():
        return root / REPORTS_CSV
    dated = sorted(root.glob("df_chexpert_plus_*.csv"))
    if not dated:
        raise missing_root_error(dataset, root, [f"{REPORTS_CSV} (or df_chexpert_plus_*.csv)"])
    return dated[-1]


def image_folder(dataset: type[XrayDataset], root: Path) -> Path:
    """The first of :data:`IMAGE_FOLDERS` under ``root`` that holds ``train/`` or ``valid/``."""
    for name in IMAGE_FOLDERS:
        folder = root / name
        if any((folder / split).is_dir() for split in OFFICIAL_SPLITS):
            return folder
    raise missing_root_error(dataset, root, [
        "an image folder with train/ and valid/ (" + ", ".join(IMAGE_FOLDERS[:-1]) + " or ROOT)"])


def _check_rows(table_file: Path, relative: pd.Series, patients: pd.Series,
                official: pd.Series) -> None:  # fmt: skip
    """Raise InputError naming the first row whose path or split the reader cannot read."""
    for problem, mask in (
        ("path_to_image has no patientNNNNN/studyN/ part", patients.isna()),
        (f"split is not one of {OFFICIAL_SPLITS}", ~official.isin(OFFICIAL_SPLITS)),
    ):
        if mask.any():
            row = int(np.flatnonzero(mask.to_numpy())[0])
            raise InputError(f"{table_file}: row {row + 1} (after the header): {problem} "
                             f"({relative.iloc[row]!r}, split {official.iloc[row]!r})")
    both = set(patients[official == "train"]) & set(patients[official == "valid"])
    if both:
        raise InputError(f"{table_file}: patient {sorted(both)[0]} is in both the train and the "
                         f"valid split ({len(both)} such patients); splits must be by patient")


def image_paths(relative: pd.Series, folder: Path) -> pd.Series:
    """The file of every ``path_to_image`` under ``folder``: as written, else with ``.png`` (the
    release's PNGs keep the CSV's ``.jpg`` names); None where neither exists."""
    paths = []
    for name in relative:
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            path = os.path.splitext(path)[0] + ".png"
        paths.append(path if os.path.isfile(path) else None)
    return pd.Series(paths, index=relative.index, dtype=object)


def patient_splits(patients: pd.Series, official: pd.Series, test: str, held_out: float,
                   seed: int) -> pd.Series:  # fmt: skip
    """Our split of every row (see the module notes): whole patients, seeded."""
    valid_name, drawn_name = ("test", "validate") if test == "valid" else ("validate", "test")
    train = official == "train"
    split = pd.Series(valid_name, index=patients.index, dtype=object)
    if train.any():
        fractions = {"train": 1.0 - held_out, "validate": 0.0, "test": 0.0}
        fractions[drawn_name] = held_out
        split[train] = group_split(patients[train], tuple(fractions.values()), seed)
    return split


def chexpert_labels(image_ids: pd.Series, image_dir: Path) -> tuple[np.ndarray, str]:
    """CheXpert's released labels of ``image_ids`` ("train/patient.../view1_frontal") from
    ``train.csv``/``valid.csv`` in ``image_dir`` (NaN for an image not listed), and where they
    came from; all NaN when the folder has neither file."""
    files = [image_dir / name for name in SPLIT_FILES.values() if (image_dir / name).is_file()]
    if not files:
        missing = f"no train.csv or valid.csv in {image_dir} (all NaN)"
        return np.full((len(image_ids), len(CHEXPERT_CLASSES)), np.nan, np.float32), missing
    tables = [read_table(f, required=["Path", *CHEXPERT_CLASSES]) for f in files]
    released = pd.concat(tables, ignore_index=True)
    key = (released["Path"].str.replace("\\", "/", regex=False)
           .str.replace(r"^CheXpert[^/]*/", "", regex=True)
           .str.replace(r"\.jpg$", "", regex=True))  # fmt: skip
    released = released.assign(image_id=key).drop_duplicates("image_id").set_index("image_id")
    joined = released.reindex(image_ids.to_numpy())
    return to_float_labels(joined, CHEXPERT_CLASSES), ", ".join(str(f) for f in files)
