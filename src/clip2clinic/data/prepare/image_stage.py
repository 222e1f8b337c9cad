"""Prepare stage 2: the resized uint8 image cache. An unreadable image is skipped and counted
with its reason, never fatal. When finished chunks are reused, every cached file they list is
checked against its recorded size (a decode check where none was recorded) and re-created
when missing or damaged.

Two layouts: one PNG per image (the default), or, with ``shard_size``, WebDataset-style tar
shards of ``shard_size`` PNGs each, one series per split
(``shards/DATASET-SPLIT-00012.tar``; see :mod:`clip2clinic.data.shards`). A shard is one chunk
of the resumable stage: it is written whole, or made again whole.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pandas as pd
from PIL import Image

from clip2clinic.data.corpus import PreparedCorpus
from clip2clinic.data.images import ImageLoadError, cache_resized, load_resized_from, png_bytes
from clip2clinic.data.prepare.parallel import run_chunks
from clip2clinic.data.shards import pointer, write_shard

log = logging.getLogger(__name__)


def safe_key(image_id: str) -> str:
    """An image id as a file-name-safe key."""
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in image_id)


def cache_name(dataset: str, image_id: str) -> str:
    """Relative path of an image in the cache (safe for any image id)."""
    safe = safe_key(image_id)
    return f"images/{dataset}/{safe[:2]}/{safe}.png"


def cache_images(images: pd.DataFrame, cache: Path, dataset: str,
                 shorter_side: int) -> pd.DataFrame:
    """Cache a chunk of images (columns ``image_id``, ``path``); returns ``image_id``,
    ``image_cache`` (relative path, "" when skipped), ``skip_reason``, ``cache_bytes`` and
    ``upsampled_from`` (the source's shorter side where the cached image is larger, else 0)."""
    out = []
    for image_id, path in images[["image_id", "path"]].itertuples(index=False):
        relative, reason, size, upsampled_from = cache_name(dataset, image_id), "", 0, 0
        if path is None or path != path:
            relative, reason = "", "no image file listed"
        else:
            try:
                made = cache_resized(path, cache / relative, shorter_side)
                size = (cache / relative).stat().st_size
                upsampled_from = min(made.source_shape) if made.upsampled else 0
            except ImageLoadError as exc:
                relative, reason = "", exc.reason
        out.append({"image_id": image_id, "image_cache": relative, "skip_reason": reason,
                    "cache_bytes": size, "upsampled_from": upsampled_from})
    return pd.DataFrame(out)


def cache_shards(images: pd.DataFrame, cache: Path, shorter_side: int) -> pd.DataFrame:
    """Write the shard(s) of a chunk of images (columns ``image_id``, ``path``, ``shard``:
    the shard's relative path); returns the same columns as :func:`cache_images`, with
    ``image_cache`` a ``SHARD.tar#KEY.png`` pointer and ``cache_bytes`` the shard's size."""
    out = []
    for shard, rows in images.groupby("shard", sort=False):
        results: list[tuple[str, str, str, int]] = []
        write_shard(cache / shard, _shard_members(rows, shard, shorter_side, results))
        size = (cache / shard).stat().st_size
        out += [{"image_id": image_id, "image_cache": relative, "skip_reason": reason,
                 "cache_bytes": size if relative else 0, "upsampled_from": upsampled_from}
                for image_id, relative, reason, upsampled_from in results]  # fmt: skip
    return pd.DataFrame(out, columns=["image_id", "image_cache", "skip_reason", "cache_bytes",
                                      "upsampled_from"])


def _shard_members(rows: pd.DataFrame, shard: str, shorter_side: int,
                   results: list[tuple[str, str, str, int]]) -> Iterator[tuple[str, bytes]]:
    """``(key, png bytes)`` of each readable image of ``rows``; appends ``(image_id,
    pointer or "", skip reason, upsampled_from)`` of every row to ``results``."""
    for image_id, path in rows[["image_id", "path"]].itertuples(index=False):
        if path is None or path != path:
            results.append((image_id, "", "no image file listed", 0))
            continue
        try:
            image, source = load_resized_from(path, shorter_side)
        except ImageLoadError as exc:
            results.append((image_id, "", exc.reason, 0))
            continue
        key = safe_key(image_id)
        upsampled_from = min(source) if min(image.shape) > min(source) else 0
        results.append((image_id, pointer(shard, f"{key}.png"), "", upsampled_from))
        yield key, png_bytes(image)


def run_image_stage(images: pd.DataFrame, corpus: PreparedCorpus, dataset: str,
                    shorter_side: int, workers: int, shard_size: int | None = None
                    ) -> pd.DataFrame:
    """Cache every image of ``images`` (``image_id``, ``path``, ``split``), as files or, with
    ``shard_size``, as shards; chunk results are themselves cached (resumable), and the files
    of reused chunks are checked (see the module docstring)."""
    cache = corpus.cache
    if shard_size:
        work = partial(cache_shards, cache=cache, shorter_side=shorter_side)
        parts = []
        for split, group in images.groupby("split", sort=True):
            rows = group[["image_id", "path"]].reset_index(drop=True)
            rows["shard"] = [f"shards/{dataset}-{split}-{i // shard_size:05d}.tar"
                             for i in range(len(rows))]  # fmt: skip
            parts.append((rows, run_chunks(
                rows, work, corpus.stages, f"shards-{split}",
                (dataset, shorter_side, shard_size), workers, chunk_size=shard_size,
                desc=f"writing image shards ({split})")))
        rows = pd.concat([r for r, _ in parts], ignore_index=True)
        results = pd.concat([r for _, r in parts], ignore_index=True)
    else:
        work = partial(cache_images, cache=cache, dataset=dataset, shorter_side=shorter_side)
        rows = images[["image_id", "path"]].reset_index(drop=True)
        results = run_chunks(rows, work, corpus.stages, "images", (dataset, shorter_side),
                             workers, chunk_size=256, desc="caching images")
    for column in ("cache_bytes", "upsampled_from"):  # chunks written before they were recorded
        if column not in results:
            results[column] = 0
    files = results["image_cache"].str.rpartition("#")[0].where(
        results["image_cache"].str.contains("#", regex=False), results["image_cache"])
    bad = [i for i, (relative, size) in enumerate(zip(files, results["cache_bytes"],
                                                      strict=True))
           if relative and not _intact(cache / relative, int(size))]  # fmt: skip
    if bad:
        if shard_size:  # a damaged shard is made again whole
            bad = files.index[files.isin(set(files.iloc[bad]))].tolist()
        log.warning("%d cached image(s) missing or damaged; re-creating them", len(bad))
        for relative in set(files.iloc[bad]):
            (cache / relative).unlink(missing_ok=True)
        redone = work(rows.iloc[bad])
        for column in results.columns:
            results.loc[bad, column] = redone[column].to_numpy()
    warn_upsampled(results, shorter_side)
    return results


def warn_upsampled(results: pd.DataFrame, shorter_side: int) -> None:
    """One warning line when some source images were smaller than the cache's shorter side
    (``results``: the stage's, ``upsampled_from`` the source's shorter side of each upsampled
    image, else 0)."""
    sides = results["upsampled_from"][results["upsampled_from"] > 0].astype(int)
    if sides.empty:
        return
    low, high = sides.min(), sides.max()
    span = f"{low} px" if low == high else f"{low}-{high} px"
    log.warning("%d of %d cached image(s) have a source shorter side of %s, below --image-size "
                "%d: they were upsampled (an --image-size of %d or less keeps them as they are)",
                len(sides), int((results["image_cache"] != "").sum()), span, shorter_side, low)


def _intact(path: Path, size: int) -> bool:
    """``path`` exists with ``size`` bytes (or, size unknown, decodes as an image)."""
    try:
        if size:
            return path.stat().st_size == size
        with Image.open(path) as image:
            image.verify()
        return True
    except (OSError, SyntaxError):
        return False
