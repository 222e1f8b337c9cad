"""Peak resident memory of ``prepare`` and of the training data loader as the corpus grows.

For each ``--studies`` size, a phantom corpus (small images, ``--image-size``) is generated once
into ``--work`` (reused by later runs), then, each in a fresh process (so one size's peak never
carries into the next):

- prepare: ``clip2clinic prepare mimic`` with one worker (the stages run in that process),
  without frozen text features (their tensor is T x L x H by design, see docs/prepare.md);
- loader: the n_g_dtcg training dataset (hard negatives and graphs) with its batch sampler and
  collate, one full epoch at batch 64 through a DataLoader without workers.

Prints the peak RSS (``getrusage`` ``ru_maxrss``) of each and its ratio to the smallest size's
(target: within 1.3x from 1k to 16k studies).

    PYTHONPATH=src nice .venv/bin/python benchmarks/bench_memory.py --work /tmp/c2c_memory \\
        [--studies 1000 4000 16000]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path


def peak_mib() -> float:
    """This process's peak resident memory (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_prepare(root: Path, out: Path, image_size: int) -> None:
    from clip2clinic.data.prepare import PrepareOptions, prepare

    prepare(PrepareOptions("mimic", str(root), str(out), image_size=image_size,
                           text_features=False, workers=1))  # fmt: skip


def run_loader(manifest: Path, image_size: int) -> None:
    import torch
    from torch.utils.data import DataLoader

    from clip2clinic.data.transforms import GREY
    from clip2clinic.training.data import (
        Collate,
        EpochBatchSampler,
        ManifestDataset,
        load_graphs,
        open_text_cache,
    )

    dataset = ManifestDataset(manifest, open_text_cache(manifest, "full"), image_size, GREY,
                              augment={}, hard_negatives=True, graphs=True)  # fmt: skip
    sampler = EpochBatchSampler(len(dataset), 64, seed=0)
    loader = DataLoader(dataset, batch_sampler=sampler,
                        collate_fn=Collate(load_graphs(manifest)),
                        generator=torch.Generator().manual_seed(0))  # fmt: skip
    for _ in loader:
        pass


def child(args: argparse.Namespace) -> int:
    """One measurement in this (fresh) process; prints its peak as JSON."""
    started = time.perf_counter()
    if args.child == "prepare":
        run_prepare(args.root, args.out, args.image_size)
    else:
        run_loader(args.out, args.image_size)
    print(json.dumps({"peak_mib": peak_mib(), "seconds": time.perf_counter() - started}))
    return 0


def measure(kind: str, root: Path, out: Path, image_size: int) -> dict:
    command = [sys.executable, __file__, "--child", kind, "--root", str(root), "--out", str(out),
               "--image-size", str(image_size)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode:
        raise SystemExit(f"{kind} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/c2c_memory"))
    parser.add_argument("--studies", type=int, nargs="+", default=[1000, 4000, 16000])
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--child", choices=["prepare", "loader"], help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args)

    from clip2clinic.phantom import generate_phantom

    rows = []
    for studies in args.studies:
        root = args.work / f"phantom-{studies}"
        started = time.perf_counter()
        generate_phantom(root, studies=studies, image_size=args.image_size, seed=1,
                         progress=False)  # fmt: skip
        generated = time.perf_counter() - started
        out = args.work / f"prepared-{studies}" / "manifest.parquet"
        shutil.rmtree(out.parent, ignore_errors=True)  # a fresh prepare, no reused chunks
        prepare = measure("prepare", root, out, args.image_size)
        loader = measure("loader", root, out, args.image_size)
        rows.append((studies, prepare, loader))
        print(f"{studies:6d} studies (phantom {generated:.0f} s): prepare peak "
              f"{prepare['peak_mib']:.0f} MiB ({prepare['seconds']:.0f} s), loader peak "
              f"{loader['peak_mib']:.0f} MiB ({loader['seconds']:.0f} s)", flush=True)
    base = rows[0]
    for studies, prepare, loader in rows:
        print(f"{studies:6d} studies: prepare x{prepare['peak_mib'] / base[1]['peak_mib']:.2f}, "
              f"loader x{loader['peak_mib'] / base[2]['peak_mib']:.2f} of {base[0]} studies")
    return 0


if __name__ == "__main__":
    sys.exit(main())
