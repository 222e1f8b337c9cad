"""NIH ChestX-ray14.

``Data_Entry_2017.csv`` (or ``Data_Entry_2017_v2020.csv``) lists every image with its
pipe-separated ``Finding Labels`` ("No Finding" for none), ``Patient ID``, ``Follow-up #`` and
``View Position``. Labels are 1 for every listed finding and 0 otherwise (the labels were mined
from reports and list every finding found, so absence is a negative, not unknown).

Splits: the official ``test_list.txt`` -> "test"; ``train_val_list.txt`` is split by patient
into "train" and "validate" (``validation_fraction`` of its patients, seeded). The official
lists are patient-disjoint, so no patient crosses splits. Images listed in neither file are
dropped (and counted in ``unlisted``).

``test_list``: another list of test images (one image name per line), e.g. the ChestX-ray14
images ProbMed selected, which the paper evaluates on. Those images are the test split, the
other official test images are dropped, and train/validate keep only the train_val patients
who have no image in the list (so no patient crosses splits). ``source`` says which test set
was used. PNGs are found in any ``images*`` folder of the root
(``images_001/images/...`` as unpacked from the NIH archives, or a flat ``images/``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
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
from clip2clinic.io import InputError, read_table

log = logging.getLogger(__name__)

ENTRY_FILES = ("Data_Entry_2017_v2020.csv", "Data_Entry_2017.csv")
TRAIN_VAL, TEST = "train_val_list.txt", "test_list.txt"
NIH_PATHOLOGIES = (
    "Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia",
    "Pneumothorax", "Consolidation", "Edema", "Emphysema", "Fibrosis", "Pleural_Thickening",
    "Hernia",
)  # fmt: skip


def read_list(path: Path) -> set[str]:
    """Image names of an official split list (one per line)."""
    return {line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}


def finding_labels(findings: pd.Series) -> np.ndarray:
    """ "A|B" strings as a 0/1 float32 array over :data:`NIH_PATHOLOGIES`."""
    labels = np.zeros((len(findings), len(NIH_PATHOLOGIES)), dtype=np.float32)
    column = {name.lower(): i for i, name in enumerate(NIH_PATHOLOGIES)}
    for row, cell in enumerate(findings.fillna("")):
        for name in cell.split("|"):
            index = column.get(name.strip().lower())
            if index is not None:
                labels[row, index] = 1.0
    return labels


def _subset(entries: pd.DataFrame, path: Path) -> set[str]:
    """The image names of a test list file; a name not in the data entry file is an error."""
    if not path.is_file():
        raise InputError(f"{path}: no such test list")
    names = {Path(n).name for n in read_list(path)}
    names = {n if n.lower().endswith(".png") else f"{n}.png" for n in names}
    unknown = sorted(names - set(entries["Image Index"]))
    if unknown:
        raise InputError(f"{path}: {len(unknown)} image(s) not in the data entry file "
                         f"(or not of the kept views), e.g. {unknown[0]}")
    return names


class ChestXray14(XrayDataset):
    """NIH ChestX-ray14 with the official test list and a patient-level validation split."""

    name = "ChestX-ray14"
    layout = """\
ROOT/
  Data_Entry_2017.csv (or Data_Entry_2017_v2020.csv)
      Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,...
  train_val_list.txt, test_list.txt
  images_001/images/00000001_000.png ... (or images/00000001_000.png)"""

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        views: Sequence[str] | None = None,
        validation_fraction: float = 0.1,
        seed: int = 0,
        test_list: str | os.PathLike | None = None,
        transform: Callable[[np.ndarray], Any] | None = None,
    ) -> None:
        """``views``: View Position values to keep ("PA", "AP"; None: all);
        ``validation_fraction``: share of train_val_list patients moved to "validate";
        ``test_list``: a file of test image names replacing the official test list (see the
        module notes)."""
        root = Path(root)
        require(type(self), root, TRAIN_VAL, TEST)
        entries_file = first_existing(type(self), root, ENTRY_FILES)
        image_dirs = sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("images"))
        if not image_dirs:
            raise missing_root_error(type(self), root, ["images*/ (the image folders)"])
        entries = read_table(
            entries_file, required=["Image Index", "Finding Labels", "Patient ID", "View Position"]
        )
        if views is not None:
            wanted = {v.upper() for v in views}
            entries = entries[entries["View Position"].fillna("").str.upper().isin(wanted)]
        test, train_val = read_list(root / TEST), read_list(root / TRAIN_VAL)
        self.source = f"official {TEST}"
        if test_list is not None:
            test = _subset(entries, Path(test_list))
            kept = ~entries["Patient ID"].isin(entries.loc[entries["Image Index"].isin(test),
                                                           "Patient ID"])
            train_val = set(entries.loc[kept, "Image Index"]) & train_val
            self.source = f"test list {test_list} ({len(test)} images)"
        in_test = entries["Image Index"].isin(test)
        listed = in_test | entries["Image Index"].isin(train_val)
        self.unlisted = int((~listed).sum())
        if self.unlisted:
            log.warning(
                "%s: %d image(s) are in neither split list; dropped", self.name, self.unlisted
            )
        entries = entries[listed].reset_index(drop=True)
        in_test = in_test[listed].to_numpy()

        split = pd.Series("test", index=entries.index, dtype=object)
        patients = entries.loc[~in_test, "Patient ID"]
        split[~in_test] = group_split(
            patients, (1 - validation_fraction, validation_fraction, 0.0), seed
        )
        files: dict[str, str] = {}
        for folder in image_dirs:
            files.update(index_files(folder, (".png",)))
        stems = entries["Image Index"].str.replace(r"\.png$", "", regex=True)
        follow_up = (
            entries["Follow-up #"]
            if "Follow-up #" in entries
            else pd.Series("", index=entries.index)
        )
        frame = pd.DataFrame(
            {
                "image_id": entries["Image Index"],
                "patient_id": entries["Patient ID"],
                "study_id": entries["Patient ID"] + "_" + follow_up.fillna(""),
                "split": split,
                "view": entries["View Position"],
                "path": [files.get(stem) for stem in stems],
            }
        )
        super().__init__(
            frame, NIH_PATHOLOGIES, finding_labels(entries["Finding Labels"]), transform
        )
