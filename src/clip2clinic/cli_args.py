"""Arguments shared by the sub-commands that read a table of reports."""

from __future__ import annotations

import argparse

#: Inputs with at least this many rows get a progress bar.
PROGRESS_FROM = 1000


def add_report_table_arguments(
    parser: argparse.ArgumentParser,
    output_help: str = "CSV to write (written atomically)",
    id_help: str = "column identifying each row",
) -> None:
    """``INPUT --text-column COL --id-column ID --output OUT``, as every report command takes."""
    parser.add_argument("input", help="CSV (optionally .gz) with one report per row")
    parser.add_argument("--text-column", required=True, help="column holding the report text")
    parser.add_argument("--id-column", required=True, help=id_help)
    parser.add_argument("--output", required=True, help=output_help)
