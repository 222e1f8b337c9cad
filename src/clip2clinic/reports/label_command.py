"""``clip2clinic label``: CheXpert labels for every report of a CSV (contract 1 in DESIGN.md).

Writes the ID column plus the 14 CheXpert columns, values 1, 0, -1 or empty (not mentioned).
A blank report (no text, headers or de-identification marks only) gets every column empty,
not "No Finding", and is counted in the summary line.
"""

from __future__ import annotations

import argparse
import logging

import numpy as np
import pandas as pd

from clip2clinic.cli_args import PROGRESS_FROM, add_report_table_arguments, read_report_table
from clip2clinic.io import InputError, as_text, write_csv_atomic
from clip2clinic.observations import CHEXPERT_CLASSES
from clip2clinic.reports.labeler import BACKENDS, get_labeler
from clip2clinic.reports.sections import is_blank_report

log = logging.getLogger(__name__)

def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``label`` sub-command."""
    parser = subparsers.add_parser(
        "label",
        help="label reports with the 14 CheXpert observations",
        description="Label every report of a CSV with the 14 CheXpert observations "
        "(1 positive, 0 negative, -1 uncertain, empty not mentioned).",
    )
    add_report_table_arguments(parser)
    parser.add_argument("--backend", choices=BACKENDS, default="rules",
                        help="rules (offline, default) or chexbert (needs --checkpoint)")
    parser.add_argument("--checkpoint",
                        help="CheXbert weights (.safetensors) for --backend chexbert")
    parser.add_argument("--tokenizer", help="CheXbert tokenizer folder (default: beside the "
                        "checkpoint)")
    parser.set_defaults(func=run)


def labels_table(ids: pd.Series, labels: pd.DataFrame, id_column: str) -> pd.DataFrame:
    """ID column plus the 14 classes as nullable integers (empty when not mentioned)."""
    table = pd.DataFrame({id_column: ids.to_numpy()})
    for observation in CHEXPERT_CLASSES:
        table[observation] = labels[observation].to_numpy().round().astype(float)
        table[observation] = table[observation].astype("Int64")
    return table


def run(args: argparse.Namespace) -> int:
    frame = read_report_table(args)
    if args.backend == "chexbert" and not args.checkpoint:
        raise InputError("--backend chexbert needs --checkpoint PATH (a .safetensors file)")
    options = {"tokenizer": args.tokenizer} if args.backend == "chexbert" and args.tokenizer else {}
    try:
        labeler = get_labeler(args.backend, args.checkpoint, **options)
    except (OSError, ValueError) as exc:
        raise InputError(f"{args.checkpoint}: cannot load the {args.backend} labeler ({exc})") \
            from None
    texts = [as_text(t) for t in frame[args.text_column]]
    labels = labeler.label_many(texts, progress=len(texts) >= PROGRESS_FROM)
    blank = np.array([is_blank_report(t) for t in texts], dtype=bool)
    labels.loc[blank, :] = np.nan
    write_csv_atomic(labels_table(frame[args.id_column], labels, args.id_column), args.output)
    log.info("labelled %d report(s), %d blank (no text, headers or de-identification marks "
             "only: every column left empty) -> %s", len(texts), int(blank.sum()), args.output)
    return 0
