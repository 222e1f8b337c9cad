"""Open-i / IU X-ray reader: a tiny tree in the Kaggle layout, and the real CSVs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clip2clinic.data.datasets import DatasetRootError, OpenI
from clip2clinic.data.datasets.splits import leaked
from tests.image_files import write_png

REPORT_COLUMNS = [
    "uid", "MeSH", "Problems", "image", "indication", "comparison", "findings", "impression",
]  # fmt: skip
REPORTS = [
    ("1", "normal", "normal", "The heart is normal.", "No acute disease."),
    (
        "2",
        "Cardiomegaly/borderline",
        "Cardiomegaly;Pulmonary Artery",
        "Borderline cardiomegaly.",
        "",
    ),
    ("3", "Pleural Effusion/left", "Pleural Effusion;Catheters, Indwelling", "", "Left effusion."),
    ("4", "No Indexing", "No Indexing", "Limited study.", "Limited study."),
]
PROJECTIONS = [
    ("1", "1_IM-0001-4001.dcm.png", "Frontal"),
    ("1", "1_IM-0001-3001.dcm.png", "Lateral"),
    ("2", "2_IM-0652-1001.dcm.png", "Frontal"),
    ("3", "3_IM-1384-1001.dcm.png", "Frontal"),
    ("3", "3_IM-1384-2001.dcm.png", "Lateral"),
    ("4", "4_IM-2050-1001.dcm.png", "Frontal"),
]


def build_openi(root: Path, image_folder: str | None = "images/images_normalized") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    reports = [
        {"uid": u, "MeSH": m, "Problems": p, "image": "Xray Chest PA and Lateral",
         "indication": "Cough.", "comparison": "None.", "findings": f, "impression": i}
        for u, m, p, f, i in REPORTS
    ]  # fmt: skip
    pd.DataFrame(reports, columns=REPORT_COLUMNS).to_csv(root / "indiana_reports.csv", index=False)
    pd.DataFrame(PROJECTIONS, columns=["uid", "filename", "projection"]).to_csv(
        root / "indiana_projections.csv", index=False
    )
    if image_folder is not None:
        for _, name, _ in PROJECTIONS:
            write_png(root / image_folder / name)
    return root


def test_images_reports_and_labels(tmp_path: Path) -> None:
    data = OpenI(build_openi(tmp_path / "iu"))
    assert not data.reports_only and len(data) == len(PROJECTIONS)
    assert data.csv["path"].iloc[0].endswith("images/images_normalized/1_IM-0001-4001.dcm.png")
    sample = data[0]
    assert sample["image"].shape == (24, 20)
    assert sample["report"] == "FINDINGS: The heart is normal.\n\nIMPRESSION: No acute disease."
    assert data[2]["report"] == "FINDINGS: Borderline cardiomegaly."  # empty impression left out
    assert data[3]["report"] == "IMPRESSION: Left effusion."
    labels = data.label_frame()
    assert labels.loc[0, "No Finding"] == 1 and labels.loc[0, "Cardiomegaly"] == 0
    assert labels.loc[2, "Cardiomegaly"] == 1 and labels.loc[2, "No Finding"] == 0
    assert labels.loc[3, "Pleural Effusion"] == 1 and labels.loc[3, "Support Devices"] == 1
    assert labels.loc[5].isna().all()  # "No Indexing": not coded
    assert set(data.csv["patient_id"]) == {"1", "2", "3", "4"}


def test_reports_only_mode(tmp_path: Path) -> None:
    data = OpenI(build_openi(tmp_path / "iu", image_folder=None))
    assert data.reports_only and data.csv["path"].isna().all()
    sample = data[0]
    assert sample["image"] is None and sample["report"].startswith("FINDINGS:")


def test_flat_images_folder_and_views(tmp_path: Path) -> None:
    data = OpenI(build_openi(tmp_path / "iu", image_folder="images_normalized"), views=["frontal"])
    assert len(data) == 4 and set(data.csv["view"]) == {"Frontal"}
    assert Path(data.csv["path"].iloc[0]).is_file()


def test_split_is_seeded_and_by_patient(tmp_path: Path) -> None:
    root = build_openi(tmp_path / "iu")
    first = OpenI(root, fractions=(0.5, 0.25, 0.25), seed=3).csv["split"]
    again = OpenI(root, fractions=(0.5, 0.25, 0.25), seed=3).csv["split"]
    assert list(first) == list(again)
    assert leaked(OpenI(root, seed=3).csv, "patient_id") == set()


def test_wrong_root(tmp_path: Path) -> None:
    with pytest.raises(DatasetRootError) as caught:
        OpenI(tmp_path)
    assert "indiana_reports.csv" in str(caught.value) and "images_normalized" in str(caught.value)
    with pytest.raises(DatasetRootError, match="does not exist"):
        OpenI(build_openi(tmp_path / "iu"), images=tmp_path / "nowhere")


def test_real_iu_reports(shared_data: Path) -> None:
    data = OpenI(shared_data / "iu_xray")
    assert data.reports_only
    assert len(data) == 7466 and data.csv["patient_id"].nunique() == 3851
    assert leaked(data.csv, "patient_id") == set()
    counts = data.csv.drop_duplicates("patient_id")["split"].value_counts(normalize=True)
    assert counts["train"] == pytest.approx(0.7, abs=0.01)
    not_coded = np.isnan(data.labels).all(axis=1)
    assert 0 < not_coded.sum() < len(data) * 0.05
    normal = data.label_frame()["No Finding"] == 1
    assert normal.mean() == pytest.approx(0.36, abs=0.05)  # "normal" coding in the real CSV
    assert all(data.report(i) for i in range(0, len(data), 500))


def test_prepare_openi_writes_a_manifest_with_reports(tmp_path: Path) -> None:
    """The reader's own report column does not collide with the report stage's (it did:
    ``prepare openi`` failed with KeyError 'report')."""
    from clip2clinic.data.corpus import PreparedCorpus
    from clip2clinic.data.prepare import PrepareOptions, prepare

    root = build_openi(tmp_path / "openi")
    out = tmp_path / "prepared" / "manifest.parquet"
    report = prepare(PrepareOptions("openi", str(root), str(out), image_size=32, workers=1))
    frame = PreparedCorpus(out).read()
    assert report["images_cached"] == len(frame) > 0
    assert (frame["report"].str.len() > 0).any() and set(frame["dataset"]) == {"openi"}
