"""The threshold/weight sweep of the soft-label streams, on the phantom's VALIDATION split.

    .venv/bin/python benchmarks/sweep_soft_labels.py --manifest M --runs DIR --variant n_dt_c \
        --tau-t 0.8,0.9,0.95,0.98 --tau-c 0.5,0.7,0.9 [--tau-g 0.9] \
        [--weights "t=1,c=1;t=0.5,c=1"] --seeds 0,1 --set train.epochs=6

Trains ``--variant`` (embedded preset) for every combination of the given thresholds and weight
settings and seeds, scores each run on the validation split with ``clip2clinic evaluate`` and
prints a table sorted by the selection score: the mean of CXR-Align Task A (evaluation-pool
negations), Task B and the zero-shot mean AUC, averaged over seeds. The test split is never
read. Finished runs are reused (same --runs), so a grid can be extended or given more seeds by
re-running. docs/loss.md ("Defaults and the sweep") records the grid, the numbers and the choice.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np
from ablation_effects import METRICS, SHORT, Scorer, cell, row_line

SELECTION = ("cxr_align_a", "cxr_align_b", "zeroshot_mean_auc")


def parse_weights(text: str) -> list[dict[str, float]]:
    """"t=1,c=1;t=0.5,c=1" -> [{"t": 1.0, "c": 1.0}, {"t": 0.5, "c": 1.0}]."""
    settings = []
    for group in filter(None, text.split(";")):
        pairs = (item.split("=") for item in group.split(","))
        settings.append({stream.strip(): float(value) for stream, value in pairs})
    return settings


def _yaml_map(values: dict[str, float]) -> str:
    return "{" + ", ".join(f"{k}: {v}" for k, v in values.items()) + "}"


def _name(variant: str, thresholds: dict[str, float], weights: dict[str, float]) -> str:
    parts = [f"{s}{v:g}" for s, v in thresholds.items()]
    parts += [f"w{s}{v:g}" for s, v in weights.items()]
    return f"{variant}_" + "_".join(parts)


def selection_score(results: list[dict]) -> float:
    """Mean over seeds of the mean of Task A, Task B and the zero-shot AUC."""
    return float(np.mean([np.mean([r[m]["value"] for m in SELECTION]) for r in results]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--runs", required=True, help="folder of the run directories")
    parser.add_argument("--variant", default="n_dt_c")
    parser.add_argument("--tau-t", default="0.9", help="comma-separated thresholds of stream t")
    parser.add_argument("--tau-c", default="0.5", help="... of stream c")
    parser.add_argument("--tau-g", default="", help="... of stream g (graph variants)")
    parser.add_argument("--weights", default="", help='weight settings, e.g. "t=1,c=1;t=0.5,c=1"')
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--set", action="append", default=[], dest="overrides",
                        help="config override for every run, e.g. train.epochs=6")
    args = parser.parse_args()
    grids = {stream: [float(v) for v in values.split(",")]
             for stream, values in (("t", args.tau_t), ("c", args.tau_c), ("g", args.tau_g))
             if values}
    weight_settings = parse_weights(args.weights) or [{}]
    seeds = [int(s) for s in args.seeds.split(",")]
    scorer = Scorer(args.manifest, "validate")
    table = []
    for combo in itertools.product(*grids.values()):
        thresholds = dict(zip(grids, combo, strict=True))
        for weights in weight_settings:
            name = _name(args.variant, thresholds, weights)
            overrides = [*args.overrides, f"loss.thresholds={_yaml_map(thresholds)}"]
            if weights:
                overrides.append(f"loss.weights={_yaml_map(weights)}")
            results = []
            for seed in seeds:
                run = Path(args.runs) / f"{name}-seed{seed}"
                results.append(scorer.result(run, args.variant, seed, overrides))
                print(row_line(f"{name} s{seed}", results[-1]), flush=True)
            table.append((selection_score(results), thresholds, weights, results))
    table.sort(key=lambda entry: -entry[0])
    print(f"\n{args.variant} on the validation split, sorted by mean(A, B, ZS AUC):\n")
    print("| τ | w | seeds | score | " + " | ".join(SHORT) + " |")
    print("|---|---|---|---|" + "---|" * len(SHORT))
    for score, thresholds, weights, results in table:
        taus = ", ".join(f"{s}={v:g}" for s, v in thresholds.items())
        ws = ", ".join(f"{s}={v:g}" for s, v in weights.items()) or "1"
        cells = " | ".join(cell(results, m) for m in METRICS)
        print(f"| {taus} | {ws} | {len(results)} | {100 * score:.1f} | {cells} |")


if __name__ == "__main__":
    main()
