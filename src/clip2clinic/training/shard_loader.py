"""Training batches read from image-cache shards (``prepare --shards``), shard by shard.

Each epoch the split's shards are permuted with :func:`~clip2clinic.training.data.epoch_seed`
``(seed, epoch)`` (the same on every process), dealt round-robin to the data-parallel ranks and,
within a rank, to its DataLoader workers; each worker reads its shards sequentially through a
shuffle buffer (``webdataset``'s, seeded from (seed, epoch, rank, worker)). So every image of
the split is read exactly once per epoch by exactly one worker of one rank, and a run on a
shared file system opens a few hundred files per epoch instead of one per image.

Batches: a rank's items are cut into batches of its share of the global batch. Ranks receive
different numbers of images (whole shards), so every rank takes the same
``batches_per_epoch``: the most that the rank with the fewest images can fill in any epoch (the
smallest ``shards // world`` shards). On one process that is every full batch of the split;
on several, up to about one shard's images per rank are left out of an epoch (a different,
seeded set each epoch). Augmentation stays a function of (seed, epoch, row) as in
:class:`~clip2clinic.training.data.ManifestDataset`; resuming mid-epoch re-reads (and drops)
the epoch's batches already trained on, so the resumed batches are the same.
"""

from __future__ import annotations

import itertools
import logging
import random
import tarfile
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from clip2clinic.data.shards import is_shard_member, iter_shard, split_pointer
from clip2clinic.io import InputError
from clip2clinic.training.data import ManifestDataset, TrainBatch, epoch_seed

log = logging.getLogger(__name__)

#: Items held by each worker's shuffle buffer (encoded PNGs: about 50 kB each at 256 px).
SHUFFLE_BUFFER = 1000


def is_sharded(dataset: ManifestDataset) -> bool:
    """Whether every cached image of ``dataset`` lies in a shard."""
    return all(is_shard_member(path) for path in dataset.image_paths)


class ShardStream(IterableDataset):
    """The items of a sharded :class:`ManifestDataset` split, this rank's shards only, each
    DataLoader worker reading its own shards through a seeded shuffle buffer."""

    def __init__(self, dataset: ManifestDataset, seed: int, rank: int = 0, world: int = 1,
                 buffer: int = SHUFFLE_BUFFER):
        shards = np.array([split_pointer(path)[0] for path in dataset.image_paths])
        names, inverse = np.unique(shards, return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        bounds = np.cumsum(np.bincount(inverse, minlength=len(names)))[:-1]
        self.dataset, self.seed, self.rank, self.world = dataset, seed, rank, world
        self.buffer, self.epoch = buffer, 0
        self.shards = names.tolist()
        self.rows = np.split(order, bounds)  # row indices of each shard, in manifest order
        if len(self.shards) < world:
            raise InputError(f"{dataset.manifest}: {len(self.shards)} image shard(s) for "
                             f"{world} processes; prepare with a smaller --shard-size")

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.dataset.set_epoch(epoch)

    def min_rank_items(self) -> int:
        """The fewest items any rank can receive in an epoch."""
        sizes = sorted(len(rows) for rows in self.rows)
        return int(sum(sizes[: len(sizes) // self.world]))

    def assigned(self, worker: int = 0, workers: int = 1) -> list[int]:
        """The shard numbers this rank's ``worker`` reads in the current epoch."""
        generator = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch))
        order = torch.randperm(len(self.shards), generator=generator).tolist()
        return order[self.rank :: self.world][worker::workers]

    def __iter__(self) -> Iterator[dict[str, Any] | None]:
        import webdataset

        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        state = np.random.SeedSequence([self.seed, self.epoch, self.rank, worker])
        rng = random.Random(int(state.generate_state(1, np.uint64)[0]))
        samples = self._samples(self.assigned(worker, workers))
        shuffled = webdataset.shuffle(self.buffer, min(self.buffer, 100), rng=rng)(samples)
        for index, data in shuffled:
            yield self.dataset.item(index, data)

    def _samples(self, shards: list[int]) -> Iterator[tuple[int, bytes]]:
        """``(row, png bytes)`` of the given shards, read sequentially; a row whose image is
        missing from its shard comes with empty bytes (the item is then dropped, named)."""
        for number in shards:
            shard = self.shards[number]
            rows = {split_pointer(self.dataset.image_paths[row])[1]: int(row)
                    for row in self.rows[number]}  # fmt: skip
            try:
                for name, data in iter_shard(self.dataset.corpus.image_path(shard)):
                    row = rows.pop(name, None)
                    if row is not None:
                        yield row, data
            except (OSError, tarfile.TarError) as exc:
                log.warning("%s: unreadable shard (%s); its remaining rows are dropped",
                            shard, exc)
            for row in rows.values():
                yield row, b""


class ShardLoader:
    """Per-rank :class:`TrainBatch` es from a :class:`ShardStream`, with the interface the
    trainer uses of its batch sampler: ``batches_per_epoch``, ``set_epoch(epoch, start)``."""

    def __init__(self, stream: ShardStream, batch_size: int, collate: Callable,
                 num_workers: int = 0, generator: torch.Generator | None = None):
        if batch_size % stream.world:
            raise InputError(f"data.batch_size {batch_size} (the global batch) is not "
                             f"divisible by the {stream.world} processes")
        self.stream, self.collate = stream, collate
        self.share = batch_size // stream.world
        self.batches_per_epoch = stream.min_rank_items() // self.share
        if self.batches_per_epoch < 1:
            raise InputError(
                f"{stream.dataset.manifest}: the smallest share of image shards a process can "
                f"get holds {stream.min_rank_items()} images, fewer than one batch of "
                f"{self.share}; lower data.batch_size or prepare with a smaller --shard-size")
        self.loader = DataLoader(stream, batch_size=None, num_workers=num_workers,
                                 generator=generator)
        self.start = 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Iterate epoch ``epoch`` from its batch ``start`` (batches already consumed)."""
        if not 0 <= start <= self.batches_per_epoch:
            raise ValueError(f"start {start} is outside 0..{self.batches_per_epoch}")
        self.stream.set_epoch(epoch)
        self.start = start

    def __len__(self) -> int:
        return self.batches_per_epoch - self.start

    def __iter__(self) -> Iterator[TrainBatch]:
        items = iter(self.loader)
        for number in range(self.batches_per_epoch):
            sampled = list(itertools.islice(items, self.share))
            if number >= self.start:
                yield self.collate(sampled)
