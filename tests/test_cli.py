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
