"""The ``clip2clinic`` command line: one sub-command per module in :data:`COMMANDS`.

Each listed module defines ``register(subparsers)``, which adds its sub-parser and sets
``func`` (called with the parsed arguments, returning an exit code) as a default. Only the
module of the command being run is imported (the others appear by name and one-line help), so
``clip2clinic --help`` and ``clip2clinic COMMAND --help`` start fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from clip2clinic import __version__
from clip2clinic.cli_logging import collapsed_warnings

#: Sub-command name -> (module with ``register``, the one-line help it registers).
COMMANDS: dict[str, tuple[str, str]] = {
    "phantom": ("clip2clinic.phantom.phantom_command",
                "write a synthetic chest X-ray corpus in the MIMIC-CXR-JPG layout"),
    "clean": ("clip2clinic.reports.clean_command",
              "extract findings + impression and clean reports for training"),
    "label": ("clip2clinic.reports.label_command",
              "label reports with the 14 CheXpert observations"),
    "graph": ("clip2clinic.reports.graph_command",
              "extract RadGraph-style entity/relation graphs from reports"),
    "negate": ("clip2clinic.reports.negate_command",
               "make negation-based hard negatives of reports"),
    "prepare": ("clip2clinic.data.prepare_command",
                "clean, label, graph and negate reports; cache images and texts; "
                "write a manifest"),
    "train": ("clip2clinic.training.train_command",
              "train a CLIP model (any ablation variant) on a prepared manifest"),
    "sweep": ("clip2clinic.sweep.sweep_command",
              "train a variant over a grid of settings and seeds, score each on the "
              "validation split, choose the best"),
    "evaluate": ("clip2clinic.evaluation.evaluate_command",
                 "score a checkpoint: CXR-Align, zero-shot, 5x200, probes, retrieval, "
                 "adversarial pairs, normal case detection"),
    "compare": ("clip2clinic.evaluation.compare_command",
                "paired differences between evaluated runs: bootstrap over patients, McNemar, "
                "DeLong, Holm; a table and a forest plot"),
    "report": ("clip2clinic.evaluation.report_command",
               "summarise evaluated runs: results_summary.csv, a markdown table and plots"),
    "demo": ("clip2clinic.demo.demo_command",
             "phantom -> prepare -> train every variant -> evaluate -> results_summary.csv"),
}  # fmt: skip
#: Every command takes ``--quiet``: no progress bars, only warnings and errors logged.
QUIET_HELP = "no progress bars; log only warnings and errors"


class DefaultsFormatter(argparse.HelpFormatter):
    """Help that shows each option's default (unless its help already says it)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (action.option_strings and "default" not in text
                and default not in (None, False, [], argparse.SUPPRESS)):
            text += " (default: %(default)s)"
        return text


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose help shows defaults (:class:`DefaultsFormatter`)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", DefaultsFormatter)
        super().__init__(*args, **kwargs)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser: ``command``'s module registers its sub-parser, the others are
    placeholders with their one-line help; every module registers when ``command`` is None."""
    parser = _Parser(
        prog="clip2clinic",
        description="Medical CLIP with dynamic soft labels and negation-aware hard negatives. "
        "Commands in pipeline order; each takes --out (alias --output) for what it writes "
        "and --quiet.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True,
                                       parser_class=_Parser)
    for name, (module, help_) in COMMANDS.items():
        if command is None or name == command:
            importlib.import_module(module).register(subparsers)
            subparsers.choices[name].add_argument("--quiet", action="store_true",
                                                  help=QUIET_HELP)
        else:
            subparsers.add_parser(name, help=help_)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``clip2clinic`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # The top-level options take no value, so the first other word names the command.
    command = next((word for word in argv if not word.startswith("-")), "")
    args = build_parser(command).parse_args(argv)
    # progress bars only on a terminal: a batch job's log gets no carriage-return lines
    args.progress = not args.quiet and sys.stderr.isatty()
    if not args.progress:
        os.environ["TQDM_DISABLE"] = "1"  # bars created without an explicit choice
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    logging.captureWarnings(True)  # library warnings as one log line each
    from clip2clinic.io import InputError  # after parsing: --help need not load pandas

    try:
        with collapsed_warnings():  # a warning repeated N times: once, then "N more like this"
            return int(args.func(args) or 0)
    except InputError as exc:
        print(f"clip2clinic {args.command}: error: {exc}", file=sys.stderr)
        return 2
