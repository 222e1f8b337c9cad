"""Prepare's image stage on MIMIC-size JPEGs, per core, against the code it replaced.

Writes ``--count`` MIMIC-CXR-JPG-size files (the real Hannover radiographs of
../shared/data/images/hannover/png upscaled to 2,544 x 3,056, saved as JPEG quality 95), then
times each variant per file, interleaved, ``--repeats`` passes (the median counts):

- prepare: :func:`clip2clinic.data.prepare.image_stage.cache_images` (JPEG decoded in the DCT
  domain at a reduced scale, antialiased resize, PNG written): the stage as ``prepare`` runs it
  on each core;
- before: ``load_image`` (full decode) + ``resize_shorter_side`` + the PNG written through
  ``atomic_path`` (temporary file created, reopened, chmodded, renamed), the stage before the
  DCT-domain decode and the one-open cache writer (``write_cache_file``);
- bare PIL: ``Image.open(path).convert("L").resize(target)``, no PNG written;
- draft margin 2: prepare's decode keeping twice the target per side (the 1/4 DCT scale here)
  instead of the default 1/8, to show what the last factor of two costs and buys;
- floor: the 1/8-scale JPEG decode alone (entropy decoding is not reduced by ``draft``, so
  this bounds any per-core speed-up of a Pillow-based stage).

Prints images/s per core, the ratio prepare/before (target >= 3), the mean absolute difference
between the two caches (grey levels), and the projected wall time of MIMIC-CXR-JPG's 377,110
images on 16 cores.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_prepare_images.py [--count 24]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from clip2clinic.data.images import (
    load_image,
    load_resized,
    png_bytes,
    resize_shorter_side,
    save_grey_png,
    shorter_side_size,
)
from clip2clinic.data.prepare.image_stage import cache_images, cache_name
from clip2clinic.io import atomic_path

DEFAULT_IMAGES = Path(__file__).resolve().parents[2] / "shared/data/images/hannover/png"
MIMIC_SIZE = (2544, 3056)  # width, height
MIMIC_IMAGES = 377_110


def write_mimic_size(sources: list[Path], folder: Path) -> list[Path]:
    """The ``sources`` upscaled to MIMIC size and saved as quality-95 JPEGs in ``folder``."""
    files = []
    for source in sources:
        with Image.open(source) as image:
            big = image.convert("L").resize(MIMIC_SIZE, Image.Resampling.BICUBIC)
        target = folder / f"{source.stem}.jpg"
        big.save(target, quality=95)
        files.append(target)
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=Path, default=DEFAULT_IMAGES)
    parser.add_argument("--count", type=int, default=24, help="MIMIC-size JPEGs to write")
    parser.add_argument("--side", type=int, default=256, help="cached shorter side")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    sources = sorted(args.images.glob("*.png"))[: args.count]
    if not sources:
        print(f"no PNG files in {args.images}", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        files = write_mimic_size(sources, tmp)
        target = shorter_side_size(MIMIC_SIZE[1], MIMIC_SIZE[0], args.side)

        def prepare_stage(path: Path) -> None:
            (tmp / "new" / cache_name("b", path.stem)).unlink(missing_ok=True)  # no reuse
            cache_images(pd.DataFrame({"image_id": [path.stem], "path": [str(path)]}),
                         tmp / "new", "b", args.side)

        def before(path: Path) -> None:
            image = resize_shorter_side(load_image(path), args.side)
            with atomic_path(tmp / "old" / cache_name("b", path.stem), cache_file=True) as out:
                out.write_bytes(png_bytes(image))  # the file writer of the stage before

        def bare(path: Path) -> None:
            with Image.open(path) as image:
                image.convert("L").resize((target[1], target[0]), Image.Resampling.BILINEAR)

        def margin_2(path: Path) -> None:
            save_grey_png(load_resized(path, args.side, draft_margin=2),
                          tmp / "margin2" / cache_name("b", path.stem))

        def decode_floor(path: Path) -> None:
            with Image.open(path) as image:
                image.draft("L", (target[1], target[0]))
                image.load()

        runs: dict[str, Callable[[Path], None]] = {
            "prepare image stage": prepare_stage, "before (full decode)": before,
            "bare PIL open/convert/resize": bare, "draft margin 2 (1/4 scale)": margin_2,
            "floor: 1/8 DCT decode only": decode_floor,
        }  # fmt: skip
        seconds: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.repeats):  # interleaved per file: machine noise hits all alike
            for path in files:
                for name, run in runs.items():
                    started = time.perf_counter()
                    run(path)
                    seconds[name].append(time.perf_counter() - started)
        differences = {
            folder: [np.abs(load_image(new).astype(np.int16)
                            - load_image(tmp / "old" / new.relative_to(tmp / folder))).mean()
                     for new in sorted((tmp / folder).rglob("*.png"))]
            for folder in ("new", "margin2")
        }  # fmt: skip

    rates = {name: 1 / statistics.median(times) for name, times in seconds.items()}
    print(f"{len(files)} JPEGs {MIMIC_SIZE[0]}x{MIMIC_SIZE[1]} (quality 95) from {args.images}, "
          f"cached at a {args.side} px shorter side; one core, median of {args.repeats} x "
          f"{len(files)} interleaved timings")
    for name, rate in rates.items():
        print(f"{name:30s} {rate:7.1f} images/s per core   "
              f"x{rate / rates['before (full decode)']:.2f} of before")
    for folder, name in (("new", "prepare"), ("margin2", "draft margin 2")):
        print(f"mean absolute difference, {name} vs before cache: "
              f"{np.mean(differences[folder]):.3f} grey levels "
              f"(max per image {np.max(differences[folder]):.3f})")
    for name in ("prepare image stage", "before (full decode)"):
        hours = MIMIC_IMAGES / (16 * rates[name]) / 3600
        print(f"projected {MIMIC_IMAGES:,} images on 16 cores, {name}: {hours:.2f} h")
    return 0


if __name__ == "__main__":
    sys.exit(main())
