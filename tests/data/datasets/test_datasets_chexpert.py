"""CheXpert and CheXpert 5x200 readers on a tiny CheXpert-v1.0-small tree."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clip2clinic.data.datasets import CheXpert, CheXpert5x200, DatasetRootError
from clip2clinic.data.datasets.chexpert import FIVE_CLASSES
from clip2clinic.data.datasets.splits import leaked
from clip2clinic.io import InputError
from clip2clinic.observations import CHEXPERT_CLASSES
from tests.image_files import write_jpeg

HEADER = ["Path", "Sex", "Age", "Frontal/Lateral", "AP/PA", *CHEXPERT_CLASSES]
FOLDER = "CheXpert-v1.0-small"


def row(patient: int, study: int, view: int, labels: dict[str, str], lateral: bool = False) -> dict:
    kind = "lateral" if lateral else "frontal"
    return {
        "Path": f"{FOLDER}/train/patient{patient:05d}/study{study}/view{view}_{kind}.jpg",
        "Sex": "Female", "Age": "68",
        "Frontal/Lateral": "Lateral" if lateral else "Frontal",
        "AP/PA": "" if lateral else "AP",
        **dict.fromkeys(CHEXPERT_CLASSES, ""), **labels,
    }  # fmt: skip


def train_rows() -> list[dict]:
    rows, patient = [], 1
    for name in FIVE_CLASSES:
        for _ in range(3):  # eligible: exactly this class positive (blanks count as 0)
            rows.append(row(patient, 1, 1, {name: "1.0", "No Finding": "", "Fracture": "0.0"}))
            patient += 1
        # not eligible: a second finding, an uncertain finding, a lateral view
        rows.append(row(patient, 1, 1, {name: "1.0", "Support Devices": "1.0"}))
        rows.append(row(patient, 2, 1, {name: "1.0", "Lung Opacity": "-1.0"}))
        rows.append(row(patient, 2, 2, {name: "1.0"}, lateral=True))
        patient += 1
    rows.append(row(patient, 1, 1, {"No Finding": "1.0"}))
    return rows


def build_chexpert(parent: Path) -> Path:
    folder = parent / FOLDER
    folder.mkdir(parents=True)
    train = pd.DataFrame(train_rows(), columns=HEADER)
    train.to_csv(folder / "train.csv", index=False)
    valid = pd.DataFrame([row(64541, 1, 1, {"Edema": "1.0", "No Finding": "0.0"})], columns=HEADER)
    valid["Path"] = valid["Path"].str.replace("/train/", "/valid/")
    valid.to_csv(folder / "valid.csv", index=False)
    for relative in [*train["Path"][:2], *valid["Path"]]:
        write_jpeg(parent / relative)
    return folder


def test_train_and_valid(tmp_path: Path) -> None:
    folder = build_chexpert(tmp_path)
    for root in (folder, tmp_path):  # the CheXpert folder or the folder holding it
        data = CheXpert(root)
        assert len(data) == len(train_rows()) + 1
        assert list(data.csv["split"].value_counts().sort_index()) == [len(train_rows()), 1]
    frame = data.csv
    assert frame["patient_id"].iloc[0] == "patient00001"
    assert frame["study_id"].iloc[0] == "patient00001/study1"
    assert frame["image_id"].iloc[0] == "train/patient00001/study1/view1_frontal"
    assert frame["path"].iloc[0] == str(folder / "train/patient00001/study1/view1_frontal.jpg")
    assert set(frame["view"]) == {"AP", "Lateral"}
    assert leaked(frame, "patient_id") == set()
    validate = data.subset("validate")
    assert validate[0]["image"].shape == (24, 20)
    assert validate.label_frame().loc[0, "Edema"] == 1


def test_labels_keep_uncertain_and_blank(tmp_path: Path) -> None:
    data = CheXpert(build_chexpert(tmp_path))
    labels = data.label_frame()
    uncertain_row = 4  # the second non-eligible Atelectasis row
    assert labels.loc[uncertain_row, "Lung Opacity"] == -1
    assert np.isnan(labels.loc[0, "No Finding"]) and labels.loc[0, "Fracture"] == 0
    as_zero = CheXpert(build_chexpert(tmp_path / "again"), uncertain=0.0).label_frame()
    assert as_zero.loc[uncertain_row, "Lung Opacity"] == 0


def test_views_filter(tmp_path: Path) -> None:
    data = CheXpert(build_chexpert(tmp_path), views=["AP", "PA"])
    assert "Lateral" not in set(data.csv["view"])
    assert len(data) == len(train_rows()) + 1 - len(FIVE_CLASSES)


def test_five_by_200_rebuild_follows_the_rule(tmp_path: Path) -> None:
    build_chexpert(tmp_path)
    data = CheXpert5x200(tmp_path, per_class=2, seed=1)
    assert data.pathologies == list(FIVE_CLASSES)
    assert len(data) == 10 and set(data.csv["split"]) == {"test"}
    assert (data.labels.sum(axis=1) == 1).all()
    assert list(data.labels.sum(axis=0)) == [2] * 5
    eligible = {f"patient{p:05d}" for p in range(1, 50) if (p - 1) % 4 != 3}
    assert set(data.csv["patient_id"]) <= eligible  # never a row with a second/uncertain finding
    assert (data.csv["view"] == "AP").all()
    same = CheXpert5x200(tmp_path, per_class=2, seed=1)
    assert list(same.csv["image_id"]) == list(data.csv["image_id"])
    other_seeds = {
        tuple(CheXpert5x200(tmp_path, per_class=2, seed=s).csv["image_id"]) for s in range(6)
    }
    assert len(other_seeds) > 1
    with pytest.raises(InputError, match="only 3"):
        CheXpert5x200(tmp_path, per_class=4)


def test_five_by_200_released_file_is_preferred(tmp_path: Path) -> None:
    folder = build_chexpert(tmp_path)
    released = pd.read_csv(folder / "train.csv", dtype=str).iloc[[0, 3]]
    released["Path"] = released["Path"].str.replace(FOLDER, "CheXpert-v1.0")  # full-size names
    released.to_csv(tmp_path / "chexpert_5x200.csv", index=False)
    data = CheXpert5x200(tmp_path)
    assert data.source.startswith("released file")
    assert len(data) == 2
    assert data.csv["path"].iloc[0] == str(folder / "train/patient00001/study1/view1_frontal.jpg")
    assert data[0]["image"].shape == (24, 20)


def test_wrong_root(tmp_path: Path) -> None:
    with pytest.raises(DatasetRootError) as caught:
        CheXpert(tmp_path)
    assert "train.csv" in str(caught.value) and "patientNNNNN" in str(caught.value)
    folder = build_chexpert(tmp_path / "x")
    (folder / "valid.csv").unlink()
    with pytest.raises(DatasetRootError, match="valid.csv"):
        CheXpert(folder)
