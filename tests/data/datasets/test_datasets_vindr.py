"""VinDr-CXR reader on a tiny tree in the PhysioNet layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clip2clinic.data.datasets import DatasetRootError, VinDrCxr
from clip2clinic.data.datasets.splits import leaked
from tests.image_files import write_dicom

LABELS = ["Aortic enlargement", "Cardiomegaly", "Pleural effusion", "No finding"]
# image -> votes of R1, R2, R3 over LABELS
TRAIN_VOTES = {
    "tr0": [(0, 1, 0, 0), (0, 1, 0, 0), (0, 0, 0, 1)],  # cardiomegaly 2/3
    "tr1": [(1, 0, 0, 0), (0, 0, 0, 1), (0, 0, 0, 1)],  # aortic 1/3, no finding 2/3
    **{f"tr{i}": [(0, 0, 0, 1)] * 3 for i in range(2, 8)},
}
TEST_LABELS = {"te0": (0, 0, 1, 0), "te1": (0, 0, 0, 1)}


def build_vindr(root: Path, boxes: bool = False) -> Path:
    annotations = root / "annotations"
    annotations.mkdir(parents=True)
    if boxes:  # the box files instead of the image-label files
        rows = [
            (image, f"R{r + 1}", name, "10", "10", "50", "50")
            for image, votes in TRAIN_VOTES.items()
            for r, vote in enumerate(votes)
            for name, v in zip(LABELS, vote, strict=True)
            if v
        ]
        columns = ["image_id", "rad_id", "class_name", "x_min", "y_min", "x_max", "y_max"]
        pd.DataFrame(rows, columns=columns).to_csv(
            annotations / "annotations_train.csv", index=False
        )
        test = [
            (i, "R8", n, "", "", "", "")
            for i, v in TEST_LABELS.items()
            for n, x in zip(LABELS, v, strict=True)
            if x
        ]
        pd.DataFrame(test, columns=columns).to_csv(
            annotations / "annotations_test.csv", index=False
        )
    else:
        rows = [
            (image, f"R{r + 1}", *vote)
            for image, votes in TRAIN_VOTES.items()
            for r, vote in enumerate(votes)
        ]
        pd.DataFrame(rows, columns=["image_id", "rad_id", *LABELS]).to_csv(
            annotations / "image_labels_train.csv", index=False
        )
        test = [(image, *labels[:3]) for image, labels in TEST_LABELS.items()]  # no "No finding"
        pd.DataFrame(test, columns=["image_id", *LABELS[:3]]).to_csv(
            annotations / "image_labels_test.csv", index=False
        )
    for split, images in (("train", TRAIN_VOTES), ("test", TEST_LABELS)):
        for image in images:
            write_dicom(root / split / f"{image}.dicom", np.full((8, 8), 100, np.uint16))
    return root


def test_majority_and_any(tmp_path: Path) -> None:
    root = build_vindr(tmp_path / "vindr")
    majority = VinDrCxr(root, validation_fraction=0.0)
    assert majority.pathologies == LABELS
    labels = majority.label_frame().set_index(majority.csv["image_id"])
    assert list(labels.loc["tr0"]) == [0, 1, 0, 0]
    assert list(labels.loc["tr1"]) == [0, 0, 0, 1]
    assert (majority.csv["raters"].iloc[:8] == 3).all()
    anyone = VinDrCxr(root, aggregate="any", validation_fraction=0.0)
    any_labels = anyone.label_frame().set_index(anyone.csv["image_id"])
    assert list(any_labels.loc["tr0"]) == [0, 1, 0, 1]
    assert list(any_labels.loc["tr1"]) == [1, 0, 0, 1]


def test_test_set_consensus_and_missing_column(tmp_path: Path) -> None:
    data = VinDrCxr(build_vindr(tmp_path / "vindr"))
    test = data.subset("test")
    assert list(test.csv["image_id"]) == ["te0", "te1"] and (test.csv["raters"] == 1).all()
    assert list(test.labels[0, :3]) == [0, 0, 1]
    assert np.isnan(test.labels[:, 3]).all()  # "No finding" not in the test file: unknown


def test_validation_is_carved_from_train(tmp_path: Path) -> None:
    root = build_vindr(tmp_path / "vindr")
    data = VinDrCxr(root, validation_fraction=0.25, seed=2)
    counts = data.csv["split"].value_counts().to_dict()
    assert counts == {"train": 6, "validate": 2, "test": 2}
    assert set(data.csv.loc[data.csv["split"] != "test", "image_id"]) == set(TRAIN_VOTES)
    assert leaked(data.csv, "image_id") == set()
    assert list(VinDrCxr(root, validation_fraction=0.25, seed=2).csv["split"]) == list(
        data.csv["split"]
    )


def test_box_files_give_the_same_labels(tmp_path: Path) -> None:
    from_labels = VinDrCxr(build_vindr(tmp_path / "a"), validation_fraction=0.0)
    from_boxes = VinDrCxr(build_vindr(tmp_path / "b", boxes=True), validation_fraction=0.0)
    frame = from_boxes.label_frame().set_index(from_boxes.csv["image_id"])[LABELS]
    expected = from_labels.label_frame().set_index(from_labels.csv["image_id"])
    pd.testing.assert_frame_equal(frame.loc[list(TRAIN_VOTES)], expected.loc[list(TRAIN_VOTES)])
    assert list(frame.loc["te0"]) == [0, 0, 1, 0]


def test_dicom_images_load(tmp_path: Path) -> None:
    data = VinDrCxr(build_vindr(tmp_path / "vindr"))
    sample = data[0]
    assert sample["path"].endswith("train/tr0.dicom")
    assert sample["image"].shape == (8, 8)


def test_wrong_root(tmp_path: Path) -> None:
    with pytest.raises(DatasetRootError) as caught:
        VinDrCxr(tmp_path)
    assert "train" in str(caught.value) and "image_labels_train.csv" in str(caught.value)
    (tmp_path / "train").mkdir()
    (tmp_path / "test").mkdir()
    with pytest.raises(DatasetRootError, match="annotations/image_labels_train.csv or"):
        VinDrCxr(tmp_path)
