"""Report tables: a row with more fields than the header is an error naming its line (pandas
would shift every column and the ids would come out wrong); empty and duplicate ids are
counted in a warning; blank reports are labelled blank, not "No Finding", and counted."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pytest

from clip2clinic import cli
from clip2clinic.io import InputError, read_table
from clip2clinic.observations import CHEXPERT_CLASSES

pytestmark = pytest.mark.faults

BLANK_IDS = ["empty", "whitespace", "headers_only", "deid_only", "xxxx", "numbers_only",
             "missing_value"]  # fmt: skip


def label(source: Path, output: Path) -> int:
    return cli.main(["label", str(source), "--text-column", "report", "--id-column", "id",
                     "--output", str(output)])


@pytest.mark.parametrize(
    ("text", "line"),
    [("id,report\na,No effusion.,extra\nb,Clear.\n", 2),
     ('id,report\na,"multi\nline"\nb,Clear.\nc,x,y\n', 5)],
)
def test_row_with_more_fields_than_the_header_names_its_line(tmp_path, text, line):
    path = tmp_path / "in.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=rf"in.csv: line {line}: 3 fields but the header has 2"):
        read_table(path)


def test_label_refuses_a_shifted_table(tmp_path, capsys):
    source = tmp_path / "in.csv"
    source.write_text("id,report\ns1,Cardiomegaly, no effusion.\ns2,Clear.\n")
    assert label(source, tmp_path / "out.csv") == 2
    assert "line 2: 3 fields" in capsys.readouterr().err
    assert not (tmp_path / "out.csv").exists()


def test_empty_and_duplicate_ids_are_counted(tmp_path, caplog):
    source = tmp_path / "in.csv"
    pd.DataFrame({"id": ["a", "a", "", "b", "a", " ", "c", "c"],
                  "report": ["Clear."] * 8}).to_csv(source, index=False)
    with caplog.at_level(logging.WARNING):
        assert label(source, tmp_path / "out.csv") == 0
    assert "2 row(s) with an empty id" in caplog.text
    assert "2 id(s) appear on more than one row (5 rows in all)" in caplog.text
    assert len(pd.read_csv(tmp_path / "out.csv")) == 8


def test_blank_reports_are_labelled_blank_and_counted(tmp_path, bad_inputs, caplog):
    output = tmp_path / "out.csv"
    with caplog.at_level(logging.INFO):
        assert label(bad_inputs / "reports_bad.csv", output) == 0
    out = pd.read_csv(output, dtype=str, keep_default_na=False).set_index("id")
    assert (out.loc[BLANK_IDS, list(CHEXPERT_CLASSES)] == "").all().all()
    others = out.drop(index=BLANK_IDS)
    assert (others[list(CHEXPERT_CLASSES)] != "").any(axis=1).all()  # real text gets labels
    assert f"{len(BLANK_IDS)} blank" in caplog.text
    assert list(out.columns) == list(CHEXPERT_CLASSES)  # contract 1 unchanged


def test_a_200_kb_report_cell_is_read(tmp_path):
    source = tmp_path / "in.csv"
    pd.DataFrame({"id": ["a"], "report": ["No effusion, " * 16_000]}).to_csv(source, index=False)
    assert label(source, tmp_path / "out.csv") == 0
    assert pd.read_csv(tmp_path / "out.csv")["Pleural Effusion"].tolist() == [0]
