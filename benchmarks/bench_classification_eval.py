"""Time of the classification evaluations at realistic sizes (synthetic embeddings).

Prints: the rank AUC against scikit-learn's roc_auc_score (same value, time per call), then the
wall time of zero-shot binary classification (14 classes, 1,000 bootstrap resamples per
interval), CheXpert 5x200 and the FT10/FT100 linear probes. Embeddings carry a weak class
signal so that every class has a defined AUC; the numbers measure cost, not quality.

Usage: python benchmarks/bench_classification_eval.py [--images 3000] [--dim 512]
       [--train 20000] [--classes 14]
"""

from __future__ import annotations

import argparse
import time
import zlib

import numpy as np
from sklearn.metrics import roc_auc_score

from clip2clinic.evaluation.classwise import rank_auc
from clip2clinic.evaluation.probes import ProbeSplit, linear_probe
from clip2clinic.evaluation.zeroshot import (
    five_by_200_prompts,
    zero_shot_5x200,
    zero_shot_binary,
)
from clip2clinic.observations import CHEXPERT_CLASSES


def unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=-1, keepdims=True)


def text_embedder(dim: int):
    """A stand-in text tower: each prompt gets a fixed random unit vector (seeded by its text)."""

    def embed(texts):
        return np.stack(
            [unit(np.random.default_rng(zlib.crc32(t.encode())).normal(size=dim)) for t in texts]
        )

    return embed


def split(n: int, classes: int, dim: int, seed: int, start: int) -> ProbeSplit:
    rng = np.random.default_rng(seed)
    labels = (rng.random((n, classes)) < 0.2).astype(float)
    labels[rng.random((n, classes)) < 0.1] = np.nan
    features = rng.normal(size=(n, dim))
    features[:, :classes] += 2.0 * np.nan_to_num(labels)
    groups = np.arange(start, start + n) // 2  # two images per patient
    return ProbeSplit(unit(features), labels, groups)


def timed(label: str, call):
    start = time.perf_counter()
    result = call()
    print(f"{label}: {time.perf_counter() - start:.1f} s")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=3000, help="test images")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--train", type=int, default=20000, help="probe training images")
    parser.add_argument("--classes", type=int, default=14)
    args = parser.parse_args()
    rng = np.random.default_rng(0)

    y = rng.integers(0, 2, args.images)
    s = rng.normal(size=args.images) + y
    for name, fn in (("rank_auc", rank_auc), ("roc_auc_score", roc_auc_score)):
        start = time.perf_counter()
        for _ in range(200):
            value = fn(y, s)
        per_call = (time.perf_counter() - start) / 200 * 1e3
        print(f"{name} on {args.images} cases: {value:.6f}, {per_call:.2f} ms per call")

    classes = list(CHEXPERT_CLASSES[: args.classes])
    embed = text_embedder(args.dim)
    test = split(args.images, len(classes), args.dim, 1, 0)
    timed(
        f"zero_shot_binary, {args.images} images x {len(classes)} classes",
        lambda: zero_shot_binary(test.embeddings, test.labels, classes, embed, "bench"),
    )
    truth = np.repeat(np.arange(5), 200)
    images = unit(rng.normal(size=(1000, args.dim)))
    prompts = sum(len(p) for p in five_by_200_prompts().values())
    label = f"zero_shot_5x200, 1000 images, {prompts} prompts"
    timed(label, lambda: zero_shot_5x200(images, truth, embed))

    train = split(args.train, len(classes), args.dim, 2, 10**7)
    validate = split(args.images // 2, len(classes), args.dim, 3, 2 * 10**7)
    result = timed(
        f"linear_probe FT10 (3 seeds) + FT100, train {args.train}, {len(classes)} classes",
        lambda: linear_probe(train, validate, test, classes, "bench"),
    )
    for name, estimate in result.metrics.items():
        print(f"  {name} = {estimate.value:.3f} [{estimate.low:.3f}, {estimate.high:.3f}]")


if __name__ == "__main__":
    main()
