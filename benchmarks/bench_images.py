"""Image pipeline throughput relative to bare Pillow decoding of the same files.

Measures, over the real PNGs of ../shared/data/images/hannover/png (or --images DIR):

- baseline: ``Image.open(path).load()`` (bare PIL decode);
- no cache: load_image + resize to the cache size + eval transform to a normalised tensor;
- cache: load_image of the cached (shorter side 256) PNG + eval transform (the cache is built
  once beforehand, untimed, as ``prepare`` builds it).

Each variant makes ``--repeats`` passes over all files, interleaved; the best pass counts.
Prints images/s and the ratio of each variant to the baseline (target >= 0.8 with the cache).

    .venv/bin/python benchmarks/bench_images.py
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from clip2clinic.data.images import cache_resized, load_image, resize_shorter_side
from clip2clinic.data.transforms import EvalTransform

DEFAULT_IMAGES = Path(__file__).resolve().parents[2] / "shared/data/images/hannover/png"


def rate(run: Callable[[Path], object], files: list[Path]) -> float:
    """Images per second of one full pass over ``files``."""
    start = time.perf_counter()
    for path in files:
        run(path)
    return len(files) / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=Path, default=DEFAULT_IMAGES)
    parser.add_argument("--size", type=int, default=224, help="eval transform output size")
    parser.add_argument("--cache-side", type=int, default=256, help="cached shorter side")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    files = sorted(args.images.glob("*.png"))
    if not files:
        print(f"no PNG files in {args.images}", file=sys.stderr)
        return 2
    transform = EvalTransform(args.size)

    def bare_decode(path: Path) -> None:
        with Image.open(path) as image:
            image.load()

    def no_cache(path: Path) -> None:
        transform(resize_shorter_side(load_image(path), args.cache_side))

    with tempfile.TemporaryDirectory() as tmp:
        cached = {path: Path(tmp) / path.name for path in files}
        for source, target in cached.items():
            cache_resized(source, target, args.cache_side)

        def with_cache(path: Path) -> None:
            transform(load_image(cached[path]))

        runs = {
            "bare PIL decode": bare_decode,
            "pipeline, no cache": no_cache,
            "pipeline, cache": with_cache,
        }
        rates = dict.fromkeys(runs, 0.0)
        for _ in range(args.repeats):  # interleave so that machine noise hits all variants
            for name, run in runs.items():
                rates[name] = max(rates[name], rate(run, files))

    sizes = {Image.open(p).size for p in files[:20]}
    print(f"{len(files)} images from {args.images} (e.g. sizes {sorted(sizes)[:3]})")
    print(f"eval transform {args.size}px, cache shorter side {args.cache_side}px")
    baseline = rates["bare PIL decode"]
    for name, images_per_s in rates.items():
        print(f"{name:20s} {images_per_s:8.1f} images/s   ratio {images_per_s / baseline:5.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
