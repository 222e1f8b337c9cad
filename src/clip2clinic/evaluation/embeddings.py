"""Embeddings cached per checkpoint and dataset, so each evaluation task and re-run reuses them.

A cache file lives at ``CACHE_DIR/<fingerprint[:16]>/<images|texts>-<key>.safetensors``: the
checkpoint's :attr:`~clip2clinic.api.Clip2Clinic.fingerprint` names the folder (delete it to
drop one checkpoint's caches); the key hashes the fingerprint, the preprocessing and the
ordered inputs (image paths with their size and modification time, or the texts). It holds
``embeddings`` (N x D float32, zero rows where skipped) and ``ok`` (N, 1 = embedded), written
atomically. An unreadable image or an empty text is skipped and counted with a warning naming
it, never fatal; the warning repeats when the cache is read.

Images are read by a torch ``DataLoader`` (:class:`EmbedSettings`: ``batch_size`` images per
forward pass, ``workers`` reader processes) and embedded in the chosen precision: on a GPU
bf16 (fp16 where bf16 is not supported) under ``torch.autocast`` by default, on a CPU always
fp32. Embeddings are stored float32 and renormalised; the precision is part of the cache key.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save_file
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from clip2clinic.api import Clip2Clinic
from clip2clinic.data.images import ImageLoadError, load_image
from clip2clinic.data.transforms import EvalTransform
from clip2clinic.io import InputError, atomic_path

#: Bump when what is stored changes meaning; old cache files are then simply not found.
CACHE_VERSION = 1
#: How many skipped inputs a warning names before it only counts the rest.
NAMED_IN_WARNING = 5


#: ``--precision`` values: ``auto`` is bf16 on a GPU that supports it, else fp16; fp32 on CPU.
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16", "fp16")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class EmbedSettings:
    """How ``evaluate`` embeds: images per forward pass, ``DataLoader`` reader processes
    (0: read in the main process) and the precision (:data:`PRECISIONS`)."""

    batch_size: int = 32
    workers: int = 0
    precision: str = "auto"

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise InputError(f"--batch-size: must be at least 1, got {self.batch_size}")
        if self.workers < 0:
            raise InputError(f"--workers: must be 0 or more, got {self.workers}")
        if self.precision not in PRECISIONS:
            raise InputError(f"--precision: {self.precision!r}; choose from "
                             f"{', '.join(PRECISIONS)}")

    def precision_on(self, device: torch.device) -> str:
        """The precision used on ``device``: always fp32 on a CPU (a warning when bf16 or fp16
        was asked), else the one asked, ``auto`` being bf16 where supported, else fp16."""
        if device.type != "cuda":
            if self.precision in _DTYPES:
                warnings.warn(f"--precision {self.precision}: embedding on {device.type} runs "
                              "in fp32", stacklevel=2)
            return "fp32"
        if self.precision == "auto":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return self.precision


def cached_image_embeddings(
    model: Clip2Clinic,
    paths: Sequence[str | os.PathLike],
    cache_dir: str | os.PathLike,
    settings: EmbedSettings | None = None,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings ``(N, D)`` of the image files ``paths`` and the ``ok`` mask ``(N,)``.

    Loaded from the cache when present, else computed (unreadable files skipped) and saved.
    """
    settings = settings or EmbedSettings()
    precision = settings.precision_on(model.device)
    paths = [str(p) for p in paths]
    target = _cache_file(model, "images", (_file_identity(p) for p in paths), cache_dir,
                         precision)  # fmt: skip
    cached = _read(target, len(paths), model.embed_dim)
    if cached is not None:
        return _warned(*cached, "images")
    embeddings = np.zeros((len(paths), model.embed_dim), dtype=np.float32)
    ok = np.zeros(len(paths), dtype=bool)
    skipped: dict[str, str] = {}
    loader = DataLoader(ImageFiles(paths, model.transform), batch_size=settings.batch_size,
                        num_workers=settings.workers, collate_fn=_collate,
                        pin_memory=model.device.type == "cuda")  # fmt: skip
    with tqdm(total=len(paths), desc="images", unit="img", disable=not progress) as bar:
        for rows, pixels, failed in loader:
            skipped.update(failed)
            if rows:
                with torch.inference_mode(), _autocast(model.device, precision):
                    embedded = model.model.encode_image(pixels.to(model.device, non_blocking=True))
                embeddings[rows] = _unit_float32(embedded)
                ok[rows] = True
            bar.update(len(rows) + len(failed))
    _write(target, embeddings, ok, skipped)
    return _warned(embeddings, ok, skipped, "images")


class ImageFiles(Dataset):
    """Image files as the evaluation transform's tensors: item ``i`` is ``(i, pixels, {})``, or
    ``(i, None, {path: reason})`` when the file cannot be read."""

    def __init__(self, paths: Sequence[str], transform: EvalTransform):
        self.paths, self.transform = list(paths), transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[int, torch.Tensor | None, dict[str, str]]:
        try:
            return index, self.transform(load_image(self.paths[index])), {}
        except ImageLoadError as exc:
            return index, None, {exc.path: exc.reason}


def _collate(
    items: Sequence[tuple[int, torch.Tensor | None, dict[str, str]]],
) -> tuple[list[int], torch.Tensor | None, dict[str, str]]:
    """(rows read, their stacked pixels, {path: reason} of the unreadable ones)."""
    read = [(index, pixels) for index, pixels, _ in items if pixels is not None]
    failed = {path: reason for _, _, failure in items for path, reason in failure.items()}
    pixels = torch.stack([p for _, p in read]) if read else None
    return [index for index, _ in read], pixels, failed


@contextlib.contextmanager
def _autocast(device: torch.device, precision: str) -> Iterator[None]:
    if precision in _DTYPES:
        with torch.autocast(device.type, dtype=_DTYPES[precision]):
            yield
    else:
        yield


def _unit_float32(embedded: torch.Tensor) -> np.ndarray:
    """Embeddings as float32 rows of unit norm (renormalised after a half-precision pass)."""
    return torch.nn.functional.normalize(embedded.float(), dim=-1).cpu().numpy()


def cached_text_embeddings(
    model: Clip2Clinic,
    texts: Sequence[str],
    cache_dir: str | os.PathLike,
    settings: EmbedSettings | None = None,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings ``(N, D)`` of ``texts`` and the ``ok`` mask; an empty or non-string text
    (e.g. a NaN cell) is skipped. Cached like :func:`cached_image_embeddings`, in the same
    precision."""
    precision = (settings or EmbedSettings()).precision_on(model.device)
    texts = list(texts)
    target = _cache_file(model, "texts", (repr(t) for t in texts), cache_dir, precision)
    cached = _read(target, len(texts), model.embed_dim)
    if cached is not None:
        return _warned(*cached, "texts")
    ok = np.array([isinstance(t, str) and bool(t.strip()) for t in texts], dtype=bool)
    skipped = {f"text {row}": f"empty or not a string ({texts[row]!r})"
               for row in np.flatnonzero(~ok)}  # fmt: skip
    embeddings = np.zeros((len(texts), model.embed_dim), dtype=np.float32)
    if ok.any():
        with _autocast(model.device, precision):
            embedded = model.embed_texts([texts[row] for row in np.flatnonzero(ok)],
                                         progress=progress)  # fmt: skip
        embeddings[ok] = _unit_float32(torch.from_numpy(embedded))
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
    model: Clip2Clinic, kind: str, inputs: Iterable[str], cache_dir: str | os.PathLike,
    precision: str,
) -> Path:
    header = {"version": CACHE_VERSION, "kind": kind, "checkpoint": model.fingerprint,
              "preprocessing": model.preprocessing, "precision": precision}  # fmt: skip
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
