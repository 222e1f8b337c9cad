"""Shared helpers of the inference engines."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from PIL import Image

from clip2clinic.io import InputError


def as_list(values: Any, what: str) -> list:
    """``values`` as a list; a single path, string or image is refused (pass a list)."""
    if isinstance(values, (str, os.PathLike, Image.Image)):
        raise InputError(f"{what}: pass a list, not a single {type(values).__name__}")
    return list(values)


def batches(count: int, batch_size: int) -> Iterator[list[int]]:
    """Consecutive index lists of at most ``batch_size`` covering ``range(count)``."""
    if batch_size < 1:
        raise InputError(f"batch_size: must be at least 1, got {batch_size}")
    for start in range(0, count, batch_size):
        yield list(range(start, min(start + batch_size, count)))
