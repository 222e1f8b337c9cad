"""SIIM-ACR pneumothorax reader: GLoRIA's leaking split and the de-duplicated one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.model_selection import train_test_split

from clip2clinic.data.datasets import DatasetRootError, SiimPneumothorax
from clip2clinic.data.datasets.splits import leaked
from tests.image_files import write_dicom

N_IMAGES = 40
MASKS = {i: 3 if i % 2 == 0 else 0 for i in range(N_IMAGES)}  # every other image: 3 masks


def image_id(i: int) -> str:
    return f"1.2.276.0.7230010.3.1.4.8323329.{1000 + i}.1517875167.{870000 + i}"


def build_siim(root: Path) -> Path:
    lines = ["ImageId, EncodedPixels"]  # the real header: a space before EncodedPixels
    for i in range(N_IMAGES):
        if MASKS[i]:
            lines += [f"{image_id(i)}, {100 * k + 5} 3 1021 5 1019 7" for k in range(MASKS[i])]
        else:
            lines.append(f"{image_id(i)}, -1")
    root.mkdir(parents=True)
    (root / "train-rle.csv").write_text("\n".join(lines) + "\n")
    for i in range(N_IMAGES - 1):  # the last image has no DICOM
        study, series = f"1.2.276.0.7230010.3.1.2.{i}", f"1.2.276.0.7230010.3.1.3.{i}"
        path = root / "dicom-images-train" / study / series / f"{image_id(i)}.dcm"
        write_dicom(path, np.full((8, 8), i, np.uint16), bits_stored=8)
    return root


@pytest.fixture(scope="module")
def siim_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_siim(tmp_path_factory.mktemp("siim") / "siim")


def test_gloria_split_is_reproduced_and_leaks(siim_root: Path) -> None:
    data = SiimPneumothorax(siim_root, split="gloria")
    rows = sum(max(m, 1) for m in MASKS.values())
    assert len(data) == rows
    assert data.labels[:, 0].sum() == sum(MASKS.values())
    train, rest = train_test_split(np.arange(rows), test_size=0.3, random_state=0)
    test, validate = train_test_split(rest, test_size=0.5, random_state=0)
    assert set(data.csv["split"].iloc[train]) == {"train"}
    assert set(data.csv["split"].iloc[validate]) == {"validate"}
    assert set(data.csv["split"].iloc[test]) == {"test"}
    leaking = leaked(data.csv, "image_id")
    assert leaking and leaking <= {image_id(i) for i, m in MASKS.items() if m > 1}
    crossing = data.csv[data.csv["image_id"].isin(leaking)].groupby("image_id")["split"]
    assert (crossing.nunique() > 1).all()
    assert list(data.csv["encoded_pixels"].iloc[:4]) == [
        "5 3 1021 5 1019 7", "105 3 1021 5 1019 7", "205 3 1021 5 1019 7", "-1",
    ]  # fmt: skip


def test_dedup_split_has_one_row_per_image_and_no_leak(siim_root: Path) -> None:
    data = SiimPneumothorax(siim_root)
    assert len(data) == N_IMAGES and data.csv["image_id"].is_unique
    assert leaked(data.csv, "image_id") == set()
    masks = dict(zip(data.csv["image_id"], data.csv["masks"], strict=True))
    assert masks == {image_id(i): m for i, m in MASKS.items()}
    assert list(data.labels[:, 0]) == [float(MASKS[i] > 0) for i in range(N_IMAGES)]
    assert data.csv["split"].value_counts().to_dict() == {"train": 28, "validate": 6, "test": 6}
    again = SiimPneumothorax(siim_root, seed=0)
    assert list(again.csv["split"]) == list(data.csv["split"])


def test_dicoms_are_found_in_nested_folders(siim_root: Path) -> None:
    data = SiimPneumothorax(siim_root)
    assert data.missing_images == 1 and data.csv["path"].iloc[-1] is None
    sample = data[3]
    assert sample["image"].shape == (8, 8)
    assert "dicom-images-train" in sample["path"]


def test_wrong_root(tmp_path: Path) -> None:
    with pytest.raises(DatasetRootError) as caught:
        SiimPneumothorax(tmp_path)
    assert "train-rle.csv" in str(caught.value) and "dicom-images-train" in str(caught.value)


def test_header_without_the_space_is_read_too(tmp_path: Path) -> None:
    root = build_siim(tmp_path / "siim")
    text = (
        (root / "train-rle.csv")
        .read_text()
        .replace("ImageId, EncodedPixels", "ImageId,EncodedPixels")
    )
    (root / "train-rle.csv").write_text(text)
    assert len(SiimPneumothorax(root)) == N_IMAGES
