"""Gathering a batch across data-parallel ranks, keeping autograd.

The soft labels of the loss compare every report with every other report in the batch, so under
data parallelism the batch must be the *global* one. :func:`gather_batch` all-gathers each tensor
along dim 0 with ``torch.distributed.nn.functional.all_gather``, whose backward sums, over all
ranks, the gradient each rank computed for this rank's shard.

Gradient convention (proved by ``tests/test_losses_ddp.py``): every rank computes the same global
loss ``L``. The gradient that reaches a rank's local tensors is then ``world_size * dL/dx_local``
(each rank contributes ``dL/dx_local``), and DistributedDataParallel's averaging of parameter
gradients over ranks divides by ``world_size`` again, so the optimiser sees exactly ``dL/dθ`` of
the single-process loss on the concatenated batch.

Without ``torch.distributed`` initialised (or with one rank) every function here is the identity.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor


def world_size() -> int:
    """Number of ranks in the default process group (1 when none is initialised)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return 1


def gather_with_grad(tensor: Tensor) -> Tensor:
    """Concatenate ``tensor`` from every rank along dim 0, in rank order, keeping autograd."""
    if world_size() == 1:
        return tensor
    if tensor.requires_grad:
        parts = torch.distributed.nn.functional.all_gather(tensor)
    else:
        parts = [torch.empty_like(tensor) for _ in range(world_size())]
        dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts)


def _check_equal_batches(sizes: list[int], device: torch.device) -> None:
    """Raise a clear error (on every rank alike) when ranks hold batches of different sizes."""
    local = torch.tensor(sizes, dtype=torch.long, device=device)
    every = [torch.empty_like(local) for _ in range(world_size())]
    dist.all_gather(every, local)
    if any(not torch.equal(other, every[0]) for other in every[1:]):
        per_rank = [other.tolist() for other in every]
        raise ValueError(
            f"per-rank batch sizes differ ({per_rank}); the global loss needs equal shards: "
            "drop the last incomplete batch (drop_last=True / even_batches)"
        )


def gather_batch(**tensors: Tensor | None) -> dict[str, Tensor | None]:
    """All-gather each named tensor (``None`` passes through) into the global batch.

    Each tensor becomes ``[rank 0 rows; rank 1 rows; ...]``. Tensors are gathered separately, so
    a caller that keeps originals and hard negatives in separate arguments keeps the loss's
    ``[all originals; all negatives]`` report order. Every rank must pass the same names with
    equal shapes; differing batch sizes raise ``ValueError`` on all ranks.
    """
    present = {name: t for name, t in tensors.items() if t is not None}
    if world_size() == 1 or not present:
        return dict(tensors)
    first = next(iter(present.values()))
    _check_equal_batches([t.shape[0] for t in present.values()], first.device)
    return {name: None if t is None else gather_with_grad(t) for name, t in tensors.items()}
