"""Training batches from a prepared manifest and its caches, with nothing recomputed.

Everything the loss needs was computed once by ``clip2clinic prepare``: this module only reads
the cached images, the cached token ids (text mode "full") or frozen token features (mode
"head"), the CheXpert labels and the report graphs. It never runs the labeler, the graph
extractor or a tokenizer.

- :class:`ManifestDataset`: one image-report pair per item (+ its hard negative and graphs when
  the variant uses them); augmentation seeded per (seed, epoch, item).
- :class:`EpochBatchSampler`: a per-epoch permutation seeded from (seed, epoch), cut into global
  batches, each split evenly over the data-parallel ranks; it can start mid-epoch (exact
  resume without replaying the loader).
- :class:`Collate`: stacks items into a :class:`TrainBatch`: reports as ``[originals;
  hard negatives]`` (one text-tower pass), padding trimmed to the batch's longest text, graphs
  as one torch_geometric batch in the same order.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from torch.utils.data import Dataset, Sampler

from clip2clinic.data.corpus import PreparedCorpus
from clip2clinic.data.graph_cache import GraphCache
from clip2clinic.data.images import ImageLoadError, decode_image, load_image
from clip2clinic.data.manifest import label_matrix, read_manifest
from clip2clinic.data.transforms import (
    AugmentConfig,
    EvalTransform,
    Normalization,
    TrainTransform,
    sample_generator,
)
from clip2clinic.io import InputError
from clip2clinic.losses import DEFAULT_CLINICAL_ENCODING, clinical_vectors
from clip2clinic.model import TEXT_TOWERS

if TYPE_CHECKING:
    from torch_geometric.data import Batch

log = logging.getLogger(__name__)





class TextCache:
    """Rows of a cached text tensor (token ids or frozen token features) and their masks.

    The file is opened lazily in each process (a DataLoader worker gets its own handle) and
    read row by row, memory-mapped, so a corpus-sized feature cache never sits in memory.
    """

    def __init__(self, path: Path, values_key: str):
        self.path, self.values_key = path, values_key
        self._handle = None
        try:
            with safe_open(str(path), framework="pt") as handle:
                self.metadata = dict(handle.metadata() or {})
                shape = handle.get_slice(values_key).get_shape()
                mask_shape = handle.get_slice("attention_mask").get_shape()
        except (OSError, SafetensorError) as exc:
            raise InputError(f"{path}: unreadable text cache ({exc}); re-run prepare") from None
        if shape[:2] != mask_shape:
            raise InputError(f"{path}: {values_key} {shape} and attention_mask {mask_shape} differ")
        self.shape = tuple(shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_handle": None}

    def row(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Values ``(L, ...)`` and bool mask ``(L,)`` of text ``index``."""
        if self._handle is None:
            self._handle = safe_open(str(self.path), framework="pt")
        values = self._handle.get_slice(self.values_key)[index : index + 1][0]
        mask = self._handle.get_slice("attention_mask")[index : index + 1][0]
        return values, mask.bool()


TEXT_CACHE_MISSING = {
    "input_ids": "run `clip2clinic prepare` first",
    "features": "the text head needs the frozen model's token features (run prepare without "
                "--no-text-features)",
}


def open_text_cache(manifest: str | os.PathLike, text_mode: str) -> TextCache:
    """The cache of what the text tower of ``text_mode`` takes (its ``cache_key``: token ids,
    or the frozen model's token features); raises InputError when it was made for other texts
    than the manifest's (caches of two ``prepare`` runs mixed: every text id would point at
    the wrong report)."""
    values_key = TEXT_TOWERS[text_mode].cache_key
    path = PreparedCorpus(manifest).text_cache_file(values_key)
    if not path.is_file():
        raise InputError(f"{path}: missing; {TEXT_CACHE_MISSING[values_key]}")
    text_cache = TextCache(path, values_key)
    made_for = text_cache.metadata.get("text_fingerprint")
    if made_for is not None and made_for != PreparedCorpus(manifest).texts_fingerprint():
        raise InputError(f"{path}: made for other texts than {manifest} (the manifest and its "
                         "cache come from different prepare runs); re-run `clip2clinic prepare`")
    return text_cache


def load_graphs(manifest: str | os.PathLike) -> GraphCache:
    """The prepared report graphs of a manifest (packed, by text id) and their node table;
    raises InputError when they are missing, unreadable or made for other texts."""
    corpus = PreparedCorpus(manifest)
    cache = corpus.cache
    try:
        with safe_open(str(corpus.graph_node_features_file), framework="pt") as handle:
            table = handle.get_tensor("embeddings").float()
        with safe_open(str(corpus.graph_cache_file), framework="pt") as handle:
            made_for = (handle.metadata() or {}).get("text_fingerprint")
            packed = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
        graphs = GraphCache(packed, table, str(corpus.graph_cache_file))
    except (OSError, ValueError, SafetensorError) as exc:
        raise InputError(f"{cache}: cannot read the graph cache ({exc}); re-run prepare") \
            from None
    if made_for != corpus.texts_fingerprint():
        raise InputError(f"{corpus.graph_cache_file}: made for other texts than {manifest} "
                         "(the manifest and its cache come from different prepare runs); "
                         "re-run `clip2clinic prepare`")
    return graphs


class ManifestDataset(Dataset):
    """Items of one split of a prepared manifest.

    Each item is a dict: ``index``, ``pixels`` (C×S×S), ``text`` and ``text_mask`` (the
    report's cached ids or features), ``clinical`` (14); with ``hard_negatives`` also
    ``text_neg``, ``text_neg_mask``, ``clinical_neg`` (vectors in ``clinical_encoding``); with
    ``graphs`` the parsed report graphs
    ``graph`` (and ``graph_neg``). ``augment`` None gives the evaluation transform.
    Call :meth:`set_epoch` before each epoch: augmentation depends on (seed, epoch, index)
    only, never on worker count or order.
    """

    def __init__(
        self,
        manifest: str | os.PathLike,
        text_cache: TextCache,
        image_size: int,
        normalization: Normalization,
        augment: Mapping[str, Any] | None = None,
        split: str = "train",
        seed: int = 0,
        hard_negatives: bool = False,
        graphs: bool = False,
        uncertain: float = 0.5,
        clinical_encoding: str = DEFAULT_CLINICAL_ENCODING,
    ):
        columns = ["text_id", "labels"]
        columns += ["hard_negative_text_id", "hard_negative_labels"] if hard_negatives else []
        frame = read_manifest(manifest, split=split, columns=columns)
        if len(frame) == 0:
            raise InputError(f"{manifest}: no rows in split {split!r}")
        self.manifest, self.corpus = Path(manifest), PreparedCorpus(manifest)
        self.text_cache = text_cache
        self.seed, self.epoch = seed, 0
        self.hard_negatives, self.graphs = hard_negatives, graphs
        self.image_paths = frame["image_cache"].tolist()
        self.text_ids = self._text_ids(frame, "text_id")
        self.clinical = clinical_vectors(label_matrix(frame), uncertain, clinical_encoding)
        if hard_negatives:
            self.neg_text_ids = self._text_ids(frame, "hard_negative_text_id")
            self.clinical_neg = clinical_vectors(label_matrix(frame, "hard_negative_labels"),
                                                 uncertain, clinical_encoding)
        if augment is None:
            self.transform = EvalTransform(image_size, normalization)
        else:
            ranges = {k: tuple(v) if isinstance(v, list) else v for k, v in augment.items()}
            self.transform = TrainTransform(AugmentConfig(size=image_size, **ranges),
                                            normalization)

    def _text_ids(self, frame, column: str) -> np.ndarray:
        ids = frame[column].to_numpy()
        bad = (ids < 0) | (ids >= len(self.text_cache))
        if bad.any():
            row = frame.iloc[int(np.argmax(bad))]
            raise InputError(
                f"{self.manifest}: image {row['image_id']}: {column} {row[column]} is not a row "
                f"of {self.text_cache.path} ({len(self.text_cache)} texts); re-run prepare"
            )
        return ids.astype(np.int64)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.image_paths)

    def load_pixels(self, index: int, data: bytes | None = None) -> torch.Tensor | None:
        """The transformed image of item ``index`` (decoded from ``data`` when the caller read
        the cached file already); None, with a warning naming the file, when it cannot be read
        (never another item's image: the pair would be wrong)."""
        path = self.corpus.image_path(self.image_paths[index])
        try:
            image = load_image(path) if data is None else decode_image(path, data)
        except ImageLoadError as exc:
            log.warning("item %d: unreadable cached image (%s); its row is dropped from this "
                        "epoch", index, exc)
            return None
        if isinstance(self.transform, TrainTransform):
            return self.transform(image, sample_generator(self.seed, self.epoch, index))
        return self.transform(image)

    def __getitem__(self, index: int) -> dict[str, Any] | None:
        """The item's tensors, or None when its image is unreadable (see :class:`Collate`)."""
        return self.item(index)

    def item(self, index: int, data: bytes | None = None) -> dict[str, Any] | None:
        """Item ``index``, its image decoded from ``data`` when given (see :meth:`load_pixels`)."""
        pixels = self.load_pixels(index, data)
        if pixels is None:
            return None
        item: dict[str, Any] = {"index": index, "pixels": pixels}
        item["text"], item["text_mask"] = self.text_cache.row(int(self.text_ids[index]))
        item["clinical"] = torch.from_numpy(self.clinical[index])
        if self.hard_negatives:
            item["text_neg"], item["text_neg_mask"] = self.text_cache.row(
                int(self.neg_text_ids[index])
            )
            item["clinical_neg"] = torch.from_numpy(self.clinical_neg[index])
        if self.graphs:  # a text's graph is cached under its text id
            item["graph"] = int(self.text_ids[index])
            if self.hard_negatives:
                item["graph_neg"] = int(self.neg_text_ids[index])
        return item


@dataclass
class TrainBatch:
    """One (per-rank) batch. ``text``/``text_mask`` hold the ``size`` reports followed, with
    hard negatives, by their ``size`` negatives; ``graphs`` follow the same order. ``dropped``
    counts the sampled items left out because their image was unreadable."""

    size: int
    pixels: torch.Tensor
    text: torch.Tensor
    text_mask: torch.Tensor
    clinical: torch.Tensor
    clinical_neg: torch.Tensor | None = None
    graphs: Batch | None = None
    dropped: int = 0

    @property
    def hard_negatives(self) -> bool:
        return self.text.shape[0] == 2 * self.size

    def split_reports(self, stacked: torch.Tensor | None
                      ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Rows in this batch's report order (``text``, ``graphs``: the originals, then with
        hard negatives their negatives) as (originals, negatives or None)."""
        if stacked is None:
            return None, None
        if self.hard_negatives:
            return stacked[: self.size], stacked[self.size :]
        return stacked, None

    def to(self, device: torch.device | str, non_blocking: bool = False) -> TrainBatch:
        def move(value):
            return None if value is None else value.to(device, non_blocking=non_blocking)

        return TrainBatch(self.size, move(self.pixels), move(self.text), move(self.text_mask),
                          move(self.clinical), move(self.clinical_neg), move(self.graphs),
                          self.dropped)


class Collate:
    """Stack :class:`ManifestDataset` items into a :class:`TrainBatch`.

    ``graphs`` (:func:`load_graphs`) is needed when the items carry graphs. Items that are
    None (unreadable images) are left out and counted in ``dropped``.
    """

    def __init__(self, graphs: GraphCache | None = None):
        self.graphs = graphs

    def __call__(self, sampled: Sequence[dict[str, Any] | None]) -> TrainBatch:
        items = [item for item in sampled if item is not None]
        if not items:
            raise InputError(f"all {len(sampled)} images of a batch are unreadable; re-run "
                             "`clip2clinic prepare` to rebuild the image cache")
        hard_negatives = "text_neg" in items[0]
        texts = [item["text"] for item in items]
        masks = [item["text_mask"] for item in items]
        if hard_negatives:
            texts += [item["text_neg"] for item in items]
            masks += [item["text_neg_mask"] for item in items]
        mask = torch.stack(masks)
        used = mask.any(dim=0).nonzero()
        length = int(used.max()) + 1 if len(used) else 1
        graphs = None
        if "graph" in items[0]:
            if self.graphs is None:
                raise ValueError("items carry graphs but Collate has no graph cache")
            text_ids = [item["graph"] for item in items]
            if hard_negatives:
                text_ids += [item["graph_neg"] for item in items]
            graphs = self.graphs.batch(text_ids)
        return TrainBatch(
            size=len(items),
            pixels=torch.stack([item["pixels"] for item in items]),
            text=torch.stack(texts)[:, :length],
            text_mask=mask[:, :length],
            clinical=torch.stack([item["clinical"] for item in items]),
            clinical_neg=(
                torch.stack([item["clinical_neg"] for item in items]) if hard_negatives else None
            ),
            graphs=graphs,
            dropped=len(sampled) - len(items),
        )


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of epoch ``epoch``'s permutation (recorded in the training state)."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1, np.uint64)[0] >> 1)


class EpochBatchSampler(Sampler[list[int]]):
    """Batches of item indices: epoch ``e`` shuffles with :func:`epoch_seed` ``(seed, e)``,
    cuts the permutation into global batches of ``batch_size`` (dropping the incomplete tail,
    so every rank gets equal shards), and yields this ``rank``'s contiguous share of each.

    Rank shares are contiguous, so the all-gathered global batch (rank order) is exactly the
    single-process batch: training on any number of processes sees the same batches.
    """

    def __init__(self, size: int, batch_size: int, seed: int, rank: int = 0, world: int = 1):
        if batch_size % world:
            raise InputError(
                f"data.batch_size {batch_size} (the global batch) is not divisible by the "
                f"{world} processes"
            )
        if size < batch_size:
            raise InputError(
                f"the split has {size} items, fewer than one batch of {batch_size}; "
                "lower data.batch_size"
            )
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.rank, self.world = rank, world
        self.epoch, self.start = 0, 0

    @property
    def batches_per_epoch(self) -> int:
        return self.size // self.batch_size

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Iterate epoch ``epoch`` from its batch ``start`` (batches already consumed)."""
        if not 0 <= start <= self.batches_per_epoch:
            raise ValueError(f"start {start} is outside 0..{self.batches_per_epoch}")
        self.epoch, self.start = epoch, start

    def __len__(self) -> int:
        return self.batches_per_epoch - self.start

    def __iter__(self) -> Iterator[list[int]]:
        generator = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch))
        order = torch.randperm(self.size, generator=generator).tolist()
        share = self.batch_size // self.world
        for number in range(self.start, self.batches_per_epoch):
            first = number * self.batch_size + self.rank * share
            yield order[first : first + share]
