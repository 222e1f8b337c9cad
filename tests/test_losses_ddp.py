"""The distributed loss with 2 CPU processes (gloo) equals the single-process loss on the
concatenated batch: the same value on every rank and, through DDP, the same parameter gradients.

Each rank embeds its shard with small linear towers wrapped in DistributedDataParallel. The
gradient reaching a rank's own embeddings is world_size × the single-process one (every rank's
global loss contributes to it); DDP's averaging over ranks cancels that factor, so the optimiser
sees exactly the single-process gradient.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from clip2clinic.losses import (
    clinic_loss,
    clinic_loss_distributed,
    softclip_loss,
    softclip_loss_distributed,
)

WORLD = 2
SHARD = 3  # rows per rank
FEATURES, DIM = 5, 8
STREAMS = ("t", "c", "g")
THRESHOLDS = {"t": 0.2, "c": 0.3, "g": 0.2}  # low enough that reports share soft labels
EMBEDDED = ("image", "text", "text_neg", "graph", "graph_neg")


def global_batch() -> dict[str, torch.Tensor]:
    """Raw features and label vectors for WORLD × SHARD pairs, the same in every process."""
    g = torch.Generator().manual_seed(0)
    shared = torch.randn(1, FEATURES, generator=g)
    data = {k: torch.randn(WORLD * SHARD, FEATURES, generator=g) + shared for k in EMBEDDED}
    data["clinical"] = (torch.rand(WORLD * SHARD, 14, generator=g) > 0.6).float()
    data["clinical_neg"] = (torch.rand(WORLD * SHARD, 14, generator=g) > 0.6).float()
    data["clinical"][1] = 0.0  # one report with no finding mentioned
    return data


class Towers(nn.Module):
    """One linear head per modality; hard negatives share the head of their modality."""

    def __init__(self, modalities: tuple[str, ...]):
        super().__init__()
        torch.manual_seed(1)
        self.heads = nn.ModuleDict({m: nn.Linear(FEATURES, DIM) for m in modalities})

    def forward(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: F.normalize(self.heads[k.removesuffix("_neg")](x), dim=-1)
                for k, x in features.items()}


def run_step(model, features, labels, loss_fn, **options):
    """One forward/backward; returns loss, embedding grads and parameter grads."""
    embeddings = model(features)
    for e in embeddings.values():
        e.retain_grad()
    loss = loss_fn(**embeddings, **labels, **options)
    loss.backward()
    return {
        "loss": loss.detach(),
        "embedding_grads": {k: e.grad for k, e in embeddings.items()},
        "param_grads": {k: p.grad.clone() for k, p in model.named_parameters()},
    }


def worker(rank: int, init_file: str, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=WORLD, timeout=timedelta(seconds=60))
    rows = slice(rank * SHARD, (rank + 1) * SHARD)
    data = {k: v[rows] for k, v in global_batch().items()}
    features = {k: data[k] for k in EMBEDDED}
    labels = {"clinical": data["clinical"], "clinical_neg": data["clinical_neg"]}
    clinic = run_step(DistributedDataParallel(Towers(("image", "text", "graph"))), features,
                      labels, clinic_loss_distributed, streams=STREAMS, thresholds=THRESHOLDS)
    pair = {"image": features["image"], "text": features["text"]}
    soft = run_step(DistributedDataParallel(Towers(("image", "text"))), pair, {},
                    softclip_loss_distributed, alpha=0.3)
    uneven = torch.randn(SHARD + rank, DIM)
    try:
        clinic_loss_distributed(uneven, uneven)
        uneven_error = ""
    except ValueError as error:
        uneven_error = str(error)
    torch.save({"clinic": clinic, "softclip": soft, "uneven_error": uneven_error},
               Path(out_dir) / f"rank{rank}.pt")
    dist.destroy_process_group()


def test_distributed_loss_and_gradients_equal_single_process(tmp_path):
    mp.spawn(worker, args=(str(tmp_path / "rendezvous"), str(tmp_path)), nprocs=WORLD, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]

    data = global_batch()
    features = {k: data[k] for k in EMBEDDED}
    labels = {"clinical": data["clinical"], "clinical_neg": data["clinical_neg"]}
    single = {
        "clinic": run_step(Towers(("image", "text", "graph")), features, labels, clinic_loss,
                           streams=STREAMS, thresholds=THRESHOLDS),
        "softclip": run_step(Towers(("image", "text")),
                             {"image": features["image"], "text": features["text"]}, {},
                             softclip_loss, alpha=0.3),
    }
    for loss_name, expected in single.items():
        for rank, result in enumerate(ranks):
            got = result[loss_name]
            assert torch.allclose(got["loss"], expected["loss"], rtol=1e-5), (loss_name, rank)
            rows = slice(rank * SHARD, (rank + 1) * SHARD)
            for name, grad in got["embedding_grads"].items():
                assert torch.allclose(grad / WORLD, expected["embedding_grads"][name][rows],
                                      atol=1e-6), (loss_name, rank, name)
            for name, grad in got["param_grads"].items():
                assert torch.allclose(grad, expected["param_grads"][name.removeprefix("module.")],
                                      atol=1e-6), (loss_name, rank, name)
    assert all("per-rank batch sizes differ" in r["uneven_error"] for r in ranks)
