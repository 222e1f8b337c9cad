"""The command line as a whole: every sub-command registered, fast start-up."""

from __future__ import annotations

import subprocess
import sys

import pytest

from clip2clinic.cli import COMMANDS, build_parser, main


def test_every_subcommand_is_registered_with_the_help_the_lazy_parser_shows() -> None:
    (action,) = [a for a in build_parser()._actions if a.dest == "command"]
    assert list(action.choices) == list(COMMANDS)
    assert {a.dest: a.help for a in action._choices_actions} == {
        name: help_ for name, (_, help_) in COMMANDS.items()
    }


@pytest.mark.parametrize("command", list(COMMANDS))
def test_subcommand_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    assert "usage: clip2clinic " + command in capsys.readouterr().out


def test_building_the_parser_imports_no_heavy_library() -> None:
    """Start-up stays fast: torch, transformers and friends load only when a command runs;
    the top-level help loads no command module (nor pandas)."""
    code = (
        "import sys; from clip2clinic.cli import build_parser; build_parser(); "
        "print(','.join(m for m in ('torch', 'transformers', 'torch_geometric', 'sklearn', "
        "'matplotlib', 'pydicom') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
    code = (
        "import sys; from clip2clinic.cli import build_parser; build_parser(''); "
        "print(','.join(m for m in sys.modules if m == 'pandas' or m.endswith('_command')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_the_api_imports_torch_geometric_and_pydicom_only_when_used() -> None:
    """All three are slow to import (torch_geometric alone adds seconds; transformers'
    modeling_utils 1.7 s): graphs, DICOMs and the first tower built load them."""
    code = (
        "import sys; import clip2clinic.api, clip2clinic.training.trainer; "
        "print(','.join(m for m in ('torch_geometric', 'pydicom', 'transformers.modeling_utils') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_commands_are_listed_in_pipeline_order() -> None:
    assert list(COMMANDS) == ["phantom", "clean", "label", "graph", "negate", "prepare", "train",
                              "sweep", "evaluate", "compare", "report", "demo"]


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_takes_out_with_the_output_alias_and_quiet(command: str) -> None:
    parser = build_parser(command)
    (action,) = [a for a in parser._actions if a.dest == "command"]
    options = {option: a for a in action.choices[command]._actions for option in a.option_strings}
    assert "--quiet" in options
    assert options["--out"] is options["--output"]  # one flag, the old name kept as an alias


def test_help_shows_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["compare", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--resamples RESAMPLES bootstrap resamples (default 1000)" in text  # said once
    assert "output folder (default: comparison)" in text
    assert "(default: False)" not in text and "(default: None)" not in text


def test_label_keeps_the_output_flag_of_contract_1_and_takes_out(tmp_path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("id,text\n1,No pleural effusion. Mild cardiomegaly.\n")
    for flag in ("--output", "--out"):
        target = tmp_path / f"labels{flag}.csv"
        assert main(["label", str(source), "--text-column", "text", "--id-column", "id", flag,
                     str(target), "--quiet"]) == 0  # fmt: skip
        assert target.read_text().splitlines()[1].startswith("1,")


def test_no_progress_bars_in_a_batch_jobs_log(tmp_path) -> None:
    """stderr to a file (not a terminal): no bars, so no carriage returns in the log."""
    log = tmp_path / "job.log"
    with log.open("w") as handle:
        done = subprocess.run([sys.executable, "-m", "clip2clinic", "phantom", "--out",
                               str(tmp_path / "p"), "--studies", "4", "--image-size", "64"],
                              stdout=handle, stderr=subprocess.STDOUT, timeout=300)  # fmt: skip
    assert done.returncode == 0, log.read_text()[-2000:]
    assert "\r" not in log.read_text()
