"""GPU throughput of the paper preset: images/s, peak memory and model FLOPs utilisation (MFU).

Swin-Tiny (transformers ``SwinConfig()`` defaults: 224 px, patch 4, window 7, depths 2-2-6-2)
and BERT-base (``BertConfig()`` defaults with Bio_ClinicalBERT's 28,996-token vocabulary), both
fully trained, with random weights built from their configs: nothing is downloaded. Synthetic
inputs: 224 px images, 128-token reports (+ 128-token hard negatives for n_g_dtcg), random
report graphs of 4-12 entities. bf16 autocast, AdamW, the trainer's own loss glue
(:func:`clip2clinic.training.trainer.variant_loss`). Variants baseline and n_g_dtcg, at batch 64
and at the largest batch that fits (doubling from 64 until out of memory).

MFU = (forward + backward FLOPs of one step, counted by ``torch.utils.flop_counter``) /
(step time x the GPU's dense bf16 peak). Peaks: H100 SXM / H200 989 TFLOP/s, H100 PCIe 756,
A100 312; other GPUs need ``--peak-tflops``.

    .venv/bin/python benchmarks/gpu_throughput.py [--steps 10] [--max-batch 2048]
    [--gradient-checkpointing] [--device cpu --batches 2 --steps 1]   (a slow CPU smoke run)

Prints "no CUDA" and exits where no GPU is present (unless ``--device cpu``).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

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
from clip2clinic.training.trainer import parameter_groups, variant_loss

TOKENS = 128
CLINICAL_BERT_VOCAB = 28996
PEAK_TFLOPS = {"H200": 989.0, "H100 PCIe": 756.0, "H100": 989.0, "A100": 312.0}


def paper_model(graph: bool, device: torch.device) -> ClinicCLIP:
    config = ClinicCLIPConfig(
        image=ImageTowerConfig(config=SwinConfig().to_dict()),
        text=TextTowerConfig(config=BertConfig(vocab_size=CLINICAL_BERT_VOCAB).to_dict(),
                             mode="full", max_length=TOKENS),
        graph=GraphConfig(hidden_dim=256, node_dim=768) if graph else None,
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


def synthetic_batch(size: int, negatives: bool, graph: bool, device) -> TrainBatch:
    generator = torch.Generator().manual_seed(size)
    texts = 2 * size if negatives else size
    graphs = None
    if graph:
        vocab = {f"e{i}": i for i in range(2000)}
        table = torch.randn(len(vocab), 768, generator=generator)
        graphs = graphs_to_batch(random_graphs(texts, len(vocab), random.Random(size)), vocab,
                                 table)  # fmt: skip
    labels = (torch.rand(size, 14, generator=generator) < 0.2).float()
    batch = TrainBatch(
        size=size,
        pixels=torch.randn(size, 3, 224, 224, generator=generator),
        text=torch.randint(1000, CLINICAL_BERT_VOCAB, (texts, TOKENS), generator=generator),
        text_mask=torch.ones(texts, TOKENS, dtype=torch.bool),
        clinical=labels,
        clinical_neg=labels.roll(1, dims=0) if negatives else None,
        graphs=graphs,
    )
    return batch.to(device)


class Setup:
    """A paper-preset model, its optimiser and the variant's loss, on ``device``."""

    def __init__(self, variant: str, device: torch.device, checkpointing: bool):
        self.config = load_config([named_config("preset", "paper"),
                                   named_config("variant", variant)])  # fmt: skip
        self.model = paper_model(self.config.loss.graph, device)
        if checkpointing:
            self.model.gradient_checkpointing_enable()
        self.model.train()
        self.optimizer = torch.optim.AdamW(parameter_groups(self.model, self.config))
        self.device = device

    def autocast(self):
        """bf16 autocast on the GPU; float32 on a CPU smoke run (CPU bf16 is emulated)."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16,
                              enabled=self.device.type == "cuda")

    def step(self, batch: TrainBatch) -> None:
        with self.autocast():
            embeddings = self.model(pixels=batch.pixels, text=batch.text,
                                    attention_mask=batch.text_mask, graphs=batch.graphs)
            loss = variant_loss(embeddings, batch, self.config, self.model.temperature)
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def flops(self, batch: TrainBatch) -> int:
        """Forward + backward FLOPs of one step (the optimizer's are not counted)."""
        counter = FlopCounterMode(display=False)
        with counter:
            with self.autocast():
                embeddings = self.model(pixels=batch.pixels, text=batch.text,
                                        attention_mask=batch.text_mask, graphs=batch.graphs)
                loss = variant_loss(embeddings, batch, self.config, self.model.temperature)
            loss.backward()
        self.optimizer.zero_grad(set_to_none=True)
        return counter.get_total_flops()


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(setup: Setup, size: int, steps: int) -> dict[str, float]:
    """Median step time, images/s, peak memory and FLOPs of batch ``size``."""
    batch = synthetic_batch(size, setup.config.loss.hard_negatives, setup.config.loss.graph,
                            setup.device)  # fmt: skip
    setup.step(batch)  # warm-up (allocator, kernels)
    flops = setup.flops(batch)
    if setup.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(setup.device)
    times = []
    for _ in range(steps):
        synchronize(setup.device)
        started = time.perf_counter()
        setup.step(batch)
        synchronize(setup.device)
        times.append(time.perf_counter() - started)
    seconds = statistics.median(times)
    memory = torch.cuda.max_memory_allocated(setup.device) if setup.device.type == "cuda" else 0
    return {"batch": size, "seconds": seconds, "images_per_s": size / seconds,
            "memory_gib": memory / 2**30, "flops": flops}  # fmt: skip


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
            torch.cuda.empty_cache()
        size *= 2
    return best


def peak_tflops(device: torch.device, given: float | None) -> float | None:
    if given is not None or device.type != "cuda":
        return given
    name = torch.cuda.get_device_name(device)
    for key, value in PEAK_TFLOPS.items():
        if all(part in name for part in key.split()):
            return value
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=10, help="timed steps per measurement")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--max-batch", type=int, default=2048,
                        help="largest batch tried (0: skip the search)")
    parser.add_argument("--peak-tflops", type=float, help="dense bf16 peak of this GPU")
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu (smoke run)")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA")
        return
    device = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    peak = peak_tflops(device, args.peak_tflops)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    precision = "bf16 autocast" if device.type == "cuda" else "float32"
    print(f"{name}; paper preset (Swin-T 224 px + BERT-base, {TOKENS} tokens), {precision}, "
          f"AdamW, random weights; peak {peak or 'unknown'} TFLOP/s; "
          f"gradient checkpointing {'on' if args.gradient_checkpointing else 'off'}")
    print(f"{'variant':<10} {'batch':>6} {'step ms':>9} {'images/s':>9} {'peak GiB':>9} "
          f"{'TFLOP/step':>11} {'MFU':>6}")
    for variant in ("baseline", "n_g_dtcg"):
        setup = Setup(variant, device, args.gradient_checkpointing)
        rows = [measure(setup, args.batch, args.steps)]
        if args.max_batch:
            rows.append(largest_batch(setup, args.batch, args.max_batch, args.steps))
        for row in filter(None, rows):
            achieved = row["flops"] / row["seconds"] / 1e12
            mfu = f"{100 * achieved / peak:5.1f}%" if peak else "  n/a"
            print(f"{variant:<10} {row['batch']:>6} {1000 * row['seconds']:9.1f} "
                  f"{row['images_per_s']:9.1f} {row['memory_gib']:9.2f} "
                  f"{row['flops'] / 1e12:11.2f} {mfu:>6}")
        del setup
        if device.type == "cuda":
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
