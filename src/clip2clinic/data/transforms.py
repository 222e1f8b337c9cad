"""Image transforms for training and evaluation, in Pillow + torch only.

Both transforms take the 2-D uint8 grey arrays of :mod:`clip2clinic.data.images` and return a
float32 tensor ``(channels, size, size)`` normalised with the image tower's mean and std; a
grey image is replicated to 3 channels for ImageNet-style towers. See docs/images.md for the
choices (mild crops, small rotations, no horizontal flip by default because laterality is part
of the label: "left pleural effusion" must stay on the left).

Randomness comes only from the ``torch.Generator`` passed to :meth:`TrainTransform.__call__`
(or torch's global generator, which a DataLoader seeds per worker); :func:`sample_generator`
gives a per-sample generator so augmentations do not depend on the number of workers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from clip2clinic.data.images import resize_shorter_side


@dataclass(frozen=True)
class Normalization:
    """Per-channel mean and std of an image tower; ``channels`` is ``len(mean)``."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.mean) != len(self.std) or not self.mean:
            raise ValueError(f"mean {self.mean} and std {self.std} must have the same length >= 1")
        if any(s <= 0 for s in self.std):
            raise ValueError(f"std must be positive, got {self.std}")

    @property
    def channels(self) -> int:
        return len(self.mean)


#: ImageNet statistics, as used by Swin/ViT/ResNet towers pretrained on ImageNet.
IMAGENET = Normalization(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
#: A single grey channel mapped to [-1, 1], for towers trained from scratch on 1-channel input.
GREY = Normalization(mean=(0.5,), std=(0.5,))


def to_tensor(image: Image.Image | np.ndarray, normalization: Normalization) -> torch.Tensor:
    """A grey uint8 image as a normalised float32 tensor ``(channels, H, W)``."""
    return normalize(np.asarray(image, dtype=np.float32) / 255.0, normalization)


def normalize(grey: np.ndarray, normalization: Normalization) -> torch.Tensor:
    """Replicate an ``(H, W)`` float32 array in [0, 1] to the tower's channels and normalise.

    The arithmetic is numpy's: torch's intra-op thread pool makes these small per-image
    operations 50x slower on a busy machine (measured: 55 ms instead of 1.1 ms per image).
    """
    mean = np.asarray(normalization.mean, dtype=np.float32)[:, None, None]
    scale = 1.0 / np.asarray(normalization.std, dtype=np.float32)[:, None, None]
    return torch.from_numpy((grey[None] - mean) * scale)


def _grey_pil(image: Image.Image | np.ndarray) -> Image.Image:
    if isinstance(image, Image.Image):
        return image if image.mode == "L" else image.convert("L")
    if image.ndim != 2 or image.dtype != np.uint8:
        raise ValueError(f"expected a 2-D uint8 grey image, got {image.dtype} {image.shape}")
    return Image.fromarray(image, "L")


def centre_square(image: Image.Image | np.ndarray, size: int) -> Image.Image:
    """The central square of a grey image, resized (bilinear) to ``size`` x ``size``: the
    shorter side resized to ``size`` and the longer one cropped to it, done as crop-then-resize
    so a very long image is never blown up first."""
    grey = _grey_pil(image)
    width, height = grey.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    square = grey.crop((left, top, left + side, top + side))
    if side != size:
        square = square.resize((size, size), Image.Resampling.BILINEAR)
    return square


class EvalTransform:
    """Deterministic evaluation transform: :func:`centre_square` at ``size``, normalised."""

    def __init__(self, size: int = 224, normalization: Normalization = IMAGENET) -> None:
        self.size = size
        self.normalization = normalization

    def __call__(self, image: Image.Image | np.ndarray) -> torch.Tensor:
        return to_tensor(centre_square(image, self.size), self.normalization)


@dataclass(frozen=True)
class AugmentConfig:
    """Training augmentation settings (defaults are deliberately mild for chest X-rays).

    ``scale``: fraction of the image area kept by the random crop; ``ratio``: its aspect-ratio
    range; ``degrees``: maximum rotation either way; ``brightness``/``contrast``: maximum
    relative change either way; ``hflip``: probability of a horizontal flip (0: laterality).
    """

    size: int = 224
    scale: tuple[float, float] = (0.8, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    degrees: float = 5.0
    brightness: float = 0.1
    contrast: float = 0.1
    hflip: float = 0.0

    def __post_init__(self) -> None:
        if not 0 < self.scale[0] <= self.scale[1] <= 1:
            raise ValueError(f"scale must satisfy 0 < low <= high <= 1, got {self.scale}")
        if not 0 < self.ratio[0] <= self.ratio[1]:
            raise ValueError(f"ratio must satisfy 0 < low <= high, got {self.ratio}")
        if not 0 <= self.hflip <= 1:
            raise ValueError(f"hflip is a probability, got {self.hflip}")


def _uniform(generator: torch.Generator | None, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator))


def sample_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    """A generator for one sample of one epoch, independent of worker count and order."""
    state = np.random.SeedSequence([seed, epoch, index]).generate_state(1, np.uint64)[0]
    return torch.Generator().manual_seed(int(state) & 0x7FFF_FFFF_FFFF_FFFF)


class TrainTransform:
    """Random resized crop + small rotation (one affine resampling), optional horizontal flip,
    brightness/contrast jitter, then normalisation."""

    def __init__(
        self, config: AugmentConfig = AugmentConfig(), normalization: Normalization = IMAGENET
    ) -> None:
        self.config = config
        self.normalization = normalization

    def crop_box(
        self, width: int, height: int, generator: torch.Generator | None
    ) -> tuple[float, float, float, float]:
        """A random ``(left, top, crop_width, crop_height)`` inside the image covering a fraction
        in ``scale`` of its area, with aspect in ``ratio`` where that fits; where it does not
        (an image far from square), the side that overflows is clamped to the image and the
        other one grows to keep the area, so the crop stays random and never covers too little.
        """
        area = width * height * _uniform(generator, *self.config.scale)
        log_low, log_high = math.log(self.config.ratio[0]), math.log(self.config.ratio[1])
        aspect = math.exp(_uniform(generator, log_low, log_high))
        crop_w, crop_h = math.sqrt(area * aspect), math.sqrt(area / aspect)
        if crop_w > width:
            crop_w, crop_h = width, min(height, area / width)
        elif crop_h > height:
            crop_w, crop_h = min(width, area / height), height
        left = _uniform(generator, 0, width - crop_w)
        top = _uniform(generator, 0, height - crop_h)
        return left, top, crop_w, crop_h

    def __call__(
        self, image: Image.Image | np.ndarray, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        size = self.config.size
        grey = _grey_pil(image)
        if min(grey.size) > 2 * size:  # avoid aliasing: the affine resampling does not filter
            grey = Image.fromarray(resize_shorter_side(np.asarray(grey), math.ceil(size * 8 / 7)))
        left, top, crop_w, crop_h = self.crop_box(grey.width, grey.height, generator)
        angle = math.radians(_uniform(generator, -self.config.degrees, self.config.degrees))
        flip = self.config.hflip > 0 and _uniform(generator, 0, 1) < self.config.hflip
        # Output pixel (u, v) samples input centre + R(angle) @ diag(sx, sy) @ ((u, v) - size/2).
        sx, sy = crop_w / size * (-1 if flip else 1), crop_h / size
        cos, sin = math.cos(angle), math.sin(angle)
        a, b, d, e = cos * sx, -sin * sy, sin * sx, cos * sy
        cx, cy = left + crop_w / 2, top + crop_h / 2
        c = cx - (a + b) * size / 2
        f = cy - (d + e) * size / 2
        warped = grey.transform(
            (size, size),
            Image.Transform.AFFINE,
            (a, b, c, d, e, f),
            resample=Image.Resampling.BILINEAR,
            fillcolor=0,
        )
        pixels = self._jitter(np.asarray(warped, dtype=np.float32) / 255.0, generator)
        return normalize(pixels, self.normalization)

    def _jitter(self, pixels: np.ndarray, generator: torch.Generator | None) -> np.ndarray:
        brightness = _uniform(generator, 1 - self.config.brightness, 1 + self.config.brightness)
        contrast = _uniform(generator, 1 - self.config.contrast, 1 + self.config.contrast)
        pixels = pixels * np.float32(brightness)
        mean = pixels.mean(dtype=np.float32)
        return np.clip((pixels - mean) * np.float32(contrast) + mean, 0.0, 1.0)
