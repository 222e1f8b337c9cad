"""``clip2clinic negate``: a negation-based hard negative for every report of a CSV.

Writes the ID column plus ``chosen`` (the CheXpert class negated; empty for a normal report),
``hard_negative`` (r^n) and ``omitted`` (the report without the chosen observation, r^r; the
report itself for a normal one), named as the manifest's columns. See docs/negate.md.
"""

from __future__ import annotations

import argparse
import logging

import pandas as pd

from clip2clinic.cli_args import PROGRESS_FROM, add_report_table_arguments, read_report_table
from clip2clinic.io import as_text, write_csv_atomic
from clip2clinic.reports.negation import POOLS, make_hard_negatives

log = logging.getLogger(__name__)

def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``negate`` sub-command."""
    parser = subparsers.add_parser(
        "negate",
        help="make negation-based hard negatives of reports",
        description="For every report: an abnormal one gets one positive observation removed "
        "(omitted) and a negative statement about it inserted (hard_negative); a normal one gets a "
        "report of the file with exactly one positive finding as its hard negative.",
    )
    add_report_table_arguments(
        parser, id_help="column identifying each row; with --seed it seeds the row's random draws"
    )
    parser.add_argument("--seed", type=_seed, default=0, help="random seed (default 0)")
    parser.add_argument("--pool", choices=POOLS, default="train",
                        help="negation phrasings: train (default) or eval (disjoint wording "
                        "for building CXR-Align)")
    parser.add_argument("--clean", action="store_true",
                        help="clean the reports first (clip2clinic clean's rules: one entity "
                        "per sentence, no comparisons), as the paper does")
    parser.set_defaults(func=run)


def _seed(value: str) -> int:
    seed = int(value)
    if seed < 0:
        raise argparse.ArgumentTypeError("the seed must be a non-negative integer")
    return seed


def run(args: argparse.Namespace) -> int:
    frame = read_report_table(args)
    texts = [as_text(t) for t in frame[args.text_column]]
    if args.clean:
        from clip2clinic.reports.cleanup import clean_report

        texts = [clean_report(t) for t in texts]
    ids = [as_text(i) for i in frame[args.id_column]]
    negatives = make_hard_negatives(texts, ids, seed=args.seed, pool=args.pool,
                                    progress=len(texts) >= PROGRESS_FROM)
    table = pd.concat([pd.DataFrame({args.id_column: frame[args.id_column].to_numpy()}),
                       negatives], axis=1)
    write_csv_atomic(table, args.output)
    abnormal = int((negatives["chosen"] != "").sum())
    log.info("%d report(s): %d abnormal negated, %d normal given a corpus report -> %s",
             len(texts), abnormal, len(texts) - abnormal, args.output)
    return 0
