"""MIMIC-CXR-JPG reader on a tiny tree in the official layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clip2clinic.data.datasets import DatasetRootError, MimicCxr, open_dataset
from clip2clinic.data.datasets.splits import leaked
from clip2clinic.io import InputError
from clip2clinic.observations import CHEXPERT_CLASSES
from tests.image_files import write_jpeg

METADATA_COLUMNS = [
    "dicom_id", "subject_id", "study_id", "PerformedProcedureStepDescription", "ViewPosition",
    "Rows", "Columns", "StudyDate", "StudyTime", "ProcedureCodeSequence_CodeMeaning",
    "ViewCodeSequence_CodeMeaning", "PatientOrientationCodeSequence_CodeMeaning",
]  # fmt: skip

# (dicom_id, subject_id, study_id, view, split)
IMAGES = [
    ("d1", "10000032", "50000001", "PA", "train"),
    ("d2", "10000032", "50000001", "LATERAL", "train"),
    ("d3", "10000032", "50000002", "AP", "train"),
    ("d4", "10000764", "50000003", "PA", "validate"),
    ("d5", "11000011", "50000004", "AP", "test"),
    ("d6", "11000011", "50000004", "", "test"),
]
# study -> CheXpert row (blank = not mentioned); study 50000004 has no label row.
STUDY_LABELS = {
    "50000001": {"No Finding": "1.0"},
    "50000002": {"Pleural Effusion": "1.0", "Edema": "-1.0", "Cardiomegaly": "0.0"},
    "50000003": {"Pneumothorax": "1.0", "Support Devices": "1.0"},
}
REPORTS = {
    "50000001": "FINDINGS: Lungs are clear.\n\nIMPRESSION: No acute process.",
    "50000002": "IMPRESSION: Small left pleural effusion.",
    "50000004": "FINDINGS: ET tube in place.",
}  # 50000003 has no report file


def build_mimic(root: Path, reports_root: Path | None = None, labeler: str = "chexpert") -> Path:
    reports_root = reports_root or root
    metadata = [
        {
            "dicom_id": d, "subject_id": s, "study_id": t,
            "PerformedProcedureStepDescription": "CHEST (PA AND LAT)", "ViewPosition": v,
            "Rows": "24", "Columns": "20", "StudyDate": "21800506", "StudyTime": "213014.531",
            "ProcedureCodeSequence_CodeMeaning": "CHEST (PA AND LAT)",
            "ViewCodeSequence_CodeMeaning": "postero-anterior",
            "PatientOrientationCodeSequence_CodeMeaning": "Erect",
        }
        for d, s, t, v, _ in IMAGES
    ]  # fmt: skip
    root.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(metadata, columns=METADATA_COLUMNS).to_csv(
        root / "mimic-cxr-2.0.0-metadata.csv.gz", index=False
    )
    split = [
        {"dicom_id": d, "study_id": t, "subject_id": s, "split": p} for d, s, t, _, p in IMAGES
    ]
    pd.DataFrame(split).to_csv(root / "mimic-cxr-2.0.0-split.csv.gz", index=False)
    subjects = {t: s for _, s, t, _, _ in IMAGES}
    labels = [
        {"subject_id": subjects[t], "study_id": t, **dict.fromkeys(CHEXPERT_CLASSES, ""), **row}
        for t, row in STUDY_LABELS.items()
    ]
    pd.DataFrame(labels).to_csv(root / f"mimic-cxr-2.0.0-{labeler}.csv.gz", index=False)
    for index, (d, s, t, _, _) in enumerate(IMAGES):
        pixels = np.full((24, 20), 10 * index, np.uint8)
        write_jpeg(root / f"files/p{s[:2]}/p{s}/s{t}/{d}.jpg", pixels)
    for study, text in REPORTS.items():
        path = reports_root / f"files/p{subjects[study][:2]}/p{subjects[study]}/s{study}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.fixture
def mimic_root(tmp_path: Path) -> Path:
    return build_mimic(tmp_path / "mimic-cxr-jpg")


def test_frontal_images_with_official_split(mimic_root: Path) -> None:
    data = MimicCxr(mimic_root)
    assert list(data.csv["image_id"]) == ["d1", "d3", "d4", "d5"]
    assert list(data.csv["split"]) == ["train", "train", "validate", "test"]
    assert list(data.csv["view"]) == ["PA", "AP", "PA", "AP"]
    assert data.pathologies == list(CHEXPERT_CLASSES)
    assert data.labels.shape == (4, 14) and data.labels.dtype == np.float32
    assert leaked(data.csv, "patient_id") == set()


def test_all_views(mimic_root: Path) -> None:
    data = MimicCxr(mimic_root, views=None)
    assert len(data) == len(IMAGES)
    assert data.csv.loc[data.csv["image_id"] == "d6", "view"].item() is None


def test_paths_follow_the_official_layout(mimic_root: Path) -> None:
    data = MimicCxr(mimic_root)
    first = data.csv.iloc[0]
    assert first["path"] == str(mimic_root / "files/p10/p10000032/s50000001/d1.jpg")
    assert first["report_path"] == str(mimic_root / "files/p10/p10000032/s50000001.txt")
    assert data.csv.iloc[3]["path"].endswith("files/p11/p11000011/s50000004/d5.jpg")


def test_study_labels_are_shared_and_missing_studies_are_nan(mimic_root: Path) -> None:
    data = MimicCxr(mimic_root)
    labels = data.label_frame()
    row = data.csv.index[data.csv["image_id"] == "d3"][0]
    assert labels.loc[row, "Pleural Effusion"] == 1
    assert labels.loc[row, "Edema"] == -1
    assert labels.loc[row, "Cardiomegaly"] == 0
    assert np.isnan(labels.loc[row, "Pneumothorax"])
    assert np.isnan(data.labels[data.csv["image_id"] == "d5"]).all()
    mapped = MimicCxr(mimic_root, uncertain=0.0).label_frame()
    assert mapped.loc[row, "Edema"] == 0


def test_getitem_reads_image_and_report(mimic_root: Path) -> None:
    data = MimicCxr(mimic_root)
    sample = data[1]
    assert sample["image_id"] == "d3" and sample["patient_id"] == "10000032"
    assert sample["study_id"] == "50000002" and sample["split"] == "train"
    assert sample["image"].shape == (24, 20) and abs(int(sample["image"].mean()) - 20) <= 2
    assert sample["report"] == REPORTS["50000002"]
    assert data[2]["report"] is None  # study 50000003 has no report file
    np.testing.assert_array_equal(sample["labels"], data.labels[1])


def test_transform_is_applied(mimic_root: Path) -> None:
    data = MimicCxr(mimic_root, transform=lambda image: image.shape)
    assert data[0]["image"] == (24, 20)


def test_separate_reports_root(tmp_path: Path) -> None:
    root = build_mimic(tmp_path / "jpg", reports_root=tmp_path / "reports")
    data = MimicCxr(root, reports_root=tmp_path / "reports")
    assert data[0]["report"] == REPORTS["50000001"]


def test_negbio_labels(tmp_path: Path) -> None:
    root = build_mimic(tmp_path / "jpg", labeler="negbio")
    data = open_dataset("mimic", root, labeler="negbio")
    assert data.labels[0][CHEXPERT_CLASSES.index("No Finding")] == 1
    with pytest.raises(DatasetRootError, match="chexpert.csv.gz"):
        MimicCxr(root)


def test_subset_by_split(mimic_root: Path) -> None:
    train = MimicCxr(mimic_root).subset("train")
    assert len(train) == 2 and set(train.csv["split"]) == {"train"}
    assert train.labels.shape == (2, 14)


def test_wrong_root_names_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(DatasetRootError) as caught:
        MimicCxr(tmp_path)
    message = str(caught.value)
    assert "mimic-cxr-2.0.0-metadata.csv.gz" in message and "files/pXX/pSUBJECT" in message
    with pytest.raises(DatasetRootError, match="root folder itself"):
        MimicCxr(tmp_path / "absent")


def test_missing_column_is_named(mimic_root: Path) -> None:
    metadata = pd.read_csv(mimic_root / "mimic-cxr-2.0.0-metadata.csv.gz")
    metadata.drop(columns="ViewPosition").to_csv(
        mimic_root / "mimic-cxr-2.0.0-metadata.csv.gz", index=False
    )
    with pytest.raises(InputError, match="ViewPosition"):
        MimicCxr(mimic_root)
