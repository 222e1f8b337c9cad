"""The radgraph backend with a fake ``radgraph`` package: loading offline from the cache,
converting its output (RadGraph v1 and RadGraph-XL labels), and the clear errors."""

from __future__ import annotations

import json
import os
import sys
import types
from pathlib import Path

import pytest

from clip2clinic.cli import main
from clip2clinic.reports.graph import get_extractor, validate_graph
from clip2clinic.reports.graph.radgraph_backend import (
    RadGraphExtractor,
    RadGraphUnavailable,
    convert_annotation,
    convert_label,
)

# The README example of radgraph 0.1.18 (modern-radgraph-xl): its tokenisation, its labels.
XL_OUTPUT = {
    "text": "No evidence of pneumothorax following chest tube removal .",
    "entities": {
        "1": {"tokens": "pneumothorax", "label": "Observation::definitely absent",
              "start_ix": 3, "end_ix": 3, "relations": []},
        "2": {"tokens": "chest", "label": "Anatomy::definitely present",
              "start_ix": 5, "end_ix": 5, "relations": []},
        "3": {"tokens": "tube", "label": "Observation::definitely present",
              "start_ix": 6, "end_ix": 6, "relations": [["located_at", "2"]]},
    },
    "data_source": None,
    "data_split": "inference",
}
# RadGraph v1 labels, as in the RadGraph dataset's train.json.
V1_OUTPUT = {
    "text": "The lungs are clear . There may be a small left pleural effusion .",
    "entities": {
        "1": {"tokens": "lungs", "label": "ANAT-DP", "start_ix": 1, "end_ix": 1,
              "relations": []},
        "2": {"tokens": "clear", "label": "OBS-DP", "start_ix": 3, "end_ix": 3,
              "relations": [["located_at", "1"]]},
        "3": {"tokens": "small", "label": "OBS-U", "start_ix": 9, "end_ix": 9,
              "relations": [["modify", "6"]]},
        "4": {"tokens": "left", "label": "ANAT-DP", "start_ix": 10, "end_ix": 10,
              "relations": [["modify", "5"]]},
        "5": {"tokens": "pleural", "label": "ANAT-DP", "start_ix": 11, "end_ix": 11,
              "relations": []},
        "6": {"tokens": "effusion", "label": "OBS-U", "start_ix": 12, "end_ix": 12,
              "relations": [["located_at", "5"]]},
    },
    "data_source": None,
    "data_split": "inference",
}


class FakeRadGraph:
    """Stands in for ``radgraph.RadGraph``: records how it was built and what it was given."""

    instances: list[FakeRadGraph] = []

    def __init__(self, **kwargs):
        self.kwargs = kwargs
        self.offline_at_load = os.environ.get("HF_HUB_OFFLINE")
        self.calls: list[list[str]] = []
        FakeRadGraph.instances.append(self)

    def __call__(self, reports: list[str]) -> dict:
        self.calls.append(list(reports))
        outputs = {"pneumothorax": XL_OUTPUT, "effusion": V1_OUTPUT}
        return {str(i): next(v for k, v in outputs.items() if k in r.lower())
                for i, r in enumerate(reports) if "skip" not in r}


@pytest.fixture
def fake_radgraph(monkeypatch, tmp_path: Path) -> Path:
    """A fake radgraph package whose default cache holds a radgraph-xl model folder."""
    FakeRadGraph.instances = []
    cache = tmp_path / "cache"
    (cache / "radgraph-xl").mkdir(parents=True)
    (cache / "radgraph-xl" / "config.json").write_text("{}")
    package = types.ModuleType("radgraph")
    package.RadGraph = FakeRadGraph
    inner = types.ModuleType("radgraph.radgraph")
    inner.CACHE_DIR = str(cache)
    package.radgraph = inner
    monkeypatch.setitem(sys.modules, "radgraph", package)
    monkeypatch.setitem(sys.modules, "radgraph.radgraph", inner)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return cache


def test_labels_of_both_schemas_convert() -> None:
    assert convert_label("Observation::definitely absent") == "OBS-DA"
    assert convert_label("Observation::uncertain") == "OBS-U"
    assert convert_label("Observation::measurement::definitely present") == "OBS-DP"
    assert convert_label("Anatomy::uncertain") == "ANAT-DP"
    assert convert_label("OBS-U") == "OBS-U"
    assert convert_label("Something else") is None


def test_xl_output_converts_to_our_format() -> None:
    graph = convert_annotation(XL_OUTPUT)
    validate_graph(graph)
    assert graph["text"] == XL_OUTPUT["text"]
    assert [(e["tokens"], e["label"], e["relations"]) for e in graph["entities"].values()] == [
        ("pneumothorax", "OBS-DA", []), ("chest", "ANAT-DP", []),
        ("tube", "OBS-DP", [["located_at", "2"]])]


def test_unknown_entities_are_dropped_with_their_relations() -> None:
    odd = {"text": "a b c", "entities": {
        "1": {"tokens": "a", "label": "Weird", "start_ix": 0, "end_ix": 0, "relations": []},
        "2": {"tokens": "b", "label": "OBS-DP", "start_ix": 1, "end_ix": 1,
              "relations": [["modify", "1"], ["located_at", "3"], ["unknown_rel", "3"]]},
        "3": {"tokens": "c", "label": "ANAT-DP", "start_ix": 2, "end_ix": 9, "relations": []},
    }}
    graph = convert_annotation(odd)
    validate_graph(graph)
    assert graph["entities"] == {"1": {"tokens": "b", "label": "OBS-DP", "start_ix": 1,
                                       "end_ix": 1, "relations": []}}


def test_loads_offline_from_the_cache_and_converts_in_order(fake_radgraph: Path) -> None:
    extractor = get_extractor("radgraph", batch_size=2)
    model = FakeRadGraph.instances[-1]
    assert model.offline_at_load == "1"
    assert "HF_HUB_OFFLINE" not in os.environ  # restored after loading
    assert model.kwargs["model_type"] == "radgraph-xl"
    assert model.kwargs["model_cache_dir"] == str(fake_radgraph)
    texts = ["No pneumothorax after chest tube removal.", "", "Maybe small effusion.",
             "skip me: pneumothorax"]
    graphs = extractor.extract_many(texts)
    assert model.calls == [[texts[0], texts[2]], [texts[3]]]  # the empty one never sent
    assert graphs[0]["text"] == XL_OUTPUT["text"]
    assert graphs[1]["entities"] == {} and graphs[1]["text"] == ""
    assert graphs[2]["entities"]["6"]["label"] == "OBS-U"
    assert graphs[3]["entities"] == {}  # radgraph skipped it: an empty graph, not a crash
    for graph in graphs:
        validate_graph(graph)


def test_missing_model_is_a_clear_error_and_nothing_is_loaded(fake_radgraph: Path) -> None:
    with pytest.raises(RadGraphUnavailable, match="'radgraph' is not cached") as error:
        RadGraphExtractor(model_type="radgraph")
    assert str(fake_radgraph / "radgraph") in str(error.value)
    assert FakeRadGraph.instances == []


def test_missing_package_is_a_clear_error(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "radgraph", None)
    with pytest.raises(RadGraphUnavailable, match="pip install radgraph"):
        RadGraphExtractor()


def test_unknown_model_type_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown radgraph model type"):
        RadGraphExtractor(model_type="gpt")


def test_cli_radgraph_backend_errors_cleanly(monkeypatch, tmp_path: Path, capsys) -> None:
    monkeypatch.setitem(sys.modules, "radgraph", None)
    source = tmp_path / "in.csv"
    source.write_text("id,report\n1,No effusion.\n")
    code = main(["graph", str(source), "--text-column", "report", "--id-column", "id",
                 "--output", str(tmp_path / "out.jsonl"), "--backend", "radgraph"])
    assert code == 2
    assert "pip install radgraph" in capsys.readouterr().err
    assert not (tmp_path / "out.jsonl").exists()


def test_cli_radgraph_backend_with_a_cached_model(fake_radgraph: Path, tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("id,report\n1,No pneumothorax.\n2,Maybe effusion.\n")
    output = tmp_path / "out.jsonl"
    code = main(["graph", str(source), "--text-column", "report", "--id-column", "id",
                 "--output", str(output), "--backend", "radgraph",
                 "--radgraph-cache-dir", str(fake_radgraph)])
    assert code == 0
    records = [json.loads(line) for line in output.read_text().splitlines()]
    assert [r["id"] for r in records] == ["1", "2"]
    assert records[0]["graph"]["entities"]["1"]["label"] == "OBS-DA"
