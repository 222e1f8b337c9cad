"""``clip2clinic compare RUN_A RUN_B ... [--baseline RUN] [--out DIR]`` (docs/evaluation.md)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compare",
        help="paired differences between evaluated runs: bootstrap over patients, McNemar, "
        "DeLong, Holm; a table and a forest plot",
        description="Compares every run with the baseline on the cases both evaluated (matched "
        "by patient, study and image ids): differences with 95% intervals from a paired "
        "bootstrap that resamples patients, McNemar's exact test for accuracies, DeLong's test "
        "for AUCs, Holm's correction over the table. Runs sharing a variant name are its "
        "seeds: the mean per-seed difference with a t interval. Writes compare.csv, "
        "compare_runs.csv, compare.md and compare_forest.png into --out.",
    )
    parser.add_argument("runs", nargs="+", metavar="RUN",
                        help="run directories evaluated by `clip2clinic evaluate` "
                        "(or their evaluation/metrics.json files)")
    parser.add_argument("--baseline", metavar="RUN", help="the run compared against "
                        "(default: the first RUN)")
    parser.add_argument("--out", "--output", default="comparison", help="output folder")
    parser.add_argument("--resamples", type=int, default=1000,
                        help="bootstrap resamples (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from clip2clinic.evaluation.compare import compare_runs
    from clip2clinic.evaluation.compare_output import write_comparison

    table, per_run = compare_runs(args.runs, args.baseline, args.resamples, args.seed)
    written = write_comparison(table, per_run, args.out)
    print(written["markdown"].read_text(encoding="utf-8"), end="")
    for kind, path in written.items():
        print(f"{kind}: {path}")
    return 0
