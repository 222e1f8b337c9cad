"""Repeated warnings collapse into one summary line per kind, in every CLI command."""

from __future__ import annotations

import logging
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from clip2clinic.cli_logging import collapsed_warnings
from clip2clinic.evaluation.classwise import warn_undefined

CLASSES = [f"class{i}" for i in range(12)]


def noisy_command() -> None:
    """What evaluate does on a small test split: one AUC warning per class without positives,
    a log warning per skipped probe, progress at INFO, and one warning of its own kind."""
    log = logging.getLogger("clip2clinic.evaluation.probes")
    for name in CLASSES:
        warn_undefined(f"phantom {name}", np.zeros(5))
        log.warning("%s: %d positives in the training subset; skipped", name, 0)
        log.info("probe %s done", name)
    warnings.warn("the only one of its kind", UserWarning, stacklevel=1)


def test_each_kind_shows_once_then_a_count(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        logging.captureWarnings(False)  # an earlier main() may have left it on, stale
        logging.captureWarnings(True)
        try:
            with collapsed_warnings() as repeats:
                noisy_command()
        finally:
            logging.captureWarnings(False)
    messages = [record.getMessage() for record in caplog.records]
    summary = [m for m in messages if "more like this" in m]
    messages = [m for m in messages if m not in summary]
    auc = [m for m in messages if "AUC of" in m]
    assert len(auc) == 1 and "AUC of phantom class0 is undefined" in auc[0]
    assert sum("positives in the training subset" in m for m in messages) == 1
    assert sum(m.startswith("probe ") for m in messages) == len(CLASSES)  # INFO untouched
    assert sum("the only one of its kind" in m for m in messages) == 1
    assert summary == [
        "11 more like this: AUC of phantom class0 is undefined: no positives among 5 labelled "
        "cases; reported as NaN",
        "11 more like this: class0: 0 positives in the training subset; skipped",
    ]
    assert len(repeats.kinds) == 3
    handlers = logging.getLogger().handlers
    assert all(repeats not in handler.filters for handler in handlers)  # removed on leaving


def test_every_cli_command_collapses_repeats(tmp_path: Path) -> None:
    """A command run by ``clip2clinic``'s entry point prints each kind once plus its count."""
    (tmp_path / "noisy_cli.py").write_text(
        "from test_cli_logging import noisy_command\n"
        "def register(subparsers):\n"
        "    parser = subparsers.add_parser('noisy')\n"
        "    parser.set_defaults(func=lambda args: noisy_command())\n"
    )
    code = (
        "import sys; from clip2clinic import cli; "
        "cli.COMMANDS['noisy'] = ('noisy_cli', 'warns a lot'); sys.exit(cli.main(['noisy']))"
    )
    path = f"{tmp_path}:{Path(__file__).parent}:{':'.join(sys.path)}"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={"PYTHONPATH": path, "PATH": ""}, check=True)  # fmt: skip
    lines = done.stderr.splitlines()
    assert sum("AUC of phantom" in line for line in lines) == 2  # the first, and its summary
    assert "WARNING clip2clinic: 11 more like this: AUC of phantom class0 is undefined" in (
        done.stderr
    )
    assert "11 more like this: class0: 0 positives in the training subset" in done.stderr
    assert sum("probe class" in line for line in lines) == len(CLASSES)
