"""Training-loader throughput per worker: image-cache shards vs the per-file cache vs bare
decode, and the workers needed to feed the paper preset's GPU goal (1,700 samples/s).

A phantom corpus (``--studies`` studies, ``--image-size`` px, so the cache holds 256 px images
as ``prepare`` makes them from MIMIC) is prepared twice into ``--work``: once with the per-file
cache, once with ``--shards``. Then, in one process, without DataLoader workers (so the rate
is what one worker delivers), interleaved, best of ``--repeats`` passes:

- shards: :class:`ShardStream` items (read shard by shard, shuffle buffer, decode, the training
  augmentation at 224 px, cached token ids, labels);
- per-file: :class:`ManifestDataset` items in a random order (one PNG opened per item);
- bare decode: ``Image.open(png).load()`` of the same cached files.

    PYTHONPATH=src nice .venv/bin/python benchmarks/bench_loader.py [--studies 300]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from clip2clinic.data.corpus import PreparedCorpus
from clip2clinic.data.prepare import PrepareOptions, prepare
from clip2clinic.data.transforms import IMAGENET
from clip2clinic.phantom import generate_phantom
from clip2clinic.training.data import ManifestDataset, open_text_cache
from clip2clinic.training.shard_loader import ShardStream

GOAL = 1700  # samples/s: the paper preset's GPU goal (docs/train.md)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/c2c_loader"))
    parser.add_argument("--studies", type=int, default=300)
    parser.add_argument("--image-size", type=int, default=320, help="phantom image size")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    root = args.work / "phantom"
    generate_phantom(root, studies=args.studies, image_size=args.image_size, seed=2,
                     progress=False)  # fmt: skip
    manifests = {}
    for name, shard_size in (("files", None), ("shards", 100)):
        manifests[name] = args.work / name / "manifest.parquet"
        prepare(PrepareOptions("mimic", str(root), str(manifests[name]), image_size=256,
                               shard_size=shard_size, text_features=False, workers=2))

    def dataset(name: str) -> ManifestDataset:
        return ManifestDataset(manifests[name], open_text_cache(manifests[name], "full"), 224,
                               IMAGENET, augment={}, seed=0)  # fmt: skip

    shards, files = dataset("shards"), dataset("files")
    paths = [PreparedCorpus(manifests["files"]).cache / p for p in files.image_paths]
    order = np.random.default_rng(0).permutation(len(files))

    def run_shards() -> int:
        return sum(1 for _ in ShardStream(shards, seed=0))

    def run_files() -> int:
        return sum(1 for i in order if files[int(i)] is not None)

    def run_bare() -> int:
        for i in order:
            with Image.open(paths[i]) as image:
                image.load()
        return len(order)

    runs = {"shards (ShardStream)": run_shards, "per-file cache (ManifestDataset)": run_files,
            "bare PNG decode": run_bare}  # fmt: skip
    rates = dict.fromkeys(runs, 0.0)
    for _ in range(args.repeats):
        for name, run in runs.items():
            started = time.perf_counter()
            count = run()
            rates[name] = max(rates[name], count / (time.perf_counter() - started))

    with Image.open(paths[0]) as image:
        size = image.size
    print(f"{len(files)} training images (cached {size[0]}x{size[1]} PNG), augmentation to "
          f"224 px, ImageNet normalisation; one worker, best of {args.repeats}")
    for name, rate in rates.items():
        workers = math.ceil(GOAL / rate)
        print(f"{name:34s} {rate:7.1f} samples/s per worker   {workers:3d} workers for "
              f"{GOAL} samples/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
