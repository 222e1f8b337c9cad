"""``clip2clinic negate`` end to end: columns, seeding, pools, bad inputs, errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from clip2clinic.cli import main
from clip2clinic.io import read_table
from clip2clinic.observations import FINDINGS
from clip2clinic.reports.labeler import RuleLabeler
from clip2clinic.reports.negation import negation_phrasings
from clip2clinic.reports.sentences import split_sentences

REPORTS = pd.DataFrame({
    "study": ["s1", "s2", "s3", "s4", "s5"],
    "text": ["Cardiomegaly. Small right pleural effusion. No pneumothorax.",
             "Lungs are clear. Heart size normal. No effusion.",
             "Left lower lobe atelectasis. No effusion.",
             None,
             "Right PICC tip in the SVC. Mild pulmonary edema."],
})


def _negate(source: Path, output: Path, *extra: str, text: str = "text",
            ident: str = "study") -> int:
    return main(["negate", str(source), "--text-column", text, "--id-column", ident,
                 "--output", str(output), *extra])


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def test_writes_id_chosen_negated_omitted(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    REPORTS.to_csv(source, index=False)
    assert _negate(source, tmp_path / "out.csv") == 0
    out = _read(tmp_path / "out.csv")
    assert list(out.columns) == ["study", "chosen", "hard_negative", "omitted"]
    assert out["study"].tolist() == REPORTS["study"].tolist()
    labeler = RuleLabeler()
    for row, report in zip(out.itertuples(), REPORTS["text"].fillna(""), strict=True):
        if row.chosen:
            assert row.chosen in FINDINGS and labeler.label(report)[row.chosen] == 1
            assert labeler.label(row.hard_negative)[row.chosen] == 0
        else:  # normal: the file's only single-positive report is the hard negative
            assert row.omitted == report
            assert row.hard_negative == REPORTS["text"][2]
    assert out.loc[1, "chosen"] == "" and out.loc[3, "chosen"] == ""


def test_same_seed_same_output_and_pools_differ(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    REPORTS.to_csv(source, index=False)
    assert _negate(source, tmp_path / "a.csv", "--seed", "5") == 0
    assert _negate(source, tmp_path / "b.csv", "--seed", "5") == 0
    assert _read(tmp_path / "a.csv").equals(_read(tmp_path / "b.csv"))
    assert _negate(source, tmp_path / "e.csv", "--seed", "5", "--pool", "eval") == 0
    evaluation = _read(tmp_path / "e.csv")
    for row in evaluation.itertuples():
        if row.chosen:
            phrasings = set(negation_phrasings(row.chosen, "eval"))
            assert set(split_sentences(row.hard_negative)) & phrasings


def test_clean_flag_cleans_before_negating(tmp_path: Path) -> None:
    pytest.importorskip("clip2clinic.reports.cleanup")
    source = tmp_path / "in.csv"
    pd.DataFrame({"study": ["s1"], "text": [
        "Stable small left pleural effusion. No pneumothorax, edema, or consolidation."]}).to_csv(
        source, index=False)
    assert _negate(source, tmp_path / "out.csv", "--clean") == 0
    out = _read(tmp_path / "out.csv")
    assert out.loc[0, "chosen"] == "Pleural Effusion"
    assert "stable" not in out.loc[0, "hard_negative"].lower()
    assert RuleLabeler().label(out.loc[0, "omitted"])["Edema"] == 0


@pytest.mark.parametrize("name", ["reports_bad.csv", "reports_not_utf8.csv"])
def test_every_bad_report_gets_a_row(tmp_path: Path, bad_inputs: Path, name: str) -> None:
    source = bad_inputs / name
    assert _negate(source, tmp_path / "out.csv", text="report", ident="id") == 0
    out = _read(tmp_path / "out.csv")
    assert out["id"].tolist() == read_table(source)["id"].tolist()
    assert set(out["chosen"]) <= {"", *FINDINGS}


@pytest.mark.parametrize(
    ("name", "message"),
    [("reports_missing_column.csv", "missing column"), ("reports_ragged.csv", "unreadable"),
     ("reports_empty_file.csv", "empty")],
)
def test_unusable_files_give_one_clear_error(tmp_path: Path, bad_inputs: Path, capsys,
                                             name: str, message: str) -> None:
    assert _negate(bad_inputs / name, tmp_path / "out.csv", text="report", ident="id") == 2
    err = capsys.readouterr().err
    assert name in err and message in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []  # no output, no temporary file left behind


def test_negative_seed_is_refused(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        _negate(tmp_path / "in.csv", tmp_path / "out.csv", "--seed", "-1")
    assert exit_info.value.code == 2
    assert "non-negative" in capsys.readouterr().err


def test_runs_as_python_module(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    REPORTS.to_csv(source, index=False)
    result = subprocess.run(
        [sys.executable, "-m", "clip2clinic", "negate", str(source), "--text-column", "text",
         "--id-column", "study", "--output", str(tmp_path / "out.csv")],
        capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert len(_read(tmp_path / "out.csv")) == len(REPORTS)
