"""Training-step time of every variant relative to baseline, and the loss's share of a step.

Embedded preset (small Swin from scratch at 128 px, text head over cached frozen MiniLM token
features), CPU, the preset's batch of 64, on a prepared phantom (made here unless
``--manifest`` names one with at least 64 training rows). Each variant gets its own
:class:`clip2clinic.training.trainer.Trainer`; one real batch per variant is reused, and the
timed unit is ``Trainer._train_step``: forward, loss, backward, gradient clipping, AdamW and
the schedule step. Variants are timed round-robin, one step each per round, so a change in
machine load hits all of them alike; medians over ``--steps`` rounds after 2 warm-up rounds.

The loss column times the loss alone (forward + backward) on the same embeddings detached as
leaves; "loss % of step" compares it with the full step (the target is <= 5% for the full
model at batch 64). "batch ms" is the time the DataLoader takes to produce one batch (image
decoding, augmentation, cache reads, collation) in the main process.

    .venv/bin/python benchmarks/bench_train_step.py [--steps 10] [--manifest M] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from clip2clinic.configs import named_config
from clip2clinic.data.prepare import PrepareOptions, prepare
from clip2clinic.phantom import generate_phantom
from clip2clinic.training.config import load_config
from clip2clinic.training.trainer import Trainer

VARIANTS = ("baseline", "dt", "dt_c", "n", "n_dt_c", "g", "g_dtcg", "n_g_dtcg", "softclip")


def make_manifest(folder: Path, studies: int) -> Path:
    generate_phantom(folder / "phantom", studies=studies, image_size=160, seed=0)
    manifest = folder / "prepared" / "manifest.parquet"
    prepare(PrepareOptions("mimic", str(folder / "phantom"), str(manifest), image_size=144,
                           workers=2))  # fmt: skip
    return manifest


def build(variant: str, manifest: Path, out: Path) -> tuple[Trainer, object]:
    config = load_config(
        [named_config("preset", "embedded"), named_config("variant", variant)],
        [f"data.manifest={manifest}", f"out={out / variant}", "train.progress=false"],
    )
    trainer = Trainer(config)
    trainer.model.train()
    started = time.perf_counter()
    batch = next(iter(trainer.loader))
    trainer.batch_ms = (time.perf_counter() - started) * 1000
    return trainer, batch


def timed(function) -> float:
    started = time.perf_counter()
    function()
    return (time.perf_counter() - started) * 1000


def loss_only(trainer: Trainer, batch) -> float:
    """ms of the loss forward + backward on leaf copies of this batch's embeddings."""
    with torch.no_grad():
        embeddings = trainer.model(pixels=batch.pixels, text=batch.text,
                                   attention_mask=batch.text_mask, graphs=batch.graphs)
    leaves = {name: value.detach().requires_grad_(True) for name, value in embeddings.items()}
    temperature = trainer.unwrapped.temperature
    return timed(lambda: trainer.objective(leaves, batch, temperature).backward())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--manifest", type=Path)
    parser.add_argument("--studies", type=int, default=100, help="phantom size when made here")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        manifest = args.manifest or make_manifest(tmp, args.studies)
        runs = {variant: build(variant, manifest, tmp / "runs") for variant in VARIANTS}
        step_ms = {variant: [] for variant in VARIANTS}
        loss_ms = {variant: [] for variant in VARIANTS}
        for round_number in range(args.steps + 2):
            for variant, (trainer, batch) in runs.items():
                step = timed(lambda trainer=trainer, batch=batch: trainer._train_step(batch))
                loss = loss_only(trainer, batch)
                if round_number >= 2:
                    step_ms[variant].append(step)
                    loss_ms[variant].append(loss)
    base = statistics.median(step_ms["baseline"])
    batch_size = runs["baseline"][1].size
    print(f"embedded preset, CPU, batch {batch_size}, torch threads {torch.get_num_threads()}, "
          f"median of {args.steps} rounds")
    print(f"{'variant':<10} {'step ms':>9} {'x baseline':>11} {'img/s':>7} {'loss ms':>8} "
          f"{'loss % step':>12} {'batch ms':>9}")
    for variant in VARIANTS:
        step, loss = statistics.median(step_ms[variant]), statistics.median(loss_ms[variant])
        print(f"{variant:<10} {step:9.1f} {step / base:11.2f} {batch_size / step * 1000:7.1f} "
              f"{loss:8.2f} {100 * loss / step:11.2f}% {runs[variant][0].batch_ms:9.1f}")


if __name__ == "__main__":
    main()
