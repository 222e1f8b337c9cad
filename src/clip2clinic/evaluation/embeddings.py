"""Embeddings cached per checkpoint and dataset, so each evaluation task and re-run reuses them.

A cache file lives at ``CACHE_DIR/<fingerprint[:16]>/<images|texts>-<key>.safetensors``: the
checkpoint's :attr:`~clip2clinic.api.Clip2Clinic.fingerprint` names the folder (delete it to
drop one checkpoint's caches); the key hashes the fingerprint, the preprocessing and the
ordered inputs (image paths with their size and modification time, or the texts). It holds
``embeddings`` (N x D float32, zero rows where skipped) and ``ok`` (N, 1 = embedded), written
atomically. An unreadable image or an empty text is skipped and counted with a warning naming
it, never fatal; the warning repeats when the cache is read.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save_file
from tqdm.auto import tqdm

from clip2clinic.api import Clip2Clinic
from clip2clinic.data.images import ImageLoadError, load_image
from clip2clinic.io import atomic_path

#: Bump when what is stored changes meaning; old cache files are then simply not found.
CACHE_VERSION = 1
#: How many skipped inputs a warning names before it only counts the rest.
NAMED_IN_WARNING = 5


def cached_image_embeddings(
    model: Clip2Clinic,
    paths: Sequence[str | os.PathLike],
    cache_dir: str | os.PathLike,
    batch_size: int = 32,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings ``(N, D)`` of the image files ``paths`` and the ``ok`` mask ``(N,)``.

    Loaded from the cache when present, else computed (unreadable files skipped) and saved.
    """
    paths = [str(p) for p in paths]
    target = _cache_file(model, "images", (_file_identity(p) for p in paths), cache_dir)
    cached = _read(target, len(paths), model.embed_dim)
    if cached is not None:
        return _warned(*cached, "images")
    embeddings = np.zeros((len(paths), model.embed_dim), dtype=np.float32)
    ok = np.zeros(len(paths), dtype=bool)
    skipped: dict[str, str] = {}
    with tqdm(total=len(paths), desc="images", unit="img", disable=not progress) as bar:
        for start in range(0, len(paths), batch_size):
            rows, images = [], []
            for row in range(start, min(start + batch_size, len(paths))):
                try:
                    images.append(load_image(paths[row]))
                    rows.append(row)
                except ImageLoadError as exc:
                    skipped[exc.path] = exc.reason
            if rows:
                embeddings[rows] = model.embed_images(images, batch_size=batch_size)
                ok[rows] = True
            bar.update(min(batch_size, len(paths) - start))
    _write(target, embeddings, ok, skipped)
    return _warned(embeddings, ok, skipped, "images")


def cached_text_embeddings(
    model: Clip2Clinic,
    texts: Sequence[str],
    cache_dir: str | os.PathLike,
    batch_size: int = 64,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings ``(N, D)`` of ``texts`` and the ``ok`` mask; an empty or non-string text
    (e.g. a NaN cell) is skipped. Cached like :func:`cached_image_embeddings`."""
    texts = list(texts)
    target = _cache_file(model, "texts", (repr(t) for t in texts), cache_dir)
    cached = _read(target, len(texts), model.embed_dim)
    if cached is not None:
        return _warned(*cached, "texts")
    ok = np.array([isinstance(t, str) and bool(t.strip()) for t in texts], dtype=bool)
    skipped = {f"text {row}": f"empty or not a string ({texts[row]!r})"
               for row in np.flatnonzero(~ok)}  # fmt: skip
    embeddings = np.zeros((len(texts), model.embed_dim), dtype=np.float32)
    if ok.any():
        embeddings[ok] = model.embed_texts([texts[row] for row in np.flatnonzero(ok)],
                                           batch_size=batch_size, progress=progress)  # fmt: skip
    _write(target, embeddings, ok, skipped)
    return _warned(embeddings, ok, skipped, "texts")


def _file_identity(path: str) -> str:
    """A path with its size and modification time, so a changed file misses the cache."""
    try:
        stat = os.stat(path)
    except OSError:
        return f"{path}|missing"
    return f"{path}|{stat.st_size}|{stat.st_mtime_ns}"


def _cache_file(
    model: Clip2Clinic, kind: str, inputs: Iterable[str], cache_dir: str | os.PathLike
) -> Path:
    header = {"version": CACHE_VERSION, "kind": kind, "checkpoint": model.fingerprint,
              "preprocessing": model.preprocessing}  # fmt: skip
    digest = hashlib.sha256(json.dumps(header, sort_keys=True).encode())
    for item in inputs:
        digest.update(item.encode("utf-8", "surrogatepass") + b"\0")
    name = f"{kind}-{digest.hexdigest()[:32]}.safetensors"
    return Path(cache_dir) / model.fingerprint[:16] / name


def _read(path: Path, count: int, dim: int) -> tuple[np.ndarray, np.ndarray, dict[str, str]] | None:
    """The cached (embeddings, ok, skipped), or None when absent or unusable (with a
    warning when the file exists but cannot be used)."""
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="np") as handle:
            embeddings, ok = handle.get_tensor("embeddings"), handle.get_tensor("ok")
            skipped = json.loads((handle.metadata() or {}).get("skipped", "{}"))
    except (OSError, SafetensorError, ValueError) as exc:
        warnings.warn(f"{path}: unreadable embedding cache, recomputing ({exc})", stacklevel=3)
        return None
    if embeddings.shape != (count, dim) or ok.shape != (count,):
        warnings.warn(f"{path}: embedding cache has the wrong shape, recomputing", stacklevel=3)
        return None
    return embeddings.astype(np.float32, copy=False), ok.astype(bool), skipped


def _write(path: Path, embeddings: np.ndarray, ok: np.ndarray, skipped: dict[str, str]) -> None:
    with atomic_path(path) as tmp:
        save_file({"embeddings": embeddings, "ok": ok.astype(np.uint8)}, str(tmp),
                  metadata={"skipped": json.dumps(skipped)})  # fmt: skip


def _warned(
    embeddings: np.ndarray, ok: np.ndarray, skipped: dict[str, str], what: str
) -> tuple[np.ndarray, np.ndarray]:
    """Warn about the skipped inputs (naming the first few) and return (embeddings, ok)."""
    if skipped:
        named = [f"{name}: {reason}" for name, reason in list(skipped.items())[:NAMED_IN_WARNING]]
        more = len(skipped) - len(named)
        warnings.warn(
            f"{int((~ok).sum())} of {len(ok)} {what} skipped: "
            + "; ".join(named)
            + (f"; and {more} more" if more else ""),
            stacklevel=3,
        )
    return embeddings, ok
