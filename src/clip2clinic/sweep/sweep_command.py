"""``clip2clinic sweep --manifest M --variant V --grid KEY=V1,V2 ... --seeds 0,1,2 --out DIR``
(see docs/loss.md, "Choosing settings on your own data")."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "sweep",
        help="train a variant over a grid of settings and seeds, score each on the validation "
        "split, choose the best",
        description="Train VARIANT (with --preset, default embedded) for every combination of "
        "the --grid values and every seed, score each run with `clip2clinic evaluate --split "
        "validate` (the test split is never read) and write DIR/sweep.csv, sweep.md (settings "
        "sorted by the mean selection score over seeds, the chosen one marked) and sweep.png. "
        "Resumable: finished runs are reused, so re-running adds settings or seeds.",
    )
    parser.add_argument("--manifest", required=True, help="a prepared manifest (Parquet)")
    parser.add_argument("--variant", required=True, help="the variant to sweep, e.g. n_dt_c")
    parser.add_argument("--preset", default="embedded",
                        help="the preset the variant trains with (default: embedded)")
    parser.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                        help="a config key and its values (YAML; commas inside [] or {} do not "
                        "split), repeatable: the grid is their product, e.g. "
                        "--grid loss.clinical_encoding=binary,signed,onehot "
                        "--grid loss.thresholds.c=0.8,0.9")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    parser.add_argument("--set", action="append", default=[], dest="overrides",
                        metavar="KEY=VALUE", help="an override for every run, e.g. "
                        "train.epochs=6 (repeatable)")
    parser.add_argument("--select", default="cxr_align_a,cxr_align_b,zeroshot_mean_auc",
                        help="metrics whose mean is the selection score (default: "
                        "cxr_align_a,cxr_align_b,zeroshot_mean_auc)")
    parser.add_argument("--out", "--output", required=True, metavar="DIR", help="output folder")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from clip2clinic.io import InputError
    from clip2clinic.sweep.grid import parse_grid
    from clip2clinic.sweep.sweep import run_sweep

    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        raise InputError(f"--seeds {args.seeds!r}: expected comma-separated integers") from None
    result = run_sweep(args.manifest, args.variant, parse_grid(args.grid), seeds, args.out,
                       args.overrides, [m.strip() for m in args.select.split(",") if m.strip()],
                       progress=args.progress, preset=args.preset)
    print(f"chosen: {result.chosen}  (table: {args.out}/sweep.md)")
    return 0
