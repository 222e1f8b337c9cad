"""Images/s of ``evaluate``'s image embedding against the training loader on the same files
(issue 12, section 4).

On a prepared phantom (made here unless ``--manifest`` names one), the train split's cached
images go through, for each number of reader processes:

- ``evaluate``: :func:`~clip2clinic.evaluation.embeddings.cached_image_embeddings` (a
  DataLoader over the files, evaluation transform, fresh cache so every image is embedded);
- ``training loader``: the trainer's own DataLoader (``Trainer(config).loader``: the
  preset's augmentation, report tokens, clinical vectors, collate) for one epoch, each batch's
  pixels embedded by the same model;
- ``old evaluate``: the previous path, images read one by one in the main process then
  embedded per batch (:meth:`Clip2Clinic.embed_images`), as the in-process reference.

Same model (the embedded preset, random weights, eval mode), same batch size (the preset's),
fp32 on CPU. Ratios are against the training loader with the same number of workers; the three take
turns within each of ``--repeat`` rounds, and the fastest round counts.

Usage: python benchmarks/bench_eval_embedding.py [--studies 200] [--workers 0 2]
       [--manifest M] [--repeat 2]
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from pathlib import Path

import torch

from clip2clinic.api import Clip2Clinic
from clip2clinic.data.corpus import PreparedCorpus
from clip2clinic.data.images import load_image
from clip2clinic.data.manifest import read_manifest
from clip2clinic.data.prepare import PrepareOptions, prepare
from clip2clinic.evaluation.embeddings import EmbedSettings, cached_image_embeddings
from clip2clinic.phantom import generate_phantom
from clip2clinic.training.config import load_config, named_config
from clip2clinic.training.trainer import Trainer

#: A fresh embedding cache folder per timed call, so every image is embedded.
CACHES = itertools.count()


def make_manifest(folder: Path, studies: int) -> Path:
    generate_phantom(folder / "phantom", studies=studies, image_size=256, seed=0)
    manifest = folder / "prepared" / "manifest.parquet"
    prepare(PrepareOptions("mimic", str(folder / "phantom"), str(manifest), image_size=224,
                           workers=2))  # fmt: skip
    return manifest


def best_rates(runs: dict[str, tuple[int, object]], repeat: int) -> dict[str, float]:
    """Images/s of each ``name: (images, call)``, the fastest of ``repeat`` rounds; the calls
    take turns within a round, so a change of load hits them alike."""
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(repeat):
        for name, (_, call) in runs.items():
            start = time.perf_counter()
            call()
            best[name] = min(best[name], time.perf_counter() - start)
    return {name: runs[name][0] / seconds for name, seconds in best.items()}


def training_epoch(trainer: Trainer) -> None:
    for batch in trainer.loader:
        with torch.inference_mode():
            trainer.model.encode_image(batch.pixels)


def old_evaluate(clip: Clip2Clinic, paths: list[Path], batch_size: int) -> None:
    for start in range(0, len(paths), batch_size):
        images = [load_image(p) for p in paths[start:start + batch_size]]
        clip.embed_images(images, batch_size=batch_size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=200)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--manifest", type=Path)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        manifest = args.manifest or make_manifest(Path(tmp), args.studies)
        frame = read_manifest(manifest, split="train")
        paths = PreparedCorpus(manifest).image_paths(frame)
        print(f"{len(paths)} train images of {manifest}; torch threads "
              f"{torch.get_num_threads()}")
        for workers in args.workers:
            measure(manifest, paths, workers, Path(tmp), args.repeat)


def measure(manifest: Path, paths: list[Path], workers: int, tmp: Path, repeat: int) -> None:
    """Print the three rates with ``workers`` reader processes."""
    config = load_config(
        [named_config("preset", "embedded"), named_config("variant", "baseline")],
        [f"data.manifest={manifest}", f"out={tmp}/run{workers}", "train.progress=false",
         f"data.num_workers={workers}"],
    )  # fmt: skip
    trainer = Trainer(config)
    clip = Clip2Clinic(trainer.model)  # eval mode, the same weights
    batch = config.data.batch_size
    settings = EmbedSettings(batch_size=batch, workers=workers)
    runs = {
        "training loader": (len(trainer.dataset), lambda: training_epoch(trainer)),
        "evaluate": (len(paths), lambda: cached_image_embeddings(
            clip, paths, tmp / f"cache{next(CACHES)}", settings)),
    }  # fmt: skip
    if workers == 0:
        runs["old evaluate"] = (len(paths), lambda: old_evaluate(clip, paths, batch))
    rates = best_rates(runs, repeat)
    reference = rates["training loader"]
    for name, rate in rates.items():
        print(f"workers {workers}, batch {batch}: {name:<16} {rate:7.1f} images/s "
              f"({rate / reference:.2f} x training loader)")


if __name__ == "__main__":
    main()
