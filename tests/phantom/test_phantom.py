"""The phantom corpus on disk: MIMIC-CXR-JPG layout and tables, split, determinism, resume."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from pathlib import Path

import pytest
from PIL import Image

from clip2clinic.cli import main
from clip2clinic.io import InputError, read_table
from clip2clinic.observations import CHEXPERT_CLASSES
from clip2clinic.phantom import CONFIG_FILE, TRUTH_FILE, generate, generate_phantom

SIZE = 64

METADATA_HEADER = (
    "dicom_id,subject_id,study_id,PerformedProcedureStepDescription,ViewPosition,Rows,Columns,"
    "StudyDate,StudyTime,ProcedureCodeSequence_CodeMeaning,ViewCodeSequence_CodeMeaning,"
    "PatientOrientationCodeSequence_CodeMeaning"
)
SPLIT_HEADER = "dicom_id,study_id,subject_id,split"
CHEXPERT_HEADER = (
    "subject_id,study_id,Atelectasis,Cardiomegaly,Consolidation,Edema,Enlarged Cardiomediastinum,"
    "Fracture,Lung Lesion,Lung Opacity,No Finding,Pleural Effusion,Pleural Other,Pneumonia,"
    "Pneumothorax,Support Devices"
)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("phantom") / "mimic"
    summary = generate_phantom(root, studies=40, image_size=SIZE, seed=7, extra_normal=3,
                               progress=False)
    return root, summary


def _header(path: Path) -> str:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return handle.readline().rstrip("\n")


def _checksums(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_tables_have_mimic_headers_exactly(corpus):
    root, _ = corpus
    assert _header(root / "mimic-cxr-2.0.0-metadata.csv.gz") == METADATA_HEADER
    assert _header(root / "mimic-cxr-2.0.0-split.csv.gz") == SPLIT_HEADER
    assert _header(root / "mimic-cxr-2.0.0-chexpert.csv.gz") == CHEXPERT_HEADER


def test_every_image_and_report_is_where_mimic_puts_it(corpus):
    root, summary = corpus
    meta = read_table(root / "mimic-cxr-2.0.0-metadata.csv.gz")
    assert len(meta) == summary["images"]
    for row in meta.itertuples():
        assert re.fullmatch(r"[0-9a-f]{8}(-[0-9a-f]{8}){4}", row.dicom_id)
        assert re.fullmatch(r"1\d{7}", row.subject_id) and re.fullmatch(r"5\d{7}", row.study_id)
        folder = root / "files" / f"p{row.subject_id[:2]}" / f"p{row.subject_id}"
        image = folder / f"s{row.study_id}" / f"{row.dicom_id}.jpg"
        with Image.open(image) as opened:
            assert opened.format == "JPEG" and opened.mode == "L"
            assert opened.size == (int(row.Columns), int(row.Rows)) == (SIZE, SIZE)
        report = (folder / f"s{row.study_id}.txt").read_text(encoding="utf-8")
        assert report.startswith(" " * 33 + "FINAL REPORT\n EXAMINATION:  ")
        assert "IMPRESSION:" in report or "FINDINGS:" in report
    assert set(meta["ViewPosition"]) <= {"PA", "AP", "LATERAL"}
    assert {"PA", "LATERAL"} <= set(meta["ViewPosition"])
    pairs = set(zip(meta["ViewPosition"], meta["ViewCodeSequence_CodeMeaning"], strict=True))
    assert pairs <= {("PA", "postero-anterior"), ("AP", "antero-posterior"),
                     ("LATERAL", "lateral")}
    assert all(re.fullmatch(r"2\d{7}", d) for d in meta["StudyDate"])
    assert all(re.fullmatch(r"\d{6}\.\d{3}", t) for t in meta["StudyTime"])
    assert meta.groupby("study_id").size().max() >= 2  # several images per study
    assert meta.groupby("subject_id")["study_id"].nunique().max() >= 2  # several studies


def test_split_is_by_patient_and_uses_mimic_names(corpus):
    root, _ = corpus
    split = read_table(root / "mimic-cxr-2.0.0-split.csv.gz")
    assert set(split["split"]) == {"train", "validate", "test"}
    assert split.groupby("subject_id")["split"].nunique().max() == 1
    meta = read_table(root / "mimic-cxr-2.0.0-metadata.csv.gz")
    assert sorted(split["dicom_id"]) == sorted(meta["dicom_id"])


def test_chexpert_table_matches_the_truth_file(corpus):
    root, summary = corpus
    labels = read_table(root / "mimic-cxr-2.0.0-chexpert.csv.gz")
    truth = [json.loads(line) for line in (root / TRUTH_FILE).read_text().splitlines()]
    assert len(labels) == len(truth) == summary["studies"] == 43
    cells = set(labels[list(CHEXPERT_CLASSES)].stack().dropna())
    assert cells <= {"1.0", "0.0", "-1.0"}
    assert set(labels["No Finding"].dropna()) == {"1.0"}
    by_study = {row["study_id"]: row for _, row in labels.iterrows()}
    for record in truth:
        row = by_study[str(record["study_id"])]
        for name in CHEXPERT_CLASSES:
            value = record["labels"][name]
            cell = row[name]
            assert (cell != cell if value is None else float(cell) == value), (record, name)
        for image in record["images"]:
            assert (root / image["path"]).is_file()
            if image["view"] != "LATERAL":
                assert {"midline_x", "costophrenic_angle", "ctr"} <= set(image["landmarks"])
        drawn = {r["observation"] for image in record["images"] for r in image["regions"]}
        for entity in record["entities"]:
            if entity["drawn"]:
                assert entity["observation"] in drawn


def test_extra_normal_studies_share_one_report(corpus):
    root, _ = corpus
    truth = [json.loads(line) for line in (root / TRUTH_FILE).read_text().splitlines()]
    extra = [r for r in truth if r["extra_normal"]]
    assert len(extra) == 3
    texts = {(root / r["report"]).read_text() for r in extra}
    assert len(texts) == 1 and "No active lung lesion." in texts.pop()
    assert all(r["split"] == "train" and r["labels"]["No Finding"] == 1.0 for r in extra)
    assert not {r["subject_id"] for r in extra} & {r["subject_id"] for r in truth
                                                   if not r["extra_normal"]}


def test_same_seed_gives_identical_bytes_whatever_the_workers(tmp_path):
    one = generate_phantom(tmp_path / "a", studies=12, image_size=SIZE, seed=3, progress=False)
    two = generate_phantom(tmp_path / "b", studies=12, image_size=SIZE, seed=3, workers=2,
                           progress=False)
    assert one["images"] == two["images"]
    assert _checksums(tmp_path / "a") == _checksums(tmp_path / "b")
    other = generate_phantom(tmp_path / "c", studies=12, image_size=SIZE, seed=4, progress=False)
    assert other["images"] > 0
    assert _checksums(tmp_path / "a") != _checksums(tmp_path / "c")


def test_interrupted_run_resumes_to_the_same_corpus(tmp_path, monkeypatch):
    clean = tmp_path / "clean"
    generate_phantom(clean, studies=10, image_size=SIZE, seed=5, progress=False)
    draw = generate._draw_study
    calls = {"n": 0}

    def crash_after_four(job):
        calls["n"] += 1
        if calls["n"] > 4:
            raise KeyboardInterrupt
        return draw(job)

    monkeypatch.setattr(generate, "_draw_study", crash_after_four)
    resumed = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        generate_phantom(resumed, studies=10, image_size=SIZE, seed=5, progress=False)
    assert not (resumed / TRUTH_FILE).exists()
    assert not json.loads((resumed / CONFIG_FILE).read_text())["complete"]
    monkeypatch.setattr(generate, "_draw_study", draw)
    generate_phantom(resumed, studies=10, image_size=SIZE, seed=5, progress=False)
    assert _checksums(resumed) == _checksums(clean)
    again = generate_phantom(resumed, studies=10, image_size=SIZE, seed=5, progress=False)
    assert again["studies"] == 10


def test_refuses_other_settings_or_a_foreign_folder(tmp_path):
    generate_phantom(tmp_path / "p", studies=3, image_size=SIZE, seed=1, progress=False)
    with pytest.raises(InputError, match="made with"):
        generate_phantom(tmp_path / "p", studies=3, image_size=SIZE, seed=2, progress=False)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not an empty folder"):
        generate_phantom(tmp_path / "other", studies=3, image_size=SIZE, progress=False)
    with pytest.raises(InputError, match="image size"):
        generate_phantom(tmp_path / "q", studies=3, image_size=8, progress=False)


def test_cli_writes_a_corpus_and_reports_clean_errors(tmp_path, capsys):
    out = tmp_path / "cli"
    code = main(["phantom", "--out", str(out), "--studies", "4", "--image-size", str(SIZE),
                 "--seed", "2", "--quiet"])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["studies"] == 4
    assert (out / "mimic-cxr-2.0.0-chexpert.csv.gz").is_file()
    code = main(["phantom", "--out", str(out), "--studies", "5", "--image-size", str(SIZE),
                 "--quiet"])
    assert code == 2
    assert "made with" in capsys.readouterr().err
