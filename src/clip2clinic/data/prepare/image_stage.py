"""Prepare stage 2: the resized uint8 image cache. An unreadable image is skipped and counted
with its reason, never fatal."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pandas as pd

from clip2clinic.data.images import ImageLoadError, cache_resized
from clip2clinic.data.prepare.parallel import run_chunks


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
        relative, reason = cache_name(dataset, image_id), ""
        if path is None or path != path:
            relative, reason = "", "no image file listed"
        else:
            try:
                cache_resized(path, cache / relative, shorter_side)
            except ImageLoadError as exc:
                relative, reason = "", exc.reason
        out.append({"image_id": image_id, "image_cache": relative, "skip_reason": reason})
    return pd.DataFrame(out)


def run_image_stage(images: pd.DataFrame, cache: Path, dataset: str, shorter_side: int,
                    workers: int) -> pd.DataFrame:
    """Cache every image of ``images``; chunk results are themselves cached (resumable)."""
    work = partial(cache_images, cache=cache, dataset=dataset, shorter_side=shorter_side)
    return run_chunks(images[["image_id", "path"]], work, cache / "stages", "images",
                      (dataset, shorter_side), workers, chunk_size=256, desc="caching images")
