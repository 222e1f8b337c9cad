"""The CheXpert Plus reader on a tiny tree in the release's layout, ``prepare chexpert_plus``
on it, and ``evaluate`` scoring CXR-Align and retrieval on the prepared manifest."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clip2clinic.cli import main
from clip2clinic.data.datasets import CheXpertPlus, DatasetRootError, open_dataset
from clip2clinic.data.datasets.splits import leaked
from clip2clinic.data.manifest import read_manifest
from clip2clinic.io import InputError
from clip2clinic.observations import CHEXPERT_CLASSES
from tests.image_files import write_jpeg, write_png

#: The columns of df_chexpert_plus_240401.csv, in the release's order (it starts with an
#: unnamed index column).
HEADER = [
    "", "path_to_image", "path_to_dcm", "frontal_lateral", "ap_pa", "deid_patient_id",
    "patient_report_date_order", "report", "section_narrative", "section_clinical_history",
    "section_history", "section_comparison", "section_technique", "section_procedure_comments",
    "section_findings", "section_impression", "section_end_of_impression", "section_summary",
    "section_accession_number", "age", "sex", "race", "ethnicity", "interpreter_needed",
    "insurance_type", "recent_bmi", "deceased", "split",
]  # fmt: skip
#: (findings, impression) of real-style CheXpert Plus reports; many have an impression only.
REPORTS = [
    ("The heart is enlarged. There is a moderate right pleural effusion. No pneumothorax.",
     "1. Cardiomegaly.\n2. Moderate right pleural effusion."),
    ("Left lower lobe consolidation is present. No pleural effusion.",
     "Left lower lobe pneumonia."),
    ("", "Right upper lobe opacity, concerning for pneumonia."),
    ("Endotracheal tube terminates 4 cm above the carina. Bibasilar atelectasis.",
     "Support devices as above. Bibasilar atelectasis."),
    ("Mild pulmonary edema with small bilateral pleural effusions.", "Mild pulmonary edema."),
    ("The lungs are clear. Heart size is normal. No pleural effusion or pneumothorax.",
     "No acute cardiopulmonary process."),
    ("Small right apical pneumothorax. The lungs are otherwise clear.",
     "Small right pneumothorax."),
    ("", "No acute cardiopulmonary abnormality."),
]  # fmt: skip
TRAIN_PATIENTS = 12
VALID_PATIENTS = range(64541, 64549)


def rows() -> list[dict]:
    """Two studies per training patient, one per valid patient; a lateral beside some frontals."""
    out, number = [], 0
    studies = [("train", p, s) for p in range(1, TRAIN_PATIENTS + 1) for s in (1, 2)]
    studies += [("valid", p, 1) for p in VALID_PATIENTS]
    for split, patient, study in studies:
        findings, impression = REPORTS[number % len(REPORTS)]
        views = [("Frontal", "AP" if number % 3 else "PA")]
        if number % 4 == 0:
            views.append(("Lateral", ""))
        for view, (kind, ap_pa) in enumerate(views, start=1):
            path = f"{split}/patient{patient:05d}/study{study}/view{view}_{kind.lower()}.jpg"
            out.append({
                **dict.fromkeys(HEADER, ""), "": str(len(out)), "path_to_image": path,
                "path_to_dcm": path.replace(".jpg", ".dcm"), "frontal_lateral": kind,
                "ap_pa": ap_pa, "deid_patient_id": f"PAT{patient:06d}",
                "patient_report_date_order": str(study),
                "report": f"FINDINGS: {findings} IMPRESSION: {impression}",
                "section_history": "Shortness of breath.", "section_findings": findings,
                "section_impression": impression, "split": split,
            })  # fmt: skip
        number += 1
    return out


def build_plus(root: Path, images: str = "png") -> Path:
    """The release's layout: the report CSV and PNG/train|valid/... (``images="png"``), or
    CheXpert-v1.0-small's JPEGs with its train.csv/valid.csv labels (``images="jpg"``)."""
    root.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame(rows(), columns=HEADER)
    table.to_csv(root / "df_chexpert_plus_240401.csv", index=False)
    for relative in table["path_to_image"]:
        if images == "png":
            write_png(root / "PNG" / relative.replace(".jpg", ".png"))
        else:
            write_jpeg(root / "CheXpert-v1.0-small" / relative)
    if images == "jpg":
        write_chexpert_labels(root / "CheXpert-v1.0-small", table)
    return root


def write_chexpert_labels(folder: Path, table: pd.DataFrame) -> None:
    """CheXpert's train.csv/valid.csv for the same images: Edema positive on every other row."""
    labels = pd.DataFrame({"Path": "CheXpert-v1.0-small/" + table["path_to_image"],
                           "Frontal/Lateral": table["frontal_lateral"]})  # fmt: skip
    for name in CHEXPERT_CLASSES:
        labels[name] = ""
    labels["Edema"] = ["1.0" if i % 2 else "0.0" for i in range(len(labels))]
    for split, name in (("train", "train.csv"), ("valid", "valid.csv")):
        labels[table["split"] == split].to_csv(folder / name, index=False)


def test_frame_reports_ids_and_images(tmp_path: Path) -> None:
    root = build_plus(tmp_path)
    table = pd.read_csv(root / "df_chexpert_plus_240401.csv", dtype=str, keep_default_na=False)
    data = CheXpertPlus(root)
    frontal = table[table["frontal_lateral"] == "Frontal"].reset_index(drop=True)
    assert len(data) == len(frontal)
    frame = data.csv
    assert frame["image_id"].iloc[0] == "train/patient00001/study1/view1_frontal"
    assert frame["patient_id"].iloc[0] == "patient00001"
    assert frame["study_id"].iloc[0] == "patient00001/study1"
    assert frame["deid_patient_id"].iloc[0] == "PAT000001"
    assert frame["path"].iloc[0] == str(root / "PNG/train/patient00001/study1/view1_frontal.png")
    assert set(frame["view"]) == {"AP", "PA"}
    assert data[0]["image"].shape == (24, 20)
    # findings then impression, MIMIC's headers; an impression-only report keeps its impression
    assert data.report(0) == ("FINDINGS: " + REPORTS[0][0] + "\n\nIMPRESSION: " + REPORTS[0][1])
    only_impression = frontal.index[frontal["section_findings"] == ""][0]
    assert data.report(only_impression) == "IMPRESSION: " + frontal.loc[
        only_impression, "section_impression"]
    assert not any("Shortness" in data.report(i) for i in range(len(data)))  # history: no
    assert data[0]["report"] == data.report(0)
    # without CheXpert's label files the labels are unknown
    assert data.labels.shape == (len(data), len(CHEXPERT_CLASSES))
    assert np.isnan(data.labels).all()
    every_view = CheXpertPlus(root, views=None)
    assert len(every_view) == len(table) and "Lateral" in set(every_view.csv["view"])


def test_splits_are_by_patient_and_seeded(tmp_path: Path) -> None:
    root = build_plus(tmp_path)
    data = CheXpertPlus(root, held_out=0.25)
    frame = data.csv
    valid = frame["image_id"].str.startswith("valid/")
    assert set(frame.loc[valid, "split"]) == {"test"}  # the official valid set is the test set
    drawn = set(frame.loc[frame["split"] == "validate", "patient_id"])
    assert len(drawn) == 3  # 25 % of the 12 training patients
    assert leaked(frame, "patient_id") == set()
    again = CheXpertPlus(root, held_out=0.25).csv
    assert list(again["split"]) == list(frame["split"])
    draws = {tuple(sorted(set(CheXpertPlus(root, held_out=0.25, seed=s).csv.query(
        "split == 'validate'")["patient_id"]))) for s in range(5)}  # fmt: skip
    assert len(draws) > 1
    other = CheXpertPlus(root, test="patients", held_out=0.25).csv
    assert set(other.loc[valid, "split"]) == {"validate"}
    assert len(set(other.loc[other["split"] == "test", "patient_id"])) == 3
    assert not set(other.loc[other["split"] == "test", "patient_id"]) & set(
        other.loc[valid, "patient_id"])
    with pytest.raises(ValueError, match="test must be one of"):
        CheXpertPlus(root, test="official")


def test_chexpert_jpegs_and_their_labels(tmp_path: Path) -> None:
    root = build_plus(tmp_path, images="jpg")
    data = open_dataset("chexpert_plus", root)
    folder = root / "CheXpert-v1.0-small"
    assert data.csv["path"].iloc[0] == str(folder / "train/patient00001/study1/view1_frontal.jpg")
    edema = data.label_frame()["Edema"]
    table = pd.read_csv(folder / "train.csv", dtype=str).set_index("Path")
    first = "CheXpert-v1.0-small/" + data.csv["image_id"].iloc[0] + ".jpg"
    assert edema.iloc[0] == float(table.loc[first, "Edema"])
    assert set(edema) == {0.0, 1.0}
    assert np.isnan(data.label_frame()["Cardiomegaly"]).all()  # blank stays unknown
    assert "train.csv" in data.source


def test_errors_name_the_file_and_row(tmp_path: Path) -> None:
    root = build_plus(tmp_path)
    csv = root / "df_chexpert_plus_240401.csv"
    table = pd.read_csv(csv, dtype=str, keep_default_na=False)
    missing = table["path_to_image"].iloc[2]
    (root / "PNG" / missing.replace(".jpg", ".png")).unlink()
    with pytest.raises(InputError) as caught:
        CheXpertPlus(root)
    message = str(caught.value)
    assert str(csv) in message and "row 3" in message and missing in message
    kept = CheXpertPlus(root, missing_images="keep")
    assert kept.csv.set_index("image_id")["path"].isna().sum() == 1

    table.drop(columns=["section_impression"]).to_csv(csv, index=False)
    with pytest.raises(InputError, match="section_impression") as caught:
        CheXpertPlus(root)
    assert str(csv) in str(caught.value)

    table.assign(split=["train"] * 4 + ["test"] + ["train"] * (len(table) - 5)).to_csv(
        csv, index=False)
    with pytest.raises(InputError, match=r"row 5 .*split is not one of"):
        CheXpertPlus(root)


def test_wrong_root(tmp_path: Path) -> None:
    with pytest.raises(DatasetRootError, match="df_chexpert_plus_240401.csv"):
        CheXpertPlus(tmp_path)
    (tmp_path / "df_chexpert_plus_240401.csv").write_text(",".join(HEADER[1:]) + "\n")
    with pytest.raises(DatasetRootError, match="train/ and valid/"):
        CheXpertPlus(tmp_path)


@pytest.fixture(scope="module")
def prepared_plus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``clip2clinic prepare chexpert_plus`` on the tiny tree: the manifest path."""
    root = build_plus(tmp_path_factory.mktemp("plus") / "chexpert_plus")
    out = root.parent / "prepared" / "manifest.parquet"
    args = ["prepare", "chexpert_plus", "--root", str(root), "--out", str(out),
            "--image-size", "32", "--no-text-features", "--workers", "1"]  # fmt: skip
    assert main(args) == 0
    return out


def test_prepare_writes_a_manifest_with_reports(prepared_plus: Path) -> None:
    manifest = read_manifest(prepared_plus)
    assert set(manifest["dataset"]) == {"chexpert_plus"}
    assert len(manifest) == sum(r["frontal_lateral"] == "Frontal" for r in rows())
    assert set(manifest["split"]) == {"train", "validate", "test"}
    test = manifest[manifest["split"] == "test"]
    assert set(test["study_id"].str.split("/").str[0]) == {f"patient{p:05d}"
                                                           for p in VALID_PATIENTS}
    assert manifest["report_raw"].str.contains("IMPRESSION:").all()
    assert (manifest["report"].str.len() > 0).all()
    assert "pleural effusion" in manifest["report"].iloc[0].lower()
    assert manifest["chosen"].astype(bool).any()  # abnormal studies give CXR-Align cases


def test_evaluate_scores_cxr_align_and_retrieval_on_chexpert(tiny_run, prepared_plus,
                                                            tmp_path) -> None:  # fmt: skip
    out = tmp_path / "evaluation"
    args = ["evaluate", "--checkpoint", str(tiny_run), "--data", f"chexpert={prepared_plus}",
            "--tasks", "cxr_align,retrieval", "--out", str(out), "--quiet"]  # fmt: skip
    assert main(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())["metrics"]
    test = read_manifest(prepared_plus, split="test")
    assert metrics["retrieval_top5/chexpert"]["n"] == len(test)
    assert 0 < metrics["cxr_align_a/chexpert"]["n"] <= int(test["chosen"].astype(bool).sum())
    for name in ("cxr_align_a", "cxr_align_b", "retrieval_top5"):
        assert 0.0 <= metrics[f"{name}/chexpert"]["value"] <= 1.0
    cases = pd.read_parquet(out / "retrieval_chexpert_cases.parquet")
    assert set(cases["patient_id"]) == {f"patient{p:05d}" for p in VALID_PATIENTS}


def test_prepare_takes_reader_options_from_the_command_line(tmp_path: Path, capsys) -> None:
    """``--reader-option test=patients``: a seeded share of training patients is the test split
    and the official valid set becomes validate; an unknown option names the ones taken."""
    root = build_plus(tmp_path / "chexpert_plus")
    out = tmp_path / "prepared" / "manifest.parquet"
    common = ["prepare", "chexpert_plus", "--root", str(root), "--out", str(out),
              "--image-size", "32", "--no-text-features", "--workers", "1"]  # fmt: skip
    assert main([*common, "--reader-option", "test=patients"]) == 0
    manifest = read_manifest(out)
    valid = {f"patient{p:05d}" for p in VALID_PATIENTS}
    patients = manifest["study_id"].str.split("/").str[0]
    assert set(patients[manifest["split"] == "validate"]) == valid
    assert not set(patients[manifest["split"] == "test"]) & valid
    capsys.readouterr()
    assert main([*common[:5], str(tmp_path / "other.parquet"), *common[6:],
                 "--reader-option", "colour=blue"]) != 0
    assert "reader 'chexpert_plus' takes no option 'colour'; it takes" in capsys.readouterr().err
