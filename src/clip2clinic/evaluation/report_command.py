"""``clip2clinic report RUN... --out results_summary.csv`` (see docs/evaluation.md)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="summarise evaluated runs: results_summary.csv, a markdown table and plots",
        description="One row per variant (seeds averaged), one column per metric (headline "
        "aggregates and METRIC/DATASET) with its 95% interval (_low, _high) and seed spread "
        "(_seed_sd); writes OUT, OUT with .md (the headline table, then per-dataset tables in "
        "the layouts of the paper's Tables 2, 5, 6), and the figures OUT_headline.png, "
        "OUT_roc.png (a panel per class) and OUT_training.png (from the runs' logs) beside it. "
        "Two runs holding the same checkpoint (metrics.json fingerprint) are refused: one "
        "model evaluated twice is not two seeds.",
    )
    parser.add_argument("runs", nargs="+", metavar="RUN",
                        help="run directories evaluated by `clip2clinic evaluate` "
                        "(or their evaluation/metrics.json files)")
    parser.add_argument("--out", "--output", default="results_summary.csv",
                        help="the summary CSV to write")
    parser.add_argument("--baseline", metavar="VARIANT",
                        help="also the paired differences of every other variant from this "
                        "one's runs, seed by seed (as `clip2clinic compare`): added to the "
                        "markdown and the headline figure, written to OUT_vs_VARIANT/")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from clip2clinic.evaluation.compare import compare_to_variant
    from clip2clinic.evaluation.compare_output import write_comparison
    from clip2clinic.evaluation.summary import write_report

    comparison, compared = None, {}
    if args.baseline is not None:
        comparison, per_run = compare_to_variant(args.runs, args.baseline)
        out = Path(args.out)
        folder = out.with_name(f"{out.stem}_vs_{args.baseline}")
        compared = {f"comparison_{kind}": path
                    for kind, path in write_comparison(comparison, per_run, folder).items()}
    written = {**write_report(args.runs, args.out, comparison), **compared}
    print(written["markdown"].read_text(encoding="utf-8"), end="")
    for kind, path in written.items():
        print(f"{kind}: {path}")
    return 0
