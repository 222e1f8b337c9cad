"""``clip2clinic graph`` end to end: JSON Lines output, bad inputs, errors, atomic output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from clip2clinic.cli import main
from clip2clinic.io import read_table
from clip2clinic.reports.graph import validate_graph
from clip2clinic.reports.graph_command import graph_records


def _graph(tmp_path: Path, source: Path, text: str = "report", ident: str = "id") -> int:
    return main(["graph", str(source), "--text-column", text, "--id-column", ident,
                 "--output", str(tmp_path / "out.jsonl")])


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_writes_one_graph_per_row_in_order(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    pd.DataFrame({"study": ["s1", "s2", "s3"],
                  "text": ["Small left pleural effusion.", "", "No pneumothorax."]}).to_csv(
        source, index=False)
    assert _graph(tmp_path, source, "text", "study") == 0
    records = _records(tmp_path / "out.jsonl")
    assert [r["id"] for r in records] == ["s1", "s2", "s3"]
    assert all(set(r) == {"id", "graph"} for r in records)
    for record in records:
        validate_graph(record["graph"])
    assert records[1]["graph"]["entities"] == {}
    labels = {e["tokens"]: e["label"] for e in records[2]["graph"]["entities"].values()}
    assert labels == {"pneumothorax": "OBS-DA"}


@pytest.mark.parametrize("name", ["reports_bad.csv", "reports_not_utf8.csv"])
def test_every_bad_report_gets_a_valid_graph(tmp_path: Path, bad_inputs: Path, name: str) -> None:
    source = bad_inputs / name
    assert _graph(tmp_path, source) == 0
    records = _records(tmp_path / "out.jsonl")
    expected = [None if pd.isna(i) else i for i in read_table(source)["id"]]
    assert [r["id"] for r in records] == expected
    for record in records:
        assert "error" not in record
        validate_graph(record["graph"])


@pytest.mark.parametrize(
    ("name", "message"),
    [("reports_missing_column.csv", "missing column"), ("reports_ragged.csv", "unreadable"),
     ("reports_empty_file.csv", "empty")],
)
def test_unusable_files_give_one_clear_error(tmp_path: Path, bad_inputs: Path, capsys,
                                             name: str, message: str) -> None:
    assert _graph(tmp_path, bad_inputs / name) == 2
    err = capsys.readouterr().err
    assert name in err and message in err
    assert list(tmp_path.iterdir()) == []  # no output, no temporary file left behind


def test_a_row_that_fails_is_kept_with_its_error() -> None:
    class Flaky:
        def extract(self, text: str) -> dict:
            if "boom" in text:
                raise RuntimeError("boom")
            return {"text": text, "entities": {}, "data_source": None,
                    "data_split": "inference"}

        def extract_many(self, texts: list[str]) -> list[dict]:
            return [self.extract(t) for t in texts]

    records = graph_records(Flaky(), ["a", "b", "c"], ["ok", "boom", "fine"], batch=2)
    assert [r["id"] for r in records] == ["a", "b", "c"]
    assert records[1]["error"] == "RuntimeError: boom"
    assert records[1]["graph"]["entities"] == {}
    assert "error" not in records[0] and "error" not in records[2]
    assert records[2]["graph"]["text"] == "fine"


def test_runs_as_python_module(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("id,report\n7,Opacity may represent atelectasis.\n")
    output = tmp_path / "sub" / "out.jsonl"
    result = subprocess.run(
        [sys.executable, "-m", "clip2clinic", "graph", str(source), "--text-column", "report",
         "--id-column", "id", "--output", str(output)],
        capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    (record,) = _records(output)
    entities = record["graph"]["entities"]
    assert record["id"] == "7"
    assert entities["1"]["relations"] == [["suggestive_of", "2"]]
    assert entities["2"]["label"] == "OBS-U"
