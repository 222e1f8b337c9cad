"""The shared reader contract and the split helpers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clip2clinic.data.datasets import READERS, DatasetRootError, XrayDataset, open_dataset
from clip2clinic.data.datasets.splits import gloria_split, group_split, leaked
from clip2clinic.data.images import ImageLoadError


def tiny(paths: list[str | None]) -> XrayDataset:
    frame = pd.DataFrame(
        {
            "image_id": [f"i{k}" for k in range(len(paths))],
            "patient_id": [f"p{k // 2}" for k in range(len(paths))],
            "study_id": None,
            "split": ["train", "train", "test", "test"][: len(paths)],
            "view": None,
            "path": paths,
        }
    )
    return XrayDataset(frame, ["A", "B"], np.arange(2 * len(paths)).reshape(-1, 2))


def test_group_split_keeps_groups_together_and_ignores_row_order() -> None:
    groups = pd.Series([f"p{k % 37}" for k in range(200)])
    split = group_split(groups, (0.6, 0.2, 0.2), seed=3)
    frame = pd.DataFrame({"patient_id": groups, "split": split})
    assert leaked(frame, "patient_id") == set()
    per_patient = frame.drop_duplicates("patient_id")["split"].value_counts().to_dict()
    assert per_patient == {"train": 22, "validate": 8, "test": 7}
    shuffled = groups.sample(frac=1, random_state=1)
    again = group_split(shuffled, (0.6, 0.2, 0.2), seed=3)
    assert (again.sort_index() == split).all()
    assert not (group_split(groups, (0.6, 0.2, 0.2), seed=4) == split).all()


def test_group_split_rejects_bad_fractions() -> None:
    with pytest.raises(ValueError, match="sum to 1"):
        group_split(pd.Series(["a"]), (0.5, 0.2, 0.2))
    with pytest.raises(ValueError, match="non-negative"):
        group_split(pd.Series(["a"]), (1.2, -0.2, 0.0))


def test_gloria_split_proportions_and_seed() -> None:
    index = pd.RangeIndex(1000)
    split = gloria_split(index)
    assert split.value_counts().to_dict() == {"train": 700, "test": 150, "validate": 150}
    assert (gloria_split(index, seed=0) == split).all()
    assert not (gloria_split(index, seed=1) == split).all()


def test_leaked_finds_values_in_two_splits() -> None:
    frame = pd.DataFrame({"id": ["a", "a", "b", "c"], "split": ["train", "test", "test", "test"]})
    assert leaked(frame, "id") == {"a"}


def test_contract_getitem_subset_and_errors(tmp_path: Path) -> None:
    (tmp_path / "bad.png").write_bytes(b"not a png")
    data = tiny([None, str(tmp_path / "bad.png"), None, None])
    assert len(data) == 4 and data.csv is data.frame
    sample = data[0]
    assert sample["image"] is None and list(sample["labels"]) == [0, 1]
    assert "report" not in sample  # this dataset has no reports
    assert data[-1]["index"] == 3
    with pytest.raises(ImageLoadError, match="bad.png"):
        data[1]
    with pytest.raises(IndexError):
        data[4]
    test = data.subset("test")
    assert list(test.csv["image_id"]) == ["i2", "i3"] and test.labels.tolist() == [[4, 5], [6, 7]]
    masked = data.subset(mask=[True, False, False, True])
    assert list(masked.csv["image_id"]) == ["i0", "i3"]
    with pytest.raises(ValueError, match="unknown split"):
        data.subset("valid")
    assert len(data) == 4  # subsets are copies


def test_contract_is_checked() -> None:
    frame = pd.DataFrame({"image_id": ["a"], "split": ["train"]})
    with pytest.raises(ValueError, match="lacks column"):
        XrayDataset(frame, ["A"], np.zeros((1, 1)))
    bad = tiny([None]).frame.assign(split="valid")
    with pytest.raises(ValueError, match="unknown split"):
        XrayDataset(bad, ["A", "B"], np.zeros((1, 2)))


def test_open_dataset_by_name(tmp_path: Path) -> None:
    assert set(READERS) == {
        "mimic", "openi", "chexpert", "chexpert5x200", "chexpert_plus", "rsna", "siim", "vindr",
        "chestxray14",
    }  # fmt: skip
    with pytest.raises(ValueError, match="unknown dataset"):
        open_dataset("padchest", tmp_path)
    for name in READERS:  # every reader rejects an empty root with the official layout
        with pytest.raises(DatasetRootError, match="Expected the official layout"):
            open_dataset(name, tmp_path)
