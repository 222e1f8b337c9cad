"""Prepare stage 2: the resized uint8 image cache. An unreadable image is skipped and counted
with its reason, never fatal. When finished chunks are reused, every cached file they list is
checked against its recorded size (a decode check where none was recorded) and re-created
when missing or damaged."""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path

import pandas as pd
from PIL import Image

from clip2clinic.data.images import ImageLoadError, cache_resized
from clip2clinic.data.prepare.parallel import run_chunks

log = logging.getLogger(__name__)


def cache_name(dataset: str, image_id: str) -> str:
    """Relative path of an image in the cache (safe for any image id)."""
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in image_id)
    return f"images/{dataset}/{safe[:2]}/{safe}.png"


def cache_images(images: pd.DataFrame, cache: Path, dataset: str,
                 shorter_side: int) -> pd.DataFrame:
    """Cache a chunk of images (columns ``image_id``, ``path``); returns ``image_id``,
    ``image_cache`` (relative path, "" when skipped) and ``skip_reason``."""
    out = []
    for image_id, path in images[["image_id", "path"]].itertuples(index=False):
        relative, reason, size = cache_name(dataset, image_id), "", 0
        if path is None or path != path:
            relative, reason = "", "no image file listed"
        else:
            try:
                cache_resized(path, cache / relative, shorter_side)
                size = (cache / relative).stat().st_size
            except ImageLoadError as exc:
                relative, reason = "", exc.reason
        out.append({"image_id": image_id, "image_cache": relative, "skip_reason": reason,
                    "cache_bytes": size})
    return pd.DataFrame(out)


def run_image_stage(images: pd.DataFrame, cache: Path, dataset: str, shorter_side: int,
                    workers: int) -> pd.DataFrame:
    """Cache every image of ``images``; chunk results are themselves cached (resumable), and
    the files of reused chunks are checked (see the module docstring)."""
    work = partial(cache_images, cache=cache, dataset=dataset, shorter_side=shorter_side)
    rows = images[["image_id", "path"]].reset_index(drop=True)
    results = run_chunks(rows, work, cache / "stages", "images", (dataset, shorter_side),
                         workers, chunk_size=256, desc="caching images")
    if "cache_bytes" not in results:  # chunks written before sizes were recorded
        results["cache_bytes"] = 0
    bad = [i for i, (relative, size) in enumerate(zip(results["image_cache"],
                                                      results["cache_bytes"], strict=True))
           if relative and not _intact(cache / relative, int(size))]  # fmt: skip
    if bad:
        log.warning("%d cached image(s) missing or damaged; re-creating them", len(bad))
        for relative in results["image_cache"].iloc[bad]:
            (cache / relative).unlink(missing_ok=True)
        redone = work(rows.iloc[bad])
        for column in results.columns:
            results.loc[bad, column] = redone[column].to_numpy()
    return results


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
