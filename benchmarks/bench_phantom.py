"""Throughput of the phantom generator (``clip2clinic phantom``) in one process.

Writes a fresh corpus of --studies studies at --image-size pixels (default 224) into a temporary
folder, with one worker, and prints studies per second (the target is >= 50) and images per
second, end to end: truth, reports, drawing, JPEG encoding, atomic writes, the three tables and
the truth file. Wall and CPU time are both printed: on a shared machine the CPU rate is the
fairer one.

Usage: python benchmarks/bench_phantom.py [--studies 500] [--image-size 224] [--repeat 3]
                                         [--tmp DIR]  (where the corpora are written)
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from clip2clinic.phantom import generate_phantom


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=500)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--repeat", type=int, default=3, help="fresh corpora, best one kept")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tmp", type=Path, default=None,
                        help="folder for the corpora (default: the system's temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        generate_phantom(Path(tmp) / "warm", 5, args.image_size, progress=False)
    best = None
    for run in range(args.repeat):
        with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
            start, cpu = time.perf_counter(), time.process_time()
            summary = generate_phantom(Path(tmp) / "phantom", args.studies, args.image_size,
                                       seed=args.seed + run, progress=False)
            wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        rate = args.studies / wall
        print(f"run {run}: {args.studies} studies, {summary['images']} images at "
              f"{args.image_size} px: {wall:.2f} s wall ({rate:.1f} studies/s, "
              f"{summary['images'] / wall:.1f} images/s), {cpu:.2f} s CPU "
              f"({args.studies / cpu:.1f} studies/s)")
        best = max(best or 0.0, rate)
    print(f"best: {best:.1f} studies/s (target >= 50)")


if __name__ == "__main__":
    main()
