"""PreparedCorpus: the one owner of a prepared corpus's layout (manifest + cache folder)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from safetensors import safe_open

from clip2clinic.data.corpus import PreparedCorpus
from clip2clinic.data.images import ImageLoadError, load_image
from clip2clinic.data.manifest import (
    LABEL_CODING,
    ROOT_KEY,
    TEXTS_FINGERPRINT_KEY,
    dataset_root,
)
from clip2clinic.data.prepare import PrepareOptions, prepare
from clip2clinic.data.transforms import GREY
from clip2clinic.evaluation.cxr_align import build_cxr_align
from clip2clinic.io import InputError
from clip2clinic.observations import CHEXPERT_CLASSES
from clip2clinic.phantom import generate_phantom
from clip2clinic.training.data import ManifestDataset, open_text_cache

SRC = Path(__file__).resolve().parents[2] / "src" / "clip2clinic"


def test_prepare_writes_what_the_corpus_names(tiny_prepared_phantom):
    corpus = PreparedCorpus(tiny_prepared_phantom)
    assert corpus.cache == tiny_prepared_phantom.with_name("manifest_cache")
    for path in (corpus.report_file, corpus.texts_file, corpus.text_info_file,
                 corpus.text_cache_file("input_ids"), corpus.text_cache_file("features"),
                 corpus.graph_nodes_file, corpus.graph_node_features_file,
                 corpus.graph_cache_file):
        assert path.is_file(), path
    report = corpus.report()
    assert report["images_cached"] == len(corpus.read())
    test = corpus.read(split="test", columns=["text_id"])
    assert all(path.is_file() for path in corpus.image_paths(test))
    with safe_open(str(corpus.text_cache_file("input_ids")), framework="pt") as handle:
        assert handle.metadata()["text_fingerprint"] == corpus.texts_fingerprint()


def test_the_manifest_records_its_text_fingerprint(tiny_prepared_phantom, tmp_path):
    corpus = PreparedCorpus(tiny_prepared_phantom)
    recorded = pq.read_schema(corpus.manifest).metadata[TEXTS_FINGERPRINT_KEY].decode()
    assert recorded == corpus.texts_fingerprint()
    legacy = tmp_path / "manifest.parquet"  # written before the fingerprint was recorded
    table = pq.read_table(corpus.manifest)
    metadata = {k: v for k, v in table.schema.metadata.items() if k != TEXTS_FINGERPRINT_KEY}
    pq.write_table(table.replace_schema_metadata(metadata), legacy)
    assert PreparedCorpus(legacy).texts_fingerprint() == recorded  # computed from its texts


def test_a_split_reads_the_same_batch_by_batch(tiny_prepared_phantom, monkeypatch):
    from clip2clinic.data import manifest as manifest_module

    whole = PreparedCorpus(tiny_prepared_phantom).read(split="train", columns=["text_id"])
    monkeypatch.setattr(manifest_module, "_READ_BATCH_ROWS", 7)  # many batches, some empty
    batched = PreparedCorpus(tiny_prepared_phantom).read(split="train", columns=["text_id"])
    assert batched.equals(whole) and len(whole) > 7
    assert list(whole.columns) == ["image_id", "image_cache", "text_id"]
    everything = PreparedCorpus(tiny_prepared_phantom).read()
    assert set(everything["split"]) == {"train", "validate", "test"}


def test_an_unprepared_corpus_has_no_report(tmp_path):
    assert PreparedCorpus(tmp_path / "manifest.parquet").report() is None


def test_training_and_evaluation_do_not_import_prepare():
    """They read a prepared corpus through PreparedCorpus, never through prepare's modules."""
    found = []
    readers = [*(SRC / "training").rglob("*.py"), *(SRC / "evaluation").rglob("*.py"),
               *(SRC / "inference").rglob("*.py"), SRC / "api.py"]
    for path in readers:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                    "clip2clinic.data.prepare"):
                found.append(f"{path.relative_to(SRC)}: {node.module}")
    assert not found, found


def test_a_version_1_manifest_reads_with_the_patient_column_renamed(tiny_prepared_phantom,
                                                                    tmp_path):
    """Version 1 named the patient column subject_id; it still reads, as patient_id."""
    table = pq.read_table(tiny_prepared_phantom)
    names = ["subject_id" if n == "patient_id" else n for n in table.column_names]
    old = table.rename_columns(names).replace_schema_metadata(
        {b"clip2clinic_manifest_version": b"1"})
    pq.write_table(old, tmp_path / "v1.parquet")
    corpus = PreparedCorpus(tmp_path / "v1.parquet")
    expected = PreparedCorpus(tiny_prepared_phantom).read(split="test")
    assert corpus.read(split="test")["patient_id"].tolist() == expected["patient_id"].tolist()
    assert "patient_id" in corpus.read(columns=["patient_id"]).columns
    pq.write_table(old.replace_schema_metadata({b"clip2clinic_manifest_version": b"9"}),
                   tmp_path / "v9.parquet")
    with pytest.raises(InputError, match="manifest version 9, this clip2clinic reads 1, 2, 3"):
        PreparedCorpus(tmp_path / "v9.parquet").read()


def test_the_manifest_names_its_label_columns_and_records_the_dataset_root(
        tiny_prepared_phantom):
    schema = pq.read_schema(tiny_prepared_phantom)
    assert schema.metadata[b"clip2clinic_manifest_version"] == b"3"
    root = Path(schema.metadata[ROOT_KEY].decode())
    assert root == tiny_prepared_phantom.parent.parent / "phantom"
    for column in ("labels", "hard_negative_labels"):
        metadata = schema.field(column).metadata
        assert json.loads(metadata[b"classes"]) == list(CHEXPERT_CLASSES)
        assert metadata[b"coding"].decode() == LABEL_CODING
    paths = PreparedCorpus(tiny_prepared_phantom).read(columns=["image_path"])["image_path"]
    assert all(p.startswith("files/p") and p.endswith(".jpg") for p in paths), paths[:3]


def test_a_prepared_corpus_and_its_dataset_can_both_move(tmp_path):
    """Move the output folder and the dataset root: training reads every cached image,
    CXR-Align's image paths and the source paths resolve under the new root."""
    generate_phantom(tmp_path / "phantom", studies=24, image_size=32, seed=3)
    prepare(PrepareOptions("mimic", str(tmp_path / "phantom"),
                           str(tmp_path / "prepared" / "manifest.parquet"), image_size=32,
                           text_features=False, workers=1))  # fmt: skip
    (tmp_path / "elsewhere").mkdir()
    root = (tmp_path / "phantom").rename(tmp_path / "elsewhere" / "mimic")
    out = (tmp_path / "prepared").rename(tmp_path / "elsewhere" / "prepared")
    corpus = PreparedCorpus(out / "manifest.parquet")
    frame = corpus.read()
    assert len(frame) == 24

    dataset = ManifestDataset(corpus.manifest, open_text_cache(corpus.manifest, "full"), 32,
                              GREY, augment={}, hard_negatives=True, graphs=True)
    assert all(dataset[i] is not None for i in range(len(dataset)))
    assert all(p.is_file() for p in corpus.image_paths(frame))

    with pytest.raises(ImageLoadError, match="no such file"):  # the recorded root has gone
        load_image(corpus.source_paths(frame)[0])
    sources = corpus.source_paths(frame, root=root)
    assert all(p.is_file() and p.is_relative_to(root) for p in sources)
    benchmark = build_cxr_align(frame, "phantom")
    recorded = [p for entry in benchmark["phantom"].values() for p in entry["image_paths"]]
    assert recorded and all((root / p).is_file() for p in recorded)


def test_a_version_2_manifest_with_absolute_image_paths_still_resolves(tiny_prepared_phantom,
                                                                       tmp_path):
    corpus = PreparedCorpus(tiny_prepared_phantom)
    table = pq.read_table(tiny_prepared_phantom)
    root = dataset_root(tiny_prepared_phantom)
    absolute = pa.array([str(root / p) for p in table.column("image_path").to_pylist()])
    old = table.set_column(table.schema.get_field_index("image_path"), "image_path", absolute)
    pq.write_table(old.replace_schema_metadata({b"clip2clinic_manifest_version": b"2"}),
                   tmp_path / "v2.parquet")
    v2 = PreparedCorpus(tmp_path / "v2.parquet")
    assert dataset_root(v2.manifest) is None
    assert v2.source_paths(v2.read()) == corpus.source_paths(corpus.read())
