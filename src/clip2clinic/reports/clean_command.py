"""``clip2clinic clean``: extract the report text and clean it (one entity per sentence, no
comparison with prior studies), with rules (default) or a local LLM. See docs/clean.md.

Writes the ID column(s), ``report`` (the findings + impression text used for training),
``cleaned`` and ``error`` (empty unless the row's cleanup failed and fell back).
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from clip2clinic.cli_args import PROGRESS_FROM
from clip2clinic.io import (
    InputError,
    as_text,
    check_ids,
    check_output,
    decode_lenient,
    read_table,
    write_csv_atomic,
)
from clip2clinic.reports.cleanup import clean_many
from clip2clinic.reports.sections import iu_report_text, report_text

log = logging.getLogger(__name__)

def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``clean`` sub-command."""
    parser = subparsers.add_parser(
        "clean",
        help="extract findings + impression and clean reports for training",
        description="Extract the report text (findings + impression) and rewrite it so that "
        "each sentence holds one clinical entity and nothing refers to earlier studies.",
    )
    parser.add_argument("input", help="CSV (optionally .gz) with one report per row, or a "
                        "MIMIC-CXR reports folder (files/pXX/pSUBJECT/sSTUDY.txt)")
    parser.add_argument("--out", "--output", dest="output", metavar="OUT", required=True,
                        help="CSV to write (written atomically)")
    parser.add_argument("--format", choices=("mimic", "iu", "plain"), default="mimic",
                        help="mimic: free text with section headers (default); iu: separate "
                        "findings/impression columns (IU/Open-i); plain: use the text as is")
    parser.add_argument("--text-column", help="column holding the report (mimic, plain)")
    parser.add_argument("--id-column", help="column identifying each row (CSV input)")
    parser.add_argument("--findings-column", default="findings",
                        help="findings column for --format iu (default: findings)")
    parser.add_argument("--impression-column", default="impression",
                        help="impression column for --format iu (default: impression)")
    parser.add_argument("--backend", choices=("rules", "llm"), default="rules",
                        help="rules: fast, deterministic, offline (default); llm: an "
                        "OpenAI-compatible server on this machine")
    llm = parser.add_argument_group("LLM backend (--backend llm)")
    llm.add_argument("--llm-url", help="server base URL, e.g. http://127.0.0.1:8000/v1")
    llm.add_argument("--llm-model", help="model name the server knows")
    llm.add_argument("--llm-workers", type=int, default=4,
                     help="concurrent requests (default 4)")
    llm.add_argument("--llm-timeout", type=float, default=120.0,
                     help="seconds per request (default 120)")
    llm.add_argument("--llm-cache", help="JSON-lines file of finished rows, for resuming "
                     "(default: OUTPUT.llm-cache.jsonl)")
    llm.add_argument("--allow-remote-llm", action="store_true",
                     help="allow a server that is not this machine. MIMIC-CXR's data use "
                     "agreement forbids sending reports to third parties")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Read, extract, clean, write."""
    check_output(args.output, [args.input])
    started = time.perf_counter()
    settings = _llm_settings(args) if args.backend == "llm" else None  # refuse remote first
    ids, reports = _read_reports(args)
    progress = tqdm(total=len(reports), unit="report", desc="cleaning", disable=None,
                    leave=False) if len(reports) >= PROGRESS_FROM else None
    cleaned, errors = _clean(reports, progress)
    if settings is not None:
        from clip2clinic.reports.llm import LLMCleaner

        cache = args.llm_cache or f"{args.output}.llm-cache.jsonl"
        if progress is not None:
            progress.reset()
            progress.set_description("asking the LLM")
        cleaner = LLMCleaner(settings, cache)
        cleaned, errors = cleaner.clean_many(reports, cleaned,
                                             progress=progress.update if progress else None)
    if progress is not None:
        progress.close()
    table = ids.copy()
    table["report"] = reports
    table["cleaned"] = cleaned
    table["error"] = errors
    write_csv_atomic(table, args.output)
    failed = sum(1 for e in errors if e)
    empty = sum(1 for r in reports if not r.strip())
    log.info("%d report(s) cleaned (%s) in %.1f s: %d without text, %d failed -> %s",
             len(reports), args.backend, time.perf_counter() - started, empty, failed,
             args.output)
    if settings is not None and cleaner.sent and cleaner.failed == cleaner.sent:
        log.error("every one of the %d request(s) to %s failed (first: %s); the output keeps "
                  "the rule-based text", cleaner.sent, cleaner.endpoint,
                  next(e for e in errors if e))
        return 1
    return 0


def _clean(reports: list[str], progress: tqdm | None) -> tuple[list[str], list[str]]:
    if progress is None:
        return clean_many(reports)
    cleaned: list[str] = []
    errors: list[str] = []
    for start in range(0, len(reports), 500):
        chunk_cleaned, chunk_errors = clean_many(reports[start : start + 500])
        cleaned += chunk_cleaned
        errors += chunk_errors
        progress.update(len(chunk_cleaned))
    return cleaned, errors


def _llm_settings(args: argparse.Namespace):  # noqa: ANN202 - the import stays lazy
    from clip2clinic.reports.llm import LLMSettings, check_local_endpoint

    if not args.llm_url or not args.llm_model:
        raise InputError("--backend llm needs --llm-url and --llm-model")
    check_local_endpoint(args.llm_url, args.allow_remote_llm)
    return LLMSettings(url=args.llm_url, model=args.llm_model, workers=args.llm_workers,
                       timeout=args.llm_timeout, allow_remote=args.allow_remote_llm)


def _read_reports(args: argparse.Namespace) -> tuple[pd.DataFrame, list[str]]:
    """(ID columns, report texts) from a CSV or a MIMIC-CXR reports folder."""
    if Path(args.input).is_dir():
        if args.format != "mimic":
            raise InputError(f"{args.input}: a folder is read as MIMIC-CXR reports; "
                             "use --format mimic")
        return _read_mimic_folder(Path(args.input))
    if not args.id_column:
        raise InputError("--id-column is required for a CSV input")
    if args.format == "iu":
        if args.text_column:
            raise InputError("--format iu reads --findings-column and --impression-column; "
                             "use --format mimic or plain for a single --text-column")
        columns = [args.id_column, args.findings_column, args.impression_column]
        frame = read_table(args.input, required=columns)
        reports = [iu_report_text(as_text(f), as_text(i)) for f, i in
                   zip(frame[args.findings_column], frame[args.impression_column], strict=True)]
    else:
        if not args.text_column:
            raise InputError(f"--text-column is required for --format {args.format}")
        frame = read_table(args.input, required=[args.id_column, args.text_column])
        reports = [report_text(as_text(t), args.format) for t in frame[args.text_column]]
    check_ids(frame[args.id_column], f"{args.input}: column {args.id_column!r}")
    return frame[[args.id_column]].reset_index(drop=True), reports


def _read_mimic_folder(root: Path) -> tuple[pd.DataFrame, list[str]]:
    """Every ``s<study>.txt`` under ``root`` (MIMIC-CXR's files/pXX/p<subject>/ layout)."""
    paths = sorted(p for p in root.rglob("s*.txt") if p.is_file())
    if not paths:
        raise InputError(f"{root}: no report files (s<study>.txt) found")
    rows, reports = [], []
    for path in paths:
        subject = path.parent.name if path.parent.name.startswith("p") else ""
        rows.append({"subject_id": subject.removeprefix("p"),
                     "study_id": path.stem.removeprefix("s")})
        try:
            reports.append(report_text(decode_lenient(path.read_bytes(), str(path)), "mimic"))
        except OSError as exc:
            log.warning("%s: unreadable (%s); its row has no text", path, exc)
            reports.append("")
    log.info("%s: %d report file(s)", root, len(paths))
    return pd.DataFrame(rows), reports
