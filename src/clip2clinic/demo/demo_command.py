"""``clip2clinic demo --out DIR [--quick] [--variants a,b] [--seeds N]`` (see docs/demo.md)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="phantom -> prepare -> train every variant -> evaluate -> results_summary.csv",
        description="The whole method on the embedded default, on a CPU: generate the phantom "
        "corpus, prepare it, train the eight ablation variants and SoftCLIP with the embedded "
        "preset, score them on the phantom's test split and write DIR/results_summary.csv (+ a "
        "markdown table and plots). About 10 minutes on two CPU cores; --quick about 2. "
        "Re-running the same command resumes: finished steps are skipped.",
    )
    parser.add_argument("--out", "--output", required=True, metavar="DIR", help="output folder")
    parser.add_argument("--quick", action="store_true",
                        help="a smaller phantom, shorter training and the variants baseline, n "
                        "and n_g_dtcg (about 2 minutes)")
    parser.add_argument("--variants", metavar="A,B,...",
                        help="comma-separated variants to train (default: all nine; with "
                        "--quick: baseline,n,n_g_dtcg)")
    parser.add_argument("--seeds", type=int, default=1, metavar="N",
                        help="train each variant with seeds 0..N-1; the summary averages them "
                        "(default 1)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from clip2clinic.demo.pipeline import run_demo

    variants = [v.strip() for v in args.variants.split(",") if v.strip()] if args.variants \
        else None
    summary = run_demo(args.out, variants=variants, quick=args.quick, seeds=args.seeds,
                       progress=args.progress)
    markdown = summary.with_suffix(".md")
    if markdown.is_file():
        print(markdown.read_text(encoding="utf-8"), end="")
    print(f"results: {summary}")
    return 0
