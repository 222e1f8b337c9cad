"""Time the losses, forward + backward, on CPU at the paper's batch size.

Prints the median wall and process-CPU time of each variant's loss and its ratio to plain
InfoNCE (the baseline variant). The trainer benchmark relates these numbers to the towers'
step time.

    .venv/bin/python benchmarks/bench_loss.py [--batch 64] [--dim 512] [--repeats 50] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from clip2clinic.losses import clinic_loss, softclip_loss

VARIANTS = {  # name: (hard negatives, graph, streams)
    "baseline": (False, False, ()),
    "dt": (False, False, ("t",)),
    "dt_c": (False, False, ("t", "c")),
    "n": (True, False, ()),
    "n_dt_c": (True, False, ("t", "c")),
    "g": (False, True, ()),
    "g_dtcg": (False, True, ("t", "c", "g")),
    "n_g_dtcg": (True, True, ("t", "c", "g")),
}


def make_inputs(batch: int, dim: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    inputs = {k: F.normalize(torch.randn(batch, dim, generator=g), dim=-1)
              for k in ("image", "text", "text_neg", "graph", "graph_neg")}
    inputs["clinical"] = (torch.rand(batch, 14, generator=g) > 0.8).float()
    inputs["clinical_neg"] = (torch.rand(batch, 14, generator=g) > 0.8).float()
    return inputs


def median_ms(steps: dict[str, Callable[[], None]], repeats: int) -> dict[str, tuple[float, float]]:
    """Median (wall, process CPU) milliseconds per step, steps run round-robin.

    On a shared machine the wall time counts time spent preempted; the process CPU time does
    not, and with one torch thread it is the loss's own compute.
    """
    for step in steps.values():
        for _ in range(5):
            step()
    wall: dict[str, list[float]] = {name: [] for name in steps}
    cpu: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            start_wall, start_cpu = time.perf_counter(), time.process_time()
            step()
            wall[name].append((time.perf_counter() - start_wall) * 1e3)
            cpu[name].append((time.process_time() - start_cpu) * 1e3)
    return {name: (statistics.median(wall[name]), statistics.median(cpu[name])) for name in steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    data = make_inputs(args.batch, args.dim)

    def loss_step(negatives, graph, streams):
        leaves = {k: v.clone().requires_grad_() for k, v in data.items()
                  if k in ("image", "text") or (negatives and k == "text_neg")
                  or (graph and k == "graph") or (graph and negatives and k == "graph_neg")}
        labels = {"clinical": data["clinical"]}
        if negatives:
            labels["clinical_neg"] = data["clinical_neg"]

        def step():
            clinic_loss(**leaves, **labels, streams=streams).backward()
        return step

    def softclip_step():
        image, text = (data[k].clone().requires_grad_() for k in ("image", "text"))
        return lambda: softclip_loss(image, text).backward()

    def cross_entropy_step():  # the textbook CLIP loss, for reference
        image, text = (data[k].clone().requires_grad_() for k in ("image", "text"))
        labels = torch.arange(args.batch)

        def step():
            logits = image @ text.T / 0.1
            (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)).backward()
        return step

    steps = {"cross-entropy CLIP (reference)": cross_entropy_step()}
    steps.update({name: loss_step(*spec) for name, spec in VARIANTS.items()})
    steps["softclip"] = softclip_step()
    print(f"loss forward+backward, CPU, batch {args.batch}, dim {args.dim}, "
          f"{torch.get_num_threads()} threads, median of {args.repeats}")
    results = median_ms(steps, args.repeats)
    base_wall, base_cpu = results["baseline"]
    print(f"{'variant':32s} {'wall ms':>8s} {'cpu ms':>8s} {'cpu × baseline':>15s}")
    for name, (wall_ms, cpu_ms) in results.items():
        print(f"{name:32s} {wall_ms:8.3f} {cpu_ms:8.3f} {cpu_ms / base_cpu:15.2f}")

if __name__ == "__main__":
    main()
