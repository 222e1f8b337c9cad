"""NIH ChestX-ray14 reader on a tiny tree in the official layout."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from clip2clinic.data.datasets import ChestXray14, DatasetRootError
from clip2clinic.data.datasets.chestxray14 import NIH_PATHOLOGIES
from clip2clinic.data.datasets.splits import leaked
from clip2clinic.io import InputError
from tests.image_files import write_png

HEADER = (
    "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,"
    "View Position,OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y],"
)
FINDINGS = ["No Finding", "Cardiomegaly|Effusion", "Hernia", "Pleural_Thickening|Nodule|Mass"]


def entries() -> list[tuple[str, str, int, int, str]]:
    """(image, findings, follow-up, patient, view) for 12 patients with 3 images each."""
    rows = []
    for patient in range(1, 13):
        for follow_up in range(3):
            image = f"{patient:08d}_{follow_up:03d}.png"
            rows.append(
                (
                    image,
                    FINDINGS[(patient + follow_up) % 4],
                    follow_up,
                    patient,
                    "PA" if follow_up else "AP",
                )
            )
    return rows


def build_nih(root: Path) -> Path:
    root.mkdir(parents=True)
    lines = [HEADER] + [
        f"{image},{findings},{follow_up},{patient},58,M,{view},2682,2749,0.143,0.143,"
        for image, findings, follow_up, patient, view in entries()
    ]
    (root / "Data_Entry_2017.csv").write_text("\n".join(lines) + "\n")
    images = [row[0] for row in entries()]
    test = [name for name in images if int(name[:8]) >= 10]
    train_val = [name for name in images if int(name[:8]) < 10 and name != "00000009_002.png"]
    (root / "test_list.txt").write_text("\n".join(test) + "\n")
    (root / "train_val_list.txt").write_text("\n".join(train_val) + "\n")
    for index, name in enumerate(images[:-1]):  # the last image is missing on disk
        folder = "images_001" if index < 18 else "images_002"
        write_png(root / folder / "images" / name, np.full((16, 16), index, np.uint8))
    return root


@pytest.fixture(scope="module")
def nih_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_nih(tmp_path_factory.mktemp("nih") / "ChestX-ray14")


def test_labels_from_pipe_separated_findings(nih_root: Path) -> None:
    data = ChestXray14(nih_root)
    assert data.pathologies == list(NIH_PATHOLOGIES)
    labels = data.label_frame().set_index(data.csv["image_id"])
    assert labels.loc["00000003_001.png"].sum() == 0  # (3 + 1) % 4 -> No Finding
    assert labels.loc["00000001_000.png", ["Cardiomegaly", "Effusion"]].tolist() == [1, 1]
    assert labels.loc["00000001_000.png"].sum() == 2
    assert labels.loc["00000001_002.png", ["Pleural_Thickening", "Nodule", "Mass"]].sum() == 3
    assert not np.isnan(data.labels).any()


def test_official_test_list_and_patient_validation(nih_root: Path) -> None:
    data = ChestXray14(nih_root, validation_fraction=0.25, seed=4)
    assert data.unlisted == 1 and len(data) == 35
    test = data.csv[data.csv["split"] == "test"]
    assert set(test["patient_id"]) == {"10", "11", "12"}
    validate = data.csv.loc[data.csv["split"] == "validate", "patient_id"]
    assert validate.nunique() == 2  # 25 % of the 9 train_val patients, rounded
    assert leaked(data.csv, "patient_id") == set()
    again = ChestXray14(nih_root, validation_fraction=0.25, seed=4)
    assert list(again.csv["split"]) == list(data.csv["split"])
    assert data.csv["study_id"].iloc[1] == "1_1"


def test_images_in_numbered_folders(nih_root: Path) -> None:
    data = ChestXray14(nih_root)
    paths = data.csv.set_index("image_id")["path"]
    assert "images_002/images" in paths["00000012_001.png"]
    assert paths["00000012_002.png"] is None  # missing on disk
    sample = data[5]
    assert sample["image"].shape == (16, 16) and sample["image"].max() == 5


def test_views(nih_root: Path) -> None:
    data = ChestXray14(nih_root, views=["PA"])
    assert set(data.csv["view"]) == {"PA"} and len(data) == 23


def test_real_nih_images(shared_data: Path, tmp_path: Path) -> None:
    root = tmp_path / "nih"
    (root / "images").mkdir(parents=True)
    for name in ("00000001_000.png", "00027426_000.png"):
        shutil.copy(shared_data / "images" / "nih" / name, root / "images" / name)
    (root / "Data_Entry_2017_v2020.csv").write_text(
        "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,"
        "View Position,OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]\n"
        "00000001_000.png,Cardiomegaly,0,1,57,M,PA,2682,2749,0.143,0.143\n"
        "00027426_000.png,No Finding,0,27426,40,F,PA,2048,2500,0.168,0.168\n"
    )
    (root / "train_val_list.txt").write_text("00000001_000.png\n")
    (root / "test_list.txt").write_text("00027426_000.png\n")
    data = ChestXray14(root, validation_fraction=0.0)
    assert list(data.csv["split"]) == ["train", "test"]
    assert data.labels[0, NIH_PATHOLOGIES.index("Cardiomegaly")] == 1 and data.labels[1].sum() == 0
    image = data[0]["image"]
    assert image.shape == (512, 512) and image.dtype == np.uint8 and image.std() > 10


def test_wrong_root(tmp_path: Path) -> None:
    with pytest.raises(DatasetRootError) as caught:
        ChestXray14(tmp_path)
    assert "train_val_list.txt" in str(caught.value) and "images_001/images" in str(caught.value)
    root = build_nih(tmp_path / "x")
    for folder in ("images_001", "images_002"):
        shutil.rmtree(root / folder)
    with pytest.raises(DatasetRootError, match="images"):
        ChestXray14(root)


def test_a_test_list_such_as_probmeds_replaces_the_official_one(nih_root: Path,
                                                                tmp_path: Path) -> None:
    chosen = ["00000002_001.png", "00000011_000", "00000012_002.png"]  # train_val and test
    (tmp_path / "probmed.txt").write_text("\n".join(chosen) + "\n")
    data = ChestXray14(nih_root, test_list=tmp_path / "probmed.txt")
    test = data.frame[data.frame["split"] == "test"]
    assert sorted(test["image_id"]) == ["00000002_001.png", "00000011_000.png",
                                        "00000012_002.png"]  # fmt: skip
    # the listed images' patients leave train/validate; other official test images go
    others = data.frame[data.frame["split"] != "test"]
    assert not set(others["patient_id"].astype(int)) & {2, 10, 11, 12}
    assert set(others["patient_id"].astype(int)) == {1, 3, 4, 5, 6, 7, 8, 9}
    assert not leaked(data.frame, "patient_id")
    assert "probmed.txt (3 images)" in data.source
    assert ChestXray14(nih_root).source == "official test_list.txt"
    (tmp_path / "bad.txt").write_text("99999999_000.png\n")
    with pytest.raises(InputError, match="bad.txt: 1 image.*99999999_000.png"):
        ChestXray14(nih_root, test_list=tmp_path / "bad.txt")
