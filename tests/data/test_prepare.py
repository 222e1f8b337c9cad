"""``prepare`` end to end on a tiny phantom in the MIMIC-CXR-JPG layout."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from safetensors.torch import load_file

from clip2clinic.cli import main
from clip2clinic.data.corpus import PreparedCorpus
from clip2clinic.data.manifest import SCHEMA, label_matrix, read_manifest
from clip2clinic.data.prepare import PrepareOptions, prepare
from clip2clinic.data.prepare.image_stage import run_image_stage
from clip2clinic.io import InputError
from clip2clinic.observations import CHEXPERT_CLASSES
from clip2clinic.phantom import generate_phantom
from clip2clinic.reports.labeler import RuleLabeler


@pytest.fixture(scope="module")
def phantom_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("phantom")
    generate_phantom(root, studies=24, image_size=64, seed=3)
    return root


@pytest.fixture(scope="module")
def prepared(phantom_root: Path, tmp_path_factory: pytest.TempPathFactory):
    # one frontal image made unreadable: it must be skipped and counted, not fatal
    broken = sorted(phantom_root.glob("files/p*/p*/s*/*.jpg"))[0]
    broken.write_bytes(broken.read_bytes()[:200])
    out = tmp_path_factory.mktemp("prepared") / "manifest.parquet"
    options = PrepareOptions("mimic", str(phantom_root), str(out), image_size=48, workers=2)
    return options, prepare(options), broken


def test_manifest_rows_columns_and_texts(prepared) -> None:
    options, report, broken = prepared
    manifest = read_manifest(options.out)
    assert list(manifest.columns) == SCHEMA.names
    assert len(manifest) == report["images_cached"] > 0
    assert broken.stem not in set(manifest["image_id"])
    assert set(manifest["view"]) <= {"PA", "AP"}
    # every text index points at its own text in the cached table
    cache = PreparedCorpus(options.out).cache
    texts = pd.read_parquet(cache / "texts.parquet").set_index("text_id")["text"]
    for column, id_column in [("report", "text_id"), ("hard_negative", "hard_negative_text_id"),
                              ("omitted", "omitted_text_id")]:
        assert (texts.loc[manifest[id_column]].to_numpy() == manifest[column].to_numpy()).all()
    tokens = load_file(str(cache / "text_tokens.safetensors"))
    assert tokens["input_ids"].shape == (len(texts), options.max_length)
    features = load_file(str(cache / "text_features.safetensors"))
    assert features["features"].shape[:2] == (len(texts), options.max_length)
    nodes = json.loads((cache / "graph_nodes.json").read_text())
    assert load_file(str(cache / "graph_nodes.safetensors"))["embeddings"].shape[0] == len(nodes)


def test_labels_and_hard_negatives_are_consistent(prepared) -> None:
    options, _, _ = prepared
    manifest = read_manifest(options.out)
    labeler = RuleLabeler()
    labels = label_matrix(manifest)
    for row, label_row in zip(manifest.itertuples(), labels, strict=True):
        expected = [labeler.label(row.report)[name] for name in CHEXPERT_CLASSES]
        np.testing.assert_array_equal(label_row, np.asarray(expected, dtype=np.float32))
        if row.chosen:  # abnormal: the chosen finding was positive and is negated in r^n
            column = CHEXPERT_CLASSES.index(row.chosen)
            assert label_row[column] == 1
            assert row.hard_negative_labels[column] == 0
        else:  # normal: the hard negative is a corpus report with a positive finding
            assert row.omitted == row.report
    assert manifest["chosen"].astype(bool).any() and (~manifest["chosen"].astype(bool)).any()


def test_skipped_images_are_reported(prepared) -> None:
    options, report, broken = prepared
    assert report["prepare_version"] == 2  # hard negatives drawn within each split
    studies = read_manifest(options.out).drop_duplicates("study_id")
    normal_without = (studies["chosen"] == "") & (studies["hard_negative"] == "")
    assert report["normal_studies_without_hard_negative"] == int(normal_without.sum())
    assert report["images_skipped"] == 1
    assert report["skipped_images"][0]["image_id"] == broken.stem
    saved = json.loads((PreparedCorpus(options.out).cache / "prepare_report.json").read_text())
    assert saved["images_skipped"] == 1 and saved["skip_reasons"]


def test_rerun_is_idempotent_and_reuses_work(prepared, monkeypatch) -> None:
    options, _, _ = prepared
    before = Path(options.out).read_bytes()
    import clip2clinic.data.prepare.report_stage as stage

    def fail(*_args, **_kwargs):
        raise AssertionError("a finished chunk was recomputed")

    monkeypatch.setattr(stage, "clean_and_label", fail)
    monkeypatch.setattr(stage, "negate_and_graph", fail)
    prepare(options)
    assert pd.read_parquet(options.out).equals(pd.read_parquet(io.BytesIO(before)))


def test_wrong_root_is_one_clear_error(tmp_path: Path, capsys) -> None:
    (tmp_path / "files").mkdir()
    code = main(["prepare", "mimic", "--root", str(tmp_path), "--out", str(tmp_path / "m.pq")])
    assert code == 2
    err = capsys.readouterr().err
    assert "mimic-cxr-2.0.0-metadata.csv.gz" in err and str(tmp_path) in err
    with pytest.raises(InputError):
        read_manifest(tmp_path / "m.pq")


UNREADABLE = {"truncated.png", "zero_bytes.jpg", "not_an_image.jpg", "truncated.dcm"}


def test_prepare_on_the_image_fault_corpus(bad_inputs: Path, tmp_path: Path) -> None:
    """Every file of ../shared/data/bad_inputs stands in for one phantom image: the readable
    ones are cached, the unreadable ones skipped with their reason, nothing crashes."""
    root = tmp_path / "phantom"
    generate_phantom(root, studies=24, image_size=64, seed=5, progress=False)
    faults = sorted(p for p in bad_inputs.iterdir() if not p.name.startswith("reports_"))
    frontal = phantom_frontal_files(root)
    assert len(frontal) >= len(faults)
    replaced = {}
    for fault, target in zip(faults, frontal, strict=False):
        target.write_bytes(fault.read_bytes())
        replaced[target.stem] = fault.name
    out = tmp_path / "prepared" / "manifest.parquet"
    report = prepare(PrepareOptions("mimic", str(root), str(out), image_size=32, workers=1))
    skipped = {row["image_id"]: row["skip_reason"] for row in report["skipped_images"]}
    assert {replaced[i] for i in skipped} == UNREADABLE & {f.name for f in faults}
    assert all(reason for reason in skipped.values())
    manifest = read_manifest(out)
    cache = PreparedCorpus(out).cache
    for image_id, name in replaced.items():
        if name not in UNREADABLE:
            row = manifest[manifest["image_id"] == image_id].iloc[0]
            assert (cache / row["image_cache"]).is_file(), name


def phantom_frontal_files(root: Path) -> list[Path]:
    """The phantom's frontal (PA/AP) image files, from its metadata table."""
    metadata = pd.read_csv(root / "mimic-cxr-2.0.0-metadata.csv.gz", dtype=str)
    frontal = metadata[metadata["ViewPosition"].isin(["PA", "AP"])]
    return [
        next(root.glob(f"files/p*/p{row.subject_id}/s{row.study_id}/{row.dicom_id}.jpg"))
        for row in frontal.itertuples()
    ]


@pytest.fixture(scope="module")
def prepared_splits(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """A 120-study phantom prepared without text features: every split has normal studies."""
    root = tmp_path_factory.mktemp("splits")
    generate_phantom(root / "phantom", studies=120, image_size=32, seed=11)
    out = root / "prepared" / "manifest.parquet"
    prepare(PrepareOptions("mimic", str(root / "phantom"), str(out), image_size=32,
                           text_features=False, workers=1))
    return read_manifest(out)


def test_no_validation_or_test_text_reaches_training(prepared_splits: pd.DataFrame) -> None:
    manifest = prepared_splits
    train = manifest[manifest["split"] == "train"]
    held_out = manifest[manifest["split"] != "train"]
    assert set(held_out["split"]) == {"validate", "test"}
    train_texts = set(train["report"])
    held_out_only = set(held_out["report"]) - train_texts
    for column in ("hard_negative", "omitted"):
        leaked = set(train[column]) & held_out_only
        assert not leaked, f"training {column} texts found only in validation/test: {leaked}"
    # and each held-out split draws only from its own reports
    for split, rows in held_out.groupby("split"):
        normal = rows[~rows["chosen"].astype(bool) & rows["hard_negative"].astype(bool)]
        assert len(normal) > 0
        assert set(normal["hard_negative"]) <= set(rows["report"]), split


def test_normal_studies_never_draw_a_finding_they_mention(prepared_splits: pd.DataFrame) -> None:
    normal = prepared_splits[~prepared_splits["chosen"].astype(bool)]
    drawn = normal[normal["hard_negative"].astype(bool)]
    assert len(drawn) > 0
    own, negative = label_matrix(drawn), label_matrix(drawn, "hard_negative_labels")
    findings = slice(1, None)  # not No Finding
    clash = (~np.isnan(own[:, findings])) & (negative[:, findings] == 1)
    assert not clash.any()


def test_prepare_warns_in_one_line_when_it_upsamples(phantom_root: Path, tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    """The phantom's 64 px images cached at 80 px: one warning naming both sizes."""
    out = tmp_path / "manifest.parquet"
    prepare(PrepareOptions("mimic", str(phantom_root), str(out), image_size=80))
    lines = [r.getMessage() for r in caplog.records if "upsampled" in r.getMessage()]
    assert len(lines) == 1
    assert re.match(r"(\d+) of \1 cached image\(s\) have a source shorter side of 64 px, "
                    r"below --image-size 80: they were upsampled", lines[0])  # fmt: skip


@pytest.mark.parametrize("shard_size", [None, 5])
def test_image_stage_tells_upsampled_images_from_the_rest(
    phantom_root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, shard_size: int | None
) -> None:
    paths = sorted(str(p) for p in phantom_root.glob("files/p*/p*/s*/*.jpg"))[1:9]
    small = tmp_path / "small.png"
    Image.fromarray(np.full((30, 40), 90, np.uint8)).save(small)
    frame = pd.DataFrame({"image_id": [f"i{k}" for k in range(len(paths) + 1)],
                          "path": [*paths, str(small)], "split": "train"})  # fmt: skip
    corpus = PreparedCorpus(tmp_path / "m48.parquet")
    results = run_image_stage(frame, corpus, "mimic", 48, 1, shard_size)
    assert results["upsampled_from"].tolist() == [0] * len(paths) + [30]
    (line,) = [r.getMessage() for r in caplog.records if "upsampled" in r.getMessage()]
    assert line.startswith(f"1 of {len(paths) + 1} cached image(s) have a source shorter side "
                           "of 30 px, below --image-size 48")  # fmt: skip
    caplog.clear()
    run_image_stage(frame, PreparedCorpus(tmp_path / "m30.parquet"), "mimic", 30, 1, shard_size)
    assert not [r for r in caplog.records if "upsampled" in r.getMessage()]
