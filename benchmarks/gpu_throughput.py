"""GPU throughput of the paper preset: images/s, peak memory and model FLOPs utilisation (MFU).

Swin-Tiny (transformers ``SwinConfig()`` defaults: 224 px, patch 4, window 7, depths 2-2-6-2)
and BERT-base (``BertConfig()`` defaults with Bio_ClinicalBERT's 28,996-token vocabulary), both
fully trained, with random weights built from their configs: nothing is downloaded. bf16
autocast (``--precision fp32`` to compare), AdamW, the trainer's own loss glue
(:class:`clip2clinic.training.objective.Objective`). Variants baseline and n_g_dtcg, at batch 64
and at the largest batch that fits (doubling from 64 until out of memory or ``--max-batch``).

Inputs, both reported:

- synthetic: 224 px images, 128-token reports (+ 128-token hard negatives for n_g_dtcg),
  random report graphs of 4-12 entities, already on the device (the model alone);
- real loader (``--manifest``, a prepared corpus): the trainer's dataset, augmentation and
  collate through a DataLoader with ``--workers`` processes; each step waits for its batch, so
  images/s includes the input pipeline (token ids from that corpus's tokenizer, graph node
  features of its width).

MFU = (forward + backward FLOPs of one step, counted by ``torch.utils.flop_counter``) /
(step time x the device's dense bf16 peak, :data:`PEAK_TFLOPS` by device name, or
``--peak-tflops``). Peak memory: ``torch.cuda.max_memory_allocated`` on a GPU, the process's
peak RSS on the CPU. ``--write-benchmarks [FILE]`` appends the table to BENCHMARKS.md.

    .venv/bin/python benchmarks/gpu_throughput.py --manifest out/manifest.parquet \
        --write-benchmarks                                  (on a GPU: about 5 minutes)
    .venv/bin/python benchmarks/gpu_throughput.py --device cpu --smoke   (tiny shapes, seconds;
        run by tests/benchmarks/test_gpu_throughput.py)

Prints "no CUDA" and exits where no GPU is present (unless ``--device cpu``).
"""

from __future__ import annotations

import argparse
import random
import resource
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode
from transformers import BertConfig, SwinConfig

from clip2clinic.configs import named_config
from clip2clinic.model import (
    ClinicCLIP,
    ClinicCLIPConfig,
    GraphConfig,
    ImageTowerConfig,
    TextTowerConfig,
    graphs_to_batch,
)
from clip2clinic.reports.graph.schema import LABELS
from clip2clinic.training.config import load_config
from clip2clinic.training.data import TrainBatch
from clip2clinic.training.objective import Objective
from clip2clinic.training.trainer import parameter_groups

CLINICAL_BERT_VOCAB = 28996
#: Dense bf16 peak TFLOP/s by device-name words (all words must appear in the name).
PEAK_TFLOPS = {"H200": 989.0, "H100 PCIe": 756.0, "H100": 989.0, "A100": 312.0,
               "L40S": 362.0, "A10G": 70.0, "L4": 121.0, "RTX 4090": 165.0}  # fmt: skip
BENCHMARKS = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"


@dataclass(frozen=True)
class Shapes:
    """Model and input sizes: the paper preset, or tiny ones for a CPU smoke run."""

    image: dict
    text: dict
    tokens: int
    node_dim: int
    graph_hidden: int

    @property
    def image_size(self) -> int:
        return self.image["image_size"]


PAPER = Shapes(SwinConfig().to_dict(), BertConfig(vocab_size=CLINICAL_BERT_VOCAB).to_dict(),
               tokens=128, node_dim=768, graph_hidden=256)  # fmt: skip
SMOKE = Shapes(
    SwinConfig(image_size=32, patch_size=4, embed_dim=8, depths=[1, 1], num_heads=[1, 2],
               window_size=4).to_dict(),
    BertConfig(vocab_size=CLINICAL_BERT_VOCAB, hidden_size=16, num_hidden_layers=1,
               num_attention_heads=2, intermediate_size=32).to_dict(),
    tokens=16, node_dim=32, graph_hidden=16,
)  # fmt: skip


def paper_model(shapes: Shapes, graph: bool, device: torch.device, vocab: int | None = None,
                node_dim: int | None = None) -> ClinicCLIP:
    text = dict(shapes.text, vocab_size=max(vocab or 0, shapes.text["vocab_size"]))
    config = ClinicCLIPConfig(
        image=ImageTowerConfig(config=shapes.image),
        text=TextTowerConfig(config=text, mode="full", max_length=shapes.tokens),
        graph=GraphConfig(hidden_dim=shapes.graph_hidden, node_dim=node_dim or shapes.node_dim)
        if graph else None,
    )  # fmt: skip
    return ClinicCLIP(config, pretrained=False).to(device)


def random_graphs(count: int, vocab_size: int, rng: random.Random) -> list[dict]:
    graphs = []
    for _ in range(count):
        size = rng.randint(4, 12)
        entities = {str(i): {"tokens": f"e{rng.randrange(vocab_size)}",
                             "label": rng.choice(LABELS), "relations": []}
                    for i in range(size)}  # fmt: skip
        for i in range(size):
            if rng.random() < 0.7:
                entities[str(i)]["relations"].append(["modify", str(rng.randrange(size))])
        graphs.append({"entities": entities})
    return graphs


def synthetic_batch(shapes: Shapes, size: int, negatives: bool, graph: bool,
                    device: torch.device, node_dim: int | None = None) -> TrainBatch:
    generator = torch.Generator().manual_seed(size)
    texts = 2 * size if negatives else size
    graphs = None
    if graph:
        vocab = {f"e{i}": i for i in range(2000)}
        table = torch.randn(len(vocab), node_dim or shapes.node_dim, generator=generator)
        graphs = graphs_to_batch(random_graphs(texts, len(vocab), random.Random(size)), vocab,
                                 table)  # fmt: skip
    labels = (torch.rand(size, 14, generator=generator) < 0.2).float()
    batch = TrainBatch(
        size=size,
        pixels=torch.randn(size, 3, shapes.image_size, shapes.image_size, generator=generator),
        text=torch.randint(1000, CLINICAL_BERT_VOCAB, (texts, shapes.tokens),
                           generator=generator),
        text_mask=torch.ones(texts, shapes.tokens, dtype=torch.bool),
        clinical=labels,
        clinical_neg=labels.roll(1, dims=0) if negatives else None,
        graphs=graphs,
    )
    return batch.to(device)


class Setup:
    """A paper-preset model, its optimiser and the variant's loss, on ``device``."""

    def __init__(self, variant: str, device: torch.device, shapes: Shapes, bf16: bool,
                 checkpointing: bool, vocab: int | None = None, node_dim: int | None = None):
        self.config = load_config([named_config("preset", "paper"),
                                   named_config("variant", variant)])  # fmt: skip
        self.model = paper_model(shapes, self.config.loss.graph, device, vocab, node_dim)
        self.objective = Objective(self.config.loss)
        if checkpointing:
            self.model.gradient_checkpointing_enable()
        self.model.train()
        self.optimizer = torch.optim.AdamW(parameter_groups(self.model, self.config))
        self.device, self.shapes, self.bf16 = device, shapes, bf16
        self.node_dim = node_dim

    def autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16)

    def loss(self, batch: TrainBatch) -> torch.Tensor:
        with self.autocast():
            embeddings = self.model(pixels=batch.pixels, text=batch.text,
                                    attention_mask=batch.text_mask, graphs=batch.graphs)
            return self.objective(embeddings, batch, self.model.temperature)

    def step(self, batch: TrainBatch) -> None:
        self.loss(batch).backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def flops(self, batch: TrainBatch) -> int:
        """Forward + backward FLOPs of one step (the optimizer's are not counted)."""
        counter = FlopCounterMode(display=False)
        with counter:
            self.loss(batch).backward()
        self.optimizer.zero_grad(set_to_none=True)
        return counter.get_total_flops()


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_gib(device: torch.device) -> float:
    """Peak device memory (GPU) or the process's peak resident memory (CPU), GiB."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def timed_steps(setup: Setup, batches, steps: int) -> list[float]:
    """Seconds of each of ``steps`` steps; ``batches`` yields a batch per step (the time to
    get it counts: the real loader's input pipeline is part of the step)."""
    times = []
    for _ in range(steps):
        synchronize(setup.device)
        started = time.perf_counter()
        setup.step(next(batches).to(setup.device, non_blocking=True))
        synchronize(setup.device)
        times.append(time.perf_counter() - started)
    return times


def measure(setup: Setup, size: int, steps: int) -> dict[str, float]:
    """Median step time, images/s, peak memory and FLOPs of synthetic batch ``size``."""
    batch = synthetic_batch(setup.shapes, size, setup.config.loss.hard_negatives,
                            setup.config.loss.graph, setup.device, setup.node_dim)  # fmt: skip
    setup.step(batch)  # warm-up (allocator, kernels)
    flops = setup.flops(batch)
    reset_peak(setup.device)
    seconds = statistics.median(timed_steps(setup, iter(lambda: batch, None), steps))
    return {"input": "synthetic", "batch": size, "seconds": seconds,
            "images_per_s": size / seconds, "memory_gib": peak_gib(setup.device),
            "flops": flops}  # fmt: skip


def largest_batch(setup: Setup, start: int, limit: int, steps: int) -> dict[str, float] | None:
    """Measure batches start·2, start·4, ... up to ``limit``; the last one that fits."""
    best, size = None, start * 2
    while size <= limit:
        try:
            best = measure(setup, size, steps)
        except torch.cuda.OutOfMemoryError:
            break
        finally:
            setup.optimizer.zero_grad(set_to_none=True)
            if setup.device.type == "cuda":
                torch.cuda.empty_cache()
        size *= 2
    return best


def loader_batches(manifest: Path, setup: Setup, size: int, workers: int):
    """Endless per-step batches of the trainer's own dataset, augmentation and collate."""
    from torch.utils.data import DataLoader

    from clip2clinic.data.transforms import IMAGENET
    from clip2clinic.training.data import (
        Collate,
        EpochBatchSampler,
        ManifestDataset,
        load_graphs,
        open_text_cache,
    )

    config = setup.config
    dataset = ManifestDataset(manifest, open_text_cache(manifest, "full"),
                              setup.shapes.image_size, IMAGENET, augment=config.data.augment,
                              hard_negatives=config.loss.hard_negatives,
                              graphs=config.loss.graph)  # fmt: skip
    sampler = EpochBatchSampler(len(dataset), size, seed=0)
    nodes = load_graphs(manifest) if config.loss.graph else None
    loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=Collate(nodes),
                        num_workers=workers, pin_memory=setup.device.type == "cuda",
                        persistent_workers=workers > 0)  # fmt: skip
    epoch = 0
    while True:
        sampler.set_epoch(epoch)
        dataset.set_epoch(epoch)
        yield from loader
        epoch += 1


def measure_loader(setup: Setup, manifest: Path, size: int, steps: int,
                   workers: int) -> dict[str, float]:
    batches = loader_batches(manifest, setup, size, workers)
    first = next(batches).to(setup.device)
    setup.step(first)  # warm-up; workers start
    flops = setup.flops(first)
    reset_peak(setup.device)
    seconds = statistics.median(timed_steps(setup, batches, steps))
    return {"input": f"loader, {workers} workers", "batch": size, "seconds": seconds,
            "images_per_s": size / seconds, "memory_gib": peak_gib(setup.device),
            "flops": flops}  # fmt: skip


def manifest_sizes(manifest: Path) -> tuple[int, int]:
    """The token-id vocabulary and graph node width a prepared corpus needs of the model."""
    from safetensors import safe_open

    from clip2clinic.data.corpus import PreparedCorpus

    corpus = PreparedCorpus(manifest)
    with safe_open(str(corpus.text_cache_file("input_ids")), framework="pt") as handle:
        vocab = int(handle.get_tensor("input_ids").max()) + 1
    with safe_open(str(corpus.graph_node_features_file), framework="pt") as handle:
        node_dim = int(handle.get_slice("embeddings").get_shape()[1])
    return vocab, node_dim


def peak_tflops(device: torch.device, given: float | None) -> float | None:
    if given is not None or device.type != "cuda":
        return given
    name = torch.cuda.get_device_name(device)
    for key, value in PEAK_TFLOPS.items():
        if all(part in name for part in key.split()):
            return value
    return None


def row_text(variant: str, row: dict, peak: float | None) -> str:
    achieved = row["flops"] / row["seconds"] / 1e12
    mfu = f"{100 * achieved / peak:.1f} %" if peak else "n/a"
    return (f"| {variant} | {row['input']} | {row['batch']} | {1000 * row['seconds']:.1f} | "
            f"{row['images_per_s']:.1f} | {row['memory_gib']:.2f} | "
            f"{row['flops'] / 1e9:.4g} | {achieved:.3g} | {mfu} |")


def run(args: argparse.Namespace) -> list[str]:
    """Measure every variant and input; returns the Markdown table (also printed)."""
    device = torch.device(args.device)
    shapes = SMOKE if args.smoke else PAPER
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    peak = peak_tflops(device, args.peak_tflops)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    sizes = manifest_sizes(args.manifest) if args.manifest else (None, None)
    lines = [
        f"{name}; {'smoke shapes' if args.smoke else 'paper preset (Swin-T 224 px + BERT-base)'}"
        f", {shapes.tokens} tokens, {args.precision}, AdamW, random weights; peak "
        f"{peak or 'unknown'} TFLOP/s; gradient checkpointing "
        f"{'on' if args.gradient_checkpointing else 'off'}",
        "",
        "| variant | input | batch | step ms | images/s | peak GiB | GFLOP/step | TFLOP/s | MFU |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for line in lines:
        print(line, flush=True)
    for variant in ("baseline", "n_g_dtcg"):
        setup = Setup(variant, device, shapes, args.precision == "bf16",
                      args.gradient_checkpointing, *sizes)  # fmt: skip
        rows = [measure(setup, args.batch, args.steps)]
        if args.max_batch:
            rows.append(largest_batch(setup, args.batch, args.max_batch, args.steps))
        if args.manifest:
            rows.append(measure_loader(setup, args.manifest, args.batch, args.steps,
                                       args.workers))
        for row in filter(None, rows):
            lines.append(row_text(variant, row, peak))
            print(lines[-1], flush=True)
        del setup
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return lines


def write_benchmarks(path: Path, lines: list[str], command: str) -> None:
    """Append a dated section with the table and the command to ``path``."""
    from clip2clinic.io import write_text_atomic

    text = path.read_text(encoding="utf-8") if path.is_file() else "# Benchmarks\n"
    section = [f"### gpu_throughput.py, {time.strftime('%Y-%m-%d')}", "",
               f"`{command}`", "", *lines, ""]  # fmt: skip
    write_text_atomic(text.rstrip("\n") + "\n\n" + "\n".join(section), path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=10, help="timed steps per measurement")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--max-batch", type=int, default=2048,
                        help="largest batch tried (0: skip the search)")
    parser.add_argument("--manifest", type=Path,
                        help="a prepared corpus: also measure with the real loader")
    parser.add_argument("--workers", type=int, default=8, help="real loader's DataLoader workers")
    parser.add_argument("--precision", choices=["bf16", "fp32"], default="bf16")
    parser.add_argument("--peak-tflops", type=float, help="dense bf16 peak of this device")
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny shapes, batch 4 (max 8), 1 step: checks the script end to end")
    parser.add_argument("--write-benchmarks", type=Path, nargs="?", const=BENCHMARKS,
                        help=f"append the results to this file (default {BENCHMARKS.name})")
    args = parser.parse_args(argv)
    if args.smoke:
        args.batch, args.max_batch, args.steps = 4, min(args.max_batch, 8), 1
        torch.set_num_threads(1)  # tiny shapes: more threads only add overhead
    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA")
        return 0
    lines = run(args)
    if args.write_benchmarks:
        command = "python benchmarks/gpu_throughput.py " + " ".join(argv or sys.argv[1:])
        write_benchmarks(args.write_benchmarks, lines, command)
        print(f"written to {args.write_benchmarks}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
