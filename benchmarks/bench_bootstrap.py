"""Seconds for the zero-shot bootstrap at a real test set's size (issue 12, section 4).

On synthetic labels and scores (25,000 images x 14 classes, two images per patient, 10% of
labels unknown): the zero-shot mean-AUC interval (1,000 resamples by patient, fixed class set)
vectorised as ``evaluate`` runs it, against the old style (one loop iteration and one sort per
class per resample) timed on fewer resamples in the same process; both are run on the same
first resamples and must give the same interval. Then the whole zero-shot task's intervals
(14 per-class AUCs, the mean AUC and the mean accuracy, 1,000 resamples each).

Usage: python benchmarks/bench_bootstrap.py [--images 25000] [--classes 14] [--n-boot 1000]
       [--loop-boot 20]
"""

from __future__ import annotations

import argparse
import time
import warnings
import zlib

import numpy as np

from clip2clinic.evaluation.classwise import auc_strata, class_aucs, mean_auc_estimate
from clip2clinic.evaluation.results import bootstrap
from clip2clinic.evaluation.zeroshot import zero_shot_binary
from clip2clinic.observations import CHEXPERT_CLASSES


def cohort(n: int, classes: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = (rng.random((n, classes)) < 0.2).astype(float)
    labels[rng.random((n, classes)) < 0.1] = np.nan
    scores = rng.random((n, classes)) + 0.3 * np.nan_to_num(labels)
    patients = np.arange(n) // 2
    return labels, scores, patients


def loop_mean_auc(labels, scores, patients, n_boot, seed):
    """The old style: the fixed-class mean AUC recomputed on the resampled rows, per resample."""
    fixed = ~np.isnan(class_aucs(labels, scores))

    def fixed_mean(y, s):
        aucs = class_aucs(y[:, fixed], s[:, fixed])
        return float(aucs.mean()) if not np.isnan(aucs).any() else np.nan

    strata = auc_strata(labels, patients, fixed)
    return bootstrap(fixed_mean, [labels, scores], n_boot, seed, groups=patients, strata=strata)


def timed(call):
    start = time.perf_counter()
    result = call()
    return result, time.perf_counter() - start


def text_embedder(dim: int):
    def embed(texts):
        rows = [np.random.default_rng(zlib.crc32(t.encode())).normal(size=dim) for t in texts]
        rows = np.stack(rows)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)

    return embed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=25000)
    parser.add_argument("--classes", type=int, default=14)
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--loop-boot", type=int, default=20,
                        help="resamples of the old-style loop (extrapolated per resample)")
    args = parser.parse_args()
    labels, scores, patients = cohort(args.images, args.classes)
    print(f"{args.images} images x {args.classes} classes, {len(np.unique(patients))} patients")

    loop, loop_s = timed(lambda: loop_mean_auc(labels, scores, patients, args.loop_boot, 0))
    same, same_s = timed(lambda: mean_auc_estimate(labels, scores, 0, args.loop_boot, patients))
    agree = (same.low, same.high) == (loop.low, loop.high)
    print(f"old-style loop, {args.loop_boot} resamples: {loop_s:.2f} s "
          f"({loop_s / args.loop_boot * 1e3:.0f} ms per resample; vectorised {same_s:.2f} s); "
          f"same interval: {agree} [{loop.low:.6f}, {loop.high:.6f}]")
    fast, fast_s = timed(lambda: mean_auc_estimate(labels, scores, 0, args.n_boot, patients))
    projected = loop_s / args.loop_boot * args.n_boot
    print(f"zero-shot mean AUC, {args.n_boot} resamples: vectorised {fast_s:.1f} s; old-style "
          f"loop projected {projected:.0f} s; ratio {projected / fast_s:.1f}x "
          f"(value {fast.value:.4f} [{fast.low:.4f}, {fast.high:.4f}])")

    classes = list(CHEXPERT_CLASSES[: args.classes])
    images = np.random.default_rng(1).normal(size=(args.images, 64))
    images /= np.linalg.norm(images, axis=1, keepdims=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, task_s = timed(lambda: zero_shot_binary(images, labels, classes, text_embedder(64),
                                                   "bench", n_boot=args.n_boot, groups=patients))
    print(f"zero_shot_binary, every interval ({args.classes} class AUCs, mean AUC, mean "
          f"accuracy), {args.n_boot} resamples: {task_s:.1f} s")


if __name__ == "__main__":
    main()
