"""Does the paper's ablation shape show on the phantom? Train variants x seeds with the embedded
preset and score them on the VALIDATION split (never test) with ``clip2clinic evaluate``.

    .venv/bin/python benchmarks/ablation_effects.py --manifest M --runs DIR \
        --variants baseline,n,dt_c,n_dt_c,n_g_dtcg --seeds 0,1 [--set key=value ...]

Prints one row per (variant, seed) with CXR-Align A (evaluation-pool negations), B, the
zero-shot mean AUC, retrieval top-5 and normal detection, then
a table of the mean over seeds ± their standard deviation [mean of the seeds' 95% bootstrap
bounds]. Finished runs are not trained or scored again (same --runs and --tag), so the script
can be re-run to add seeds or variants.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from clip2clinic.evaluation.evaluate import Options, evaluate, parse_data
from clip2clinic.training.trainer import train_variant

METRICS = ("cxr_align_a", "cxr_align_b", "zeroshot_mean_auc", "retrieval_top5",
           "normal_detection_acc")
SHORT = ("A", "B", "ZS AUC", "R@5", "NCD")
TASKS = ("cxr_align", "retrieval", "normal_detection", "zeroshot")


class Scorer:
    """Train-if-needed and score runs on one split of one manifest."""

    def __init__(self, manifest: str, split: str = "validate"):
        self.data = parse_data([f"phantom={manifest}"])
        self.manifest, self.options = manifest, Options(split=split)

    def result(self, run: Path, variant: str, seed: int, overrides: Sequence[str]) -> dict:
        """The run's scores (cached in ``run/scores_<split>.json``), training it first."""
        scores = run / f"scores_{self.options.split}.json"
        if not scores.is_file():
            started = time.perf_counter()
            train_variant(self.manifest, run, variant, seed, overrides, progress=False)
            trained = time.perf_counter() - started
            record = evaluate(run, self.data, TASKS, out=run / f"evaluation_{self.options.split}",
                              options=self.options, progress=False,
                              cache_dir=run.parent / "embeddings")  # fmt: skip
            scores.write_text(json.dumps({"train_s": trained, **record["metrics"]}))
        return json.loads(scores.read_text())


def row_line(name: str, result: dict) -> str:
    """One run's metrics on one line, in percent."""
    cells = " ".join(f"{short}={100 * result[m]['value']:.1f}"
                     for m, short in zip(METRICS, SHORT, strict=True))
    return f"{name:<28} {cells}  (train {result['train_s']:.0f} s)"


def cell(results: Sequence[dict], metric: str) -> str:
    """Mean over seeds ± sd [mean bootstrap bounds], in percent."""
    values = np.array([r[metric]["value"] for r in results])
    low = np.mean([r[metric]["low"] for r in results])
    high = np.mean([r[metric]["high"] for r in results])
    spread = f" ±{100 * values.std(ddof=1):.1f}" if len(values) > 1 else ""
    return f"{100 * values.mean():.1f}{spread} [{100 * low:.0f}, {100 * high:.0f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--runs", required=True, help="folder of the run directories")
    parser.add_argument("--variants", default="baseline,n,dt_c,n_dt_c,n_g_dtcg")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--split", default="validate")
    parser.add_argument("--set", action="append", default=[], dest="overrides",
                        help="config override for every run, e.g. train.epochs=6")
    parser.add_argument("--tag", default="", help="suffix of the run folders (use --tag=X)")
    args = parser.parse_args()
    variants = args.variants.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    scorer = Scorer(args.manifest, args.split)
    results: dict[str, list[dict]] = {}
    for variant in variants:
        for seed in seeds:
            run = Path(args.runs) / f"{variant}{args.tag}-seed{seed}"
            result = scorer.result(run, variant, seed, args.overrides)
            results.setdefault(variant, []).append(result)
            print(row_line(f"{variant} s{seed}", result), flush=True)
    print("\n| variant | seeds | " + " | ".join(SHORT) + " |")
    print("|---|---|" + "---|" * len(SHORT))
    for variant, group in results.items():
        cells = " | ".join(cell(group, metric) for metric in METRICS)
        print(f"| {variant} | {len(group)} | {cells} |")
    n = results[variants[0]][0]["cxr_align_a"]["n"]
    print(f"\n{args.split}: {n} abnormal images (Task A); mean over seeds ±sd "
          "[mean of the seeds' 95% bootstrap bounds]")


if __name__ == "__main__":
    main()
