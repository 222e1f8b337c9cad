"""PreparedCorpus: the one owner of a prepared corpus's layout (manifest + cache folder)."""

from __future__ import annotations

import ast
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from safetensors import safe_open

from clip2clinic.data.corpus import PreparedCorpus
from clip2clinic.io import InputError

SRC = Path(__file__).resolve().parents[2] / "src" / "clip2clinic"


def test_prepare_writes_what_the_corpus_names(tiny_prepared_phantom):
    corpus = PreparedCorpus(tiny_prepared_phantom)
    assert corpus.cache == tiny_prepared_phantom.with_name("manifest_cache")
    for path in (corpus.report_file, corpus.texts_file, corpus.text_info_file,
                 corpus.text_cache_file("input_ids"), corpus.text_cache_file("features"),
                 corpus.graph_nodes_file, corpus.graph_node_features_file):
        assert path.is_file(), path
    report = corpus.report()
    assert report["images_cached"] == len(corpus.read())
    test = corpus.read(split="test", columns=["text_id"])
    assert all(path.is_file() for path in corpus.image_paths(test))
    with safe_open(str(corpus.text_cache_file("input_ids")), framework="pt") as handle:
        assert handle.metadata()["text_fingerprint"] == corpus.texts_fingerprint()


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
    with pytest.raises(InputError, match="manifest version 9, this clip2clinic reads 1, 2"):
        PreparedCorpus(tmp_path / "v9.parquet").read()
