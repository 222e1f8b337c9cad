"""Arguments shared by the sub-commands that read a table of reports."""

from __future__ import annotations

import argparse

import pandas as pd

from clip2clinic.io import check_ids, check_output, read_table

#: Inputs with at least this many rows get a progress bar.
PROGRESS_FROM = 1000


def add_report_table_arguments(
    parser: argparse.ArgumentParser,
    output_help: str = "CSV to write (written atomically)",
    id_help: str = "column identifying each row",
) -> None:
    """``INPUT --text-column COL --id-column ID --out OUT`` (alias ``--output``), as every report
    command takes."""
    parser.add_argument("input", help="CSV (optionally .gz) with one report per row")
    parser.add_argument("--text-column", required=True, help="column holding the report text")
    parser.add_argument("--id-column", required=True, help=id_help)
    parser.add_argument("--out", "--output", dest="output", metavar="OUT", required=True,
                        help=output_help)


def read_report_table(args: argparse.Namespace) -> pd.DataFrame:
    """The input table of a report command, after checking that ``--output`` may be written
    (not the input, a link, a device) and warning about empty or duplicate ids."""
    check_output(args.output, [args.input])
    frame = read_table(args.input, required=[args.text_column, args.id_column])
    check_ids(frame[args.id_column], f"{args.input}: column {args.id_column!r}")
    return frame
