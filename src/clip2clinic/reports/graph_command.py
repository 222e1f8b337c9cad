"""``clip2clinic graph``: a RadGraph-style graph for every report of a CSV, as JSON Lines.

Each output line is ``{"id": <ID cell>, "graph": <RadGraph JSON of the report>}``, in input
order (an ``error`` key too where a row could not be processed); the file is written
atomically.
"""

from __future__ import annotations

import argparse
import json
import logging

from tqdm.auto import tqdm

from clip2clinic.cli_args import PROGRESS_FROM, add_report_table_arguments, read_report_table
from clip2clinic.io import InputError, as_text, atomic_path
from clip2clinic.reports.graph import BACKENDS, empty_graph, get_extractor

log = logging.getLogger(__name__)

def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``graph`` sub-command."""
    parser = subparsers.add_parser(
        "graph",
        help="extract RadGraph-style entity/relation graphs from reports",
        description="Extract a RadGraph-style graph (entities ANAT-DP, OBS-DP, OBS-U, OBS-DA; "
        "relations modify, located_at, suggestive_of) from every report of a CSV and write "
        "one JSON object per row: {\"id\": ..., \"graph\": ...}.",
    )
    add_report_table_arguments(parser, output_help="JSON Lines file to write (atomically)")
    parser.add_argument("--backend", choices=BACKENDS, default="rules",
                        help="rules (offline, default) or radgraph (the radgraph package with "
                        "its model already cached)")
    parser.add_argument("--radgraph-model", default="radgraph-xl",
                        help="radgraph model type (radgraph, radgraph-xl, modern-radgraph-xl)")
    parser.add_argument("--radgraph-cache-dir",
                        help="folder holding <model type>/ (default: the package's cache)")
    parser.set_defaults(func=run)


def _extractor(args: argparse.Namespace):
    if args.backend != "radgraph":
        return get_extractor(args.backend)
    from clip2clinic.reports.graph.radgraph_backend import RadGraphUnavailable

    try:
        return get_extractor("radgraph", model_type=args.radgraph_model,
                             model_cache_dir=args.radgraph_cache_dir)
    except (RadGraphUnavailable, ValueError) as exc:
        raise InputError(str(exc)) from None


def graph_records(extractor, ids: list, texts: list[str], progress: bool = False,
                  batch: int = 256) -> list[dict]:
    """``{"id", "graph"}`` per row, in order. A batch that fails is redone row by row; a row
    that still fails gets an empty graph and an ``error`` message, and is counted in the log."""
    records: list[dict] = []
    failed = 0
    with tqdm(total=len(texts), disable=not progress, unit="report") as bar:
        for start in range(0, len(texts), batch):
            chunk = texts[start:start + batch]
            try:
                graphs = extractor.extract_many(chunk)
                errors = [None] * len(chunk)
            except Exception:  # noqa: BLE001 - isolate the bad row below, never lose the batch
                graphs, errors = [], []
                for offset, text in enumerate(chunk):
                    try:
                        graphs.append(extractor.extract(text))
                        errors.append(None)
                    except Exception as exc:  # noqa: BLE001
                        log.warning("row %d: no graph (%s: %s)", start + offset + 1,
                                    type(exc).__name__, exc)
                        graphs.append(empty_graph())
                        errors.append(f"{type(exc).__name__}: {exc}")
                        failed += 1
            for ident, graph, error in zip(ids[start:start + batch], graphs, errors, strict=True):
                record = {"id": ident, "graph": graph}
                if error is not None:
                    record["error"] = error
                records.append(record)
            bar.update(len(chunk))
    if failed:
        log.warning("%d of %d row(s) got an empty graph after an error", failed, len(texts))
    return records


def run(args: argparse.Namespace) -> int:
    frame = read_report_table(args)
    extractor = _extractor(args)
    texts = [as_text(t) for t in frame[args.text_column]]
    ids = [None if as_text(i) == "" else str(i) for i in frame[args.id_column]]
    records = graph_records(extractor, ids, texts, progress=len(texts) >= PROGRESS_FROM)
    with atomic_path(args.output) as tmp, tmp.open("w", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    log.info("graphs of %d report(s) -> %s", len(texts), args.output)
    return 0
