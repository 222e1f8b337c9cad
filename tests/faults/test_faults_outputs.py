"""The atomic writer never destroys what it should not: the input, a link, a FIFO or device, a
directory. New files get the user's umask, are fsynced before the rename, and a temporary file
left by kill -9 (it may hold report text) is removed by the next write."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from clip2clinic import cli
from clip2clinic.io import InputError, atomic_path, write_csv_atomic, write_text_atomic
from clip2clinic.training.checkpoint import swap_into_place

pytestmark = pytest.mark.faults

REPORTS = "id,report\na,No pleural effusion.\nb,Mild cardiomegaly.\n"


def label(source: Path, output: Path) -> int:
    return cli.main(["label", str(source), "--text-column", "report", "--id-column", "id",
                     "--output", str(output)])


@pytest.fixture
def source(tmp_path) -> Path:
    path = tmp_path / "reports.csv"
    path.write_text(REPORTS)
    return path


@pytest.mark.parametrize("how", ["same", "hardlink", "relative"])
def test_output_that_is_the_input_is_refused(tmp_path, source, how, capsys, monkeypatch):
    output = {"same": source, "hardlink": tmp_path / "link.csv",
              "relative": Path("sub/../reports.csv")}[how]  # fmt: skip
    if how == "hardlink":
        os.link(source, output)
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path)
    assert label(source, output) == 2
    assert "the output is the input" in capsys.readouterr().err
    assert source.read_text() == REPORTS


def test_symlink_output_is_refused_and_kept(tmp_path, source, capsys):
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me")
    link = tmp_path / "out.csv"
    link.symlink_to(precious)
    assert label(source, link) == 2
    assert "symbolic link" in capsys.readouterr().err
    assert link.is_symlink() and precious.read_text() == "keep me"


def test_fifo_output_is_refused_not_replaced(tmp_path, source, capsys):
    fifo = tmp_path / "out.csv"
    os.mkfifo(fifo)
    assert label(source, fifo) == 2
    assert "not a regular file" in capsys.readouterr().err
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


def test_device_output_is_refused(tmp_path):
    # A private null device, never /dev/null itself: code that regresses would replace it.
    device = tmp_path / "null"
    try:
        os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("creating a device node needs root (writing to /dev/null as root was the "
                    "fault)")
    with pytest.raises(InputError, match="not a regular file"):
        write_text_atomic("report text", device)
    assert stat.S_ISCHR(device.lstat().st_mode)


def test_directory_output_is_a_clear_error(tmp_path, source, capsys):
    (tmp_path / "out").mkdir()
    assert label(source, tmp_path / "out") == 2
    assert "is a directory; give a file name" in capsys.readouterr().err


def test_files_get_the_users_umask(tmp_path):
    old = os.umask(0o022)
    try:
        write_csv_atomic(pd.DataFrame({"a": [1]}), tmp_path / "out.csv")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "out.csv").stat().st_mode) == 0o644


def test_data_files_and_checkpoints_are_fsynced_before_rename(tmp_path, monkeypatch):
    events: list[str] = []

    def record(owner, name: str) -> None:
        real = getattr(owner, name)

        def wrapper(*args):
            events.append(name)
            return real(*args)

        monkeypatch.setattr(owner, name, wrapper)

    record(os, "fsync")
    record(os, "replace")
    write_text_atomic("x", tmp_path / "a.txt")
    assert events[:2] == ["fsync", "replace"]

    events.clear()
    record(Path, "rename")
    staging = tmp_path / ".tmp-step"
    staging.mkdir()
    (staging / "model.safetensors").write_bytes(b"weights")
    swap_into_place(staging, tmp_path / "step-000001")
    assert events.count("fsync") >= 2 and events.index("rename") > events.index("fsync")


def test_temp_file_left_by_kill_9_is_removed_by_the_next_run(tmp_path):
    output = tmp_path / "cleaned.csv"
    code = ("import sys, time; from clip2clinic.io import atomic_path\n"
            "with atomic_path(sys.argv[1]) as tmp:\n"
            "    tmp.write_text('id,report\\na,PATIENT SECRET\\n'); print('written', flush=True)\n"
            "    time.sleep(60)\n")
    child = subprocess.Popen([sys.executable, "-c", code, str(output)], stdout=subprocess.PIPE,
                             text=True)
    assert child.stdout.readline().strip() == "written"
    child.send_signal(signal.SIGKILL)
    child.wait()
    left = [p for p in tmp_path.iterdir() if p.name != output.name]
    assert len(left) == 1 and "PATIENT SECRET" in left[0].read_text()
    write_text_atomic("id,report\n", output)
    assert sorted(p.name for p in tmp_path.iterdir()) == [output.name]


def test_a_live_writers_temp_file_is_left_alone(tmp_path):
    output = tmp_path / "out.txt"
    with atomic_path(output) as outer:
        outer.write_text("first")
        write_text_atomic("second", output)  # same process: its own temp files are live
        assert outer.is_file()
    assert output.read_text() == "first"
