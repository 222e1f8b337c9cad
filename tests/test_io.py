from __future__ import annotations

import gzip
import os
import stat
from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors.torch import save_file

from clip2clinic.io import (
    InputError,
    atomic_path,
    read_table,
    write_cache_file,
    write_csv_atomic,
)


def test_read_table_keeps_every_row_and_marks_missing_values(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text('id,report\na,No effusion.\nb,\nc,"multi\nline"\n')
    frame = read_table(path, required=["id", "report"])
    assert list(frame["id"]) == ["a", "b", "c"]
    assert pd.isna(frame.loc[1, "report"])
    assert frame.loc[2, "report"] == "multi\nline"


def test_read_table_reads_gzip(tmp_path: Path) -> None:
    path = tmp_path / "r.csv.gz"
    path.write_bytes(gzip.compress(b"id,report\n1,Clear lungs.\n"))
    assert read_table(path)["report"].tolist() == ["Clear lungs."]


def test_read_table_falls_back_to_latin1_per_line(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_bytes("id,report\nu,caf\u00e9 ok\n".encode() + b"l,effusion \xe9\xe8 small\n")
    frame = read_table(path)
    assert frame.loc[0, "report"] == "caf\u00e9 ok"
    assert frame.loc[1, "report"] == "effusion \u00e9\u00e8 small"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"id,text\n1,x\n", r"missing column\(s\) .report."),
        (b'id,report\nok,x\nbad,"unterminated\n', "unreadable CSV"),
        (b"id,report\nok,x\nextra,a,b,c\n", "line 3: 4 fields but the header has 2"),
    ],
)
def test_read_table_errors_name_the_file(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message) as info:
        read_table(path, required=["report"])
    assert str(path) in str(info.value)


def test_read_table_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        read_table(tmp_path / "nope.csv")


def test_atomic_write_leaves_target_untouched_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]
    write_csv_atomic(pd.DataFrame({"a": [1]}), target)
    assert target.read_text() == "a\n1\n"


def test_bad_input_corpus_tables(bad_inputs: Path) -> None:
    frame = read_table(bad_inputs / "reports_bad.csv", required=["id", "report"])
    assert "huge" in set(frame["id"]) and "missing_value" in set(frame["id"])
    assert len(read_table(bad_inputs / "reports_not_utf8.csv")) == 2
    for name, message in [
        ("reports_missing_column.csv", "missing column"),
        ("reports_ragged.csv", "unreadable CSV"),
        ("reports_empty_file.csv", "empty"),
    ]:
        with pytest.raises(InputError, match=message):
            read_table(bad_inputs / name, required=["id", "report"])


def test_atomic_writes_follow_the_umask_even_when_the_writer_makes_a_0600_file(tmp_path):
    old = os.umask(0o002)
    try:
        with atomic_path(tmp_path / "cache.safetensors") as tmp:
            save_file({"a": torch.zeros(2)}, str(tmp))  # replaces tmp with a 0600 file
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "cache.safetensors").stat().st_mode) == 0o664


def test_cache_files_are_written_whole_with_the_umask_and_no_temporary_left(tmp_path):
    target = tmp_path / "images" / "ab" / "x.png"
    old = os.umask(0o027)
    try:
        write_cache_file(b"first", target)
        write_cache_file(b"second", target)  # replaces the file, never appends
    finally:
        os.umask(old)
    assert target.read_bytes() == b"second"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert sorted(p.name for p in target.parent.iterdir()) == ["x.png"]
    link = tmp_path / "link.png"
    link.symlink_to(target)
    with pytest.raises(InputError, match="symbolic link"):
        write_cache_file(b"third", link)
    assert target.read_bytes() == b"second"
