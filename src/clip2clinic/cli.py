"""The ``clip2clinic`` command line: one sub-command per module in ``COMMAND_MODULES``.

Each listed module defines ``register(subparsers)``, which adds its sub-parser and sets
``func`` (called with the parsed arguments, returning an exit code) as a default.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from clip2clinic import __version__
from clip2clinic.io import InputError

COMMAND_MODULES: tuple[str, ...] = (
    "clip2clinic.reports.label_command",
    "clip2clinic.reports.graph_command",
    "clip2clinic.data.prepare_command",
    "clip2clinic.reports.negate_command",
    "clip2clinic.reports.clean_command",
    "clip2clinic.data.phantom_command",
    "clip2clinic.training.train_command",
    "clip2clinic.evaluation.evaluate_command",
    "clip2clinic.evaluation.report_command",
    "clip2clinic.sweep.sweep_command",
    "clip2clinic.demo.demo_command",
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every sub-command registered."""
    parser = argparse.ArgumentParser(
        prog="clip2clinic",
        description="Medical CLIP with dynamic soft labels and negation-aware hard negatives.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``clip2clinic`` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    logging.captureWarnings(True)  # library warnings as one log line each
    try:
        return int(args.func(args) or 0)
    except InputError as exc:
        print(f"clip2clinic {args.command}: error: {exc}", file=sys.stderr)
        return 2
