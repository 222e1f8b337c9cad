"""RSNA Pneumonia reader on a tiny tree in the Kaggle stage 2 layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import train_test_split

from clip2clinic.data.datasets import DatasetRootError, RsnaPneumonia
from clip2clinic.data.datasets.splits import leaked
from tests.image_files import write_dicom

N_IMAGES = 40


def patient(i: int) -> str:
    return f"{i:04d}abcd-0000-4000-8000-{i:012d}"


def build_rsna(root: Path) -> Path:
    rows = []
    for i in range(N_IMAGES):
        if i % 4 == 0:  # two boxes
            rows.append((patient(i), "264.0", "152.0", "213.0", "379.0", "1"))
            rows.append((patient(i), "562.0", "152.0", "256.0", "453.0", "1"))
        elif i % 4 == 1:  # one box
            rows.append((patient(i), "100.0", "120.0", "50.0", "60.0", "1"))
        else:
            rows.append((patient(i), "", "", "", "", "0"))
    rows.reverse()  # the reader must not depend on file order
    root.mkdir(parents=True)
    pd.DataFrame(rows, columns=["patientId", "x", "y", "width", "height", "Target"]).to_csv(
        root / "stage_2_train_labels.csv", index=False
    )
    for i in range(N_IMAGES - 1):  # the last image is missing on disk
        pixels = np.full((8, 8), i * 50, np.uint16)
        write_dicom(
            root / "stage_2_train_images" / f"{patient(i)}.dcm", pixels, patient_id=patient(i)
        )
    return root


@pytest.fixture(scope="module")
def rsna_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_rsna(tmp_path_factory.mktemp("rsna") / "rsna")


def test_one_row_per_image_with_boxes(rsna_root: Path) -> None:
    data = RsnaPneumonia(rsna_root)
    assert len(data) == N_IMAGES
    assert list(data.csv["image_id"]) == sorted(patient(i) for i in range(N_IMAGES))
    assert data.pathologies == ["Pneumonia"]
    labels = dict(zip(data.csv["image_id"], data.labels[:, 0], strict=True))
    assert [labels[patient(i)] for i in range(4)] == [1, 1, 0, 0]
    boxes = dict(zip(data.csv["image_id"], data.csv["boxes"], strict=True))
    assert sorted(boxes[patient(0)]) == [(264.0, 152.0, 213.0, 379.0), (562.0, 152.0, 256.0, 453.0)]
    assert boxes[patient(2)] == []
    assert data.csv["path"].iloc[-1] is None  # missing DICOM
    assert data[0]["image"].shape == (8, 8)


def test_gloria_split_reproduces_the_published_procedure(rsna_root: Path) -> None:
    data = RsnaPneumonia(rsna_root, split="gloria")
    ids = pd.Series(sorted(patient(i) for i in range(N_IMAGES)))
    train, rest = train_test_split(ids, test_size=0.3, random_state=0)
    test, validate = train_test_split(rest, test_size=0.5, random_state=0)
    split = dict(zip(data.csv["image_id"], data.csv["split"], strict=True))
    assert {split[i] for i in train} == {"train"} and len(train) == 28
    assert {split[i] for i in validate} == {"validate"} and len(validate) == 6
    assert {split[i] for i in test} == {"test"} and len(test) == 6


def test_patient_split_is_seeded_and_grouped(rsna_root: Path) -> None:
    first = RsnaPneumonia(rsna_root, split="patient", seed=5)
    again = RsnaPneumonia(rsna_root, split="patient", seed=5)
    other = RsnaPneumonia(rsna_root, split="patient", seed=6)
    assert list(first.csv["split"]) == list(again.csv["split"])
    assert list(first.csv["split"]) != list(other.csv["split"])
    assert leaked(first.csv, "patient_id") == set()
    assert first.csv["split"].value_counts().to_dict() == {"train": 28, "validate": 6, "test": 6}


def test_wrong_root_and_bad_option(tmp_path: Path, rsna_root: Path) -> None:
    with pytest.raises(DatasetRootError) as caught:
        RsnaPneumonia(tmp_path)
    assert "stage_2_train_labels.csv" in str(caught.value)
    assert "stage_2_train_images/PATIENTID.dcm" in str(caught.value)
    with pytest.raises(ValueError, match="split"):
        RsnaPneumonia(rsna_root, split="random")


def test_detailed_classes_are_read_when_present(tmp_path: Path) -> None:
    root = build_rsna(tmp_path / "rsna")
    assert RsnaPneumonia(root).csv["detailed_class"].isna().all()
    ids = [patient(i) for i in range(N_IMAGES)]
    classes = ["Lung Opacity" if i % 4 < 2 else "Normal" for i in range(N_IMAGES)]
    pd.DataFrame({"patientId": ids, "class": classes}).to_csv(
        root / "stage_2_detailed_class_info.csv", index=False
    )
    frame = RsnaPneumonia(root).csv.set_index("image_id")
    assert frame.loc[patient(1), "detailed_class"] == "Lung Opacity"
    assert frame.loc[patient(2), "detailed_class"] == "Normal"
