"""``clip2clinic label`` end to end: contract 1 output, bad inputs, errors, atomic output."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from clip2clinic.cli import main
from clip2clinic.io import read_table
from clip2clinic.observations import CHEXPERT_CLASSES


def _label(tmp_path: Path, source: Path, text: str = "report", ident: str = "id") -> int:
    return main(["label", str(source), "--text-column", text, "--id-column", ident,
                 "--output", str(tmp_path / "out.csv")])


def test_writes_id_and_the_14_columns_as_integers(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    texts = ["Cardiomegaly. No effusion.", "Possible pneumonia.", "Lungs are clear.", ""]
    pd.DataFrame({"study": ["s1", "s2", "s3", "s4"], "text": texts}).to_csv(source, index=False)
    assert _label(tmp_path, source, "text", "study") == 0
    lines = (tmp_path / "out.csv").read_text().splitlines()
    assert lines[0] == "study," + ",".join(CHEXPERT_CLASSES)
    out = pd.read_csv(tmp_path / "out.csv", dtype=str, keep_default_na=False)
    assert out["study"].tolist() == ["s1", "s2", "s3", "s4"]
    assert out.loc[0, "Cardiomegaly"] == "1" and out.loc[0, "Pleural Effusion"] == "0"
    assert out.loc[0, "No Finding"] == "" and out.loc[2, "No Finding"] == "1"
    assert out.loc[3, "No Finding"] == ""  # a blank report is blank, not "No Finding"
    assert out.loc[1, "Pneumonia"] == "-1"
    assert set(out[list(CHEXPERT_CLASSES)].to_numpy().ravel()) <= {"1", "0", "-1", ""}


@pytest.mark.parametrize("name", ["reports_bad.csv", "reports_not_utf8.csv"])
def test_every_bad_report_gets_a_row(tmp_path: Path, bad_inputs: Path, name: str) -> None:
    source = bad_inputs / name
    assert _label(tmp_path, source) == 0
    out = pd.read_csv(tmp_path / "out.csv", dtype=str, keep_default_na=False)
    assert out["id"].tolist() == read_table(source)["id"].tolist()
    assert set(out[list(CHEXPERT_CLASSES)].to_numpy().ravel()) <= {"1", "0", "-1", ""}


@pytest.mark.parametrize(
    ("name", "message"),
    [("reports_missing_column.csv", "missing column"), ("reports_ragged.csv", "unreadable"),
     ("reports_empty_file.csv", "empty")],
)
def test_unusable_files_give_one_clear_error(tmp_path: Path, bad_inputs: Path, capsys,
                                             name: str, message: str) -> None:
    assert _label(tmp_path, bad_inputs / name) == 2
    err = capsys.readouterr().err
    assert name in err and message in err
    assert not (tmp_path / "out.csv").exists()
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind


def test_chexbert_without_checkpoint_is_a_clear_error(tmp_path: Path, capsys) -> None:
    source = tmp_path / "in.csv"
    source.write_text("id,report\n1,No effusion.\n")
    code = main(["label", str(source), "--text-column", "report", "--id-column", "id",
                 "--output", str(tmp_path / "out.csv"), "--backend", "chexbert"])
    assert code == 2 and "--checkpoint" in capsys.readouterr().err


def test_runs_as_python_module(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("id,report\n7,Small right pleural effusion.\n")
    output = tmp_path / "sub" / "out.csv"
    result = subprocess.run(
        [sys.executable, "-m", "clip2clinic", "label", str(source), "--text-column", "report",
         "--id-column", "id", "--output", str(output)],
        capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    out = pd.read_csv(output, dtype=str, keep_default_na=False)
    assert out.loc[0, "Pleural Effusion"] == "1"
