"""Loading chest X-ray images as 2-D uint8 grey arrays, and the resized-image cache.

One entry point, :func:`load_image`, reads JPEG, 8- and 16-bit PNG (and anything else Pillow
decodes) and DICOM (through pydicom), and returns a ``(height, width)`` uint8 array in which
bright means dense (bone white), whatever the file's photometric convention. A file that cannot
be read raises :class:`ImageLoadError` naming the file and the reason; :func:`load_many` turns
those errors into a per-file report so that one bad image never stops a batch.

Grey-level conversion:

- 8-bit grey images are returned unchanged; binary (mode "1") images become 0/255.
- 16-bit (and 32-bit integer or float) images are scaled linearly from their real range
  (minimum to maximum pixel value) to 0-255: a 12-bit image stored in a 16-bit PNG uses the whole
  8-bit range instead of the bottom 1/16 of it. A constant image is scaled by its dtype's range.
- Colour images (RGB, RGBA, palette, grey + alpha) are converted with Pillow's ITU-R 601-2 luma
  transform; alpha is dropped.
- DICOM: the stored values (pydicom masks them to BitsStored) go through the Modality LUT
  (RescaleSlope/RescaleIntercept or a Modality LUT Sequence), then the first VOI window
  (WindowCenter/WindowWidth, with VOILUTFunction LINEAR, LINEAR_EXACT or SIGMOID per DICOM
  PS3.3 C.11.2.1) or VOI LUT when present, else the real range as above. MONOCHROME1 (where
  low values are bright) is inverted last, so MONOCHROME1 and MONOCHROME2 files with the same
  stored values read as inverses of each other. Multi-frame files give their first frame.
"""

from __future__ import annotations

import io
import logging
import os
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from clip2clinic.io import write_cache_file

if TYPE_CHECKING:
    import pydicom

log = logging.getLogger(__name__)

DICOM_SUFFIXES = (".dcm", ".dicom", ".dic")

#: Cached images keep their aspect ratio; the shorter side becomes this many pixels.
DEFAULT_SHORTER_SIDE = 256

#: The longer side of a cached image never exceeds this; for extreme aspect ratios (a 4 x 3000
#: strip) the shorter side then ends up below ``DEFAULT_SHORTER_SIDE``.
DEFAULT_MAX_LONGER_SIDE = 2048


class ImageLoadError(ValueError):
    """An image file cannot be read; ``path`` and ``reason`` say which file and why."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Read one image file as a 2-D uint8 grey array (bright = dense).

    DICOM is recognised by its "DICM" magic or a .dcm/.dicom suffix, everything else goes to
    Pillow. A ``SHARD.tar#MEMBER`` path reads one member of an image-cache shard (see
    :mod:`clip2clinic.data.shards`). Raises :class:`ImageLoadError` for a missing, empty,
    truncated, corrupt or unsupported file.
    """
    return _read(path, None)[0]


#: A JPEG decoded at a reduced DCT scale keeps at least this many times the target's pixels
#: per side. 1: the 1/8 scale (each decoded pixel the mean of an 8 x 8 block, a box filter)
#: wherever the target allows it; measured against the full decode in docs/images.md.
DRAFT_MARGIN = 1


def load_resized(
    path: str | os.PathLike,
    shorter_side: int = DEFAULT_SHORTER_SIDE,
    max_longer_side: int = DEFAULT_MAX_LONGER_SIDE,
    draft_margin: int = DRAFT_MARGIN,
) -> np.ndarray:
    """:func:`load_image` then :func:`resize_shorter_side`, with the same result size.

    A JPEG at least twice the target's size is decoded in the DCT domain at a reduced scale
    (Pillow's ``draft``: 1/2, 1/4 or 1/8), keeping at least ``draft_margin`` times the
    target's pixels per side, then resized with the same antialiased bilinear filter: a
    MIMIC-size JPEG (2,544 x 3,056 to a 256 px shorter side) decodes 64x fewer pixels. PNG and
    DICOM are decoded in full as by :func:`load_image`.
    """
    return load_resized_from(path, shorter_side, max_longer_side, draft_margin)[0]


def load_resized_from(
    path: str | os.PathLike,
    shorter_side: int = DEFAULT_SHORTER_SIDE,
    max_longer_side: int = DEFAULT_MAX_LONGER_SIDE,
    draft_margin: int = DRAFT_MARGIN,
) -> tuple[np.ndarray, tuple[int, int]]:
    """:func:`load_resized`, and the source's ``(height, width)`` (to tell an upsampled image)."""
    return _read(path, (shorter_side, max_longer_side), draft_margin)


def _read(path: str | os.PathLike, resize: tuple[int, int] | None,
          draft_margin: int = DRAFT_MARGIN) -> tuple[np.ndarray, tuple[int, int]]:
    """Read ``path``; with ``resize`` (shorter side, longer-side cap) also resize it. Returns
    the image and the source's ``(height, width)``."""
    from clip2clinic.data.shards import is_shard_member, read_member  # imports this module

    if is_shard_member(path):
        image = decode_image(path, read_member(path))
        resized = image if resize is None else resize_shorter_side(image, *resize)
        return resized, image.shape
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            head = handle.read(132)
    except FileNotFoundError:
        raise ImageLoadError(path, "no such file") from None
    except IsADirectoryError:
        raise ImageLoadError(path, "is a directory, not an image file") from None
    except OSError as exc:
        raise ImageLoadError(path, f"cannot open ({exc.strerror or exc})") from None
    if not head:
        raise ImageLoadError(path, "empty file (0 bytes)")
    if head[128:132] == b"DICM" or path.suffix.lower() in DICOM_SUFFIXES:
        image = _load_dicom(path)
        source = image.shape
        if resize is not None and image.ndim == 2 and min(image.shape) >= 1:
            image = resize_shorter_side(image, *resize)
    else:
        image, source = _load_with_pillow(path, resize, draft_margin=draft_margin)
    if image.ndim != 2 or min(image.shape) < 1:
        raise ImageLoadError(path, f"unexpected pixel array shape {image.shape}")
    return image, source


@contextmanager
def _strict_decoding() -> Iterator[None]:
    """Make Pillow raise on truncated files even if some other code relaxed it globally."""
    previous = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        yield
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = previous


def decode_image(name: str | os.PathLike, data: bytes) -> np.ndarray:
    """An image file's bytes (e.g. an image-cache shard member, ``name`` naming it in errors)
    as a 2-D uint8 grey array, as :func:`load_image` reads a file."""
    if not data:
        raise ImageLoadError(name, "empty file (0 bytes)")
    return _load_with_pillow(name, None, io.BytesIO(data))[0]


def _load_with_pillow(
    path: str | os.PathLike,
    resize: tuple[int, int] | None,
    source: io.BytesIO | None = None,
    draft_margin: int = DRAFT_MARGIN,
) -> tuple[np.ndarray, tuple[int, int]]:
    """The grey image (resized to ``resize`` when given) and the file's ``(height, width)``."""
    try:
        with _strict_decoding(), Image.open(source or path) as image:
            size, target = (image.height, image.width), None
            if resize is not None:
                target = shorter_side_size(image.height, image.width, *resize)
                if image.format == "JPEG":
                    image.draft(image.mode, (draft_margin * target[1], draft_margin * target[0]))
            image.load()
            grey = pil_to_grey(image)
        return (grey if target is None else resize_to(grey, target)), size
    except UnidentifiedImageError:
        raise ImageLoadError(path, "not a recognised image format") from None
    except Image.DecompressionBombError as exc:
        raise ImageLoadError(path, f"image too large ({exc})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        reason = str(exc) or type(exc).__name__
        if "truncated" in reason or isinstance(exc, EOFError):
            reason = f"truncated or incomplete file ({reason})"
        raise ImageLoadError(path, f"cannot decode: {reason}") from None


def pil_to_grey(image: Image.Image) -> np.ndarray:
    """A decoded Pillow image as a 2-D uint8 grey array (see the module notes)."""
    if image.mode == "L":
        return np.asarray(image, dtype=np.uint8).copy()
    if image.mode == "1":
        return np.asarray(image, dtype=np.uint8) * np.uint8(255)
    if image.mode.startswith("I") or image.mode == "F":
        return scale_to_uint8(np.asarray(image))
    return np.asarray(image.convert("L"), dtype=np.uint8).copy()


def scale_to_uint8(values: np.ndarray) -> np.ndarray:
    """Linearly map an array's real (min..max) range onto 0-255.

    A constant array is mapped by its dtype's nominal range instead (all-zero stays 0).
    """
    values = np.asarray(values)
    if values.dtype == np.uint8:
        return values.copy()
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        if np.issubdtype(values.dtype, np.integer):
            info = np.iinfo(values.dtype)
            lo, hi = float(min(info.min, 0)), float(info.max)
        else:
            lo, hi = 0.0, 1.0
    scaled = (values.astype(np.float32) - lo) * (255.0 / (hi - lo))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _load_dicom(path: Path) -> np.ndarray:
    import pydicom  # slow to import: only where a DICOM is read
    from pydicom.errors import InvalidDicomError
    from pydicom.pixels import apply_modality_lut

    try:
        ds = pydicom.dcmread(path)
    except InvalidDicomError as exc:
        raise ImageLoadError(path, f"not a DICOM file ({exc})") from None
    except (OSError, EOFError, ValueError, KeyError, TypeError) as exc:
        raise ImageLoadError(path, f"unreadable DICOM ({exc})") from None
    if not any(tag in ds for tag in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        raise ImageLoadError(path, "DICOM has no pixel data (truncated or a non-image object)")
    try:
        pixels = ds.pixel_array
    except (ValueError, RuntimeError, NotImplementedError, AttributeError, OSError) as exc:
        raise ImageLoadError(path, f"cannot decode DICOM pixel data ({exc})") from None
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames > 1:
        pixels = pixels[0]
    if pixels.ndim == 3:  # colour: pydicom returns RGB for RGB and YBR data
        luma = pixels[..., :3].astype(np.float32) @ np.float32([0.299, 0.587, 0.114])
        if pixels.dtype == np.uint8:
            return np.clip(np.rint(luma), 0, 255).astype(np.uint8)
        return scale_to_uint8(luma)
    values = apply_modality_lut(pixels, ds)
    grey = _apply_voi(values, ds)
    if photometric == "MONOCHROME1":
        grey = 255 - grey
    return grey


def _first(value: object) -> float:
    """The first value of a DICOM multi-valued number (or the number itself)."""
    from pydicom.multival import MultiValue

    if isinstance(value, (list, tuple, MultiValue)):
        value = value[0]
    return float(value)


def _apply_voi(values: np.ndarray, ds: pydicom.Dataset) -> np.ndarray:
    """VOI windowing to uint8: the first window, else the VOI LUT, else the real range."""
    center, width = ds.get("WindowCenter"), ds.get("WindowWidth")
    if center is not None and width is not None and _first(width) >= 1:
        return window_to_uint8(
            values, _first(center), _first(width), str(ds.get("VOILUTFunction", "LINEAR"))
        )
    if "VOILUTSequence" in ds:
        from pydicom.pixels import apply_voi_lut

        lut_values = apply_voi_lut(values, ds, index=0, prefer_lut=True)
        bits = int(ds.VOILUTSequence[0].LUTDescriptor[2])
        return np.clip(np.rint(lut_values * (255.0 / (2**bits - 1))), 0, 255).astype(np.uint8)
    return scale_to_uint8(values)


def window_to_uint8(
    values: np.ndarray, center: float, width: float, function: str = "LINEAR"
) -> np.ndarray:
    """Apply a DICOM VOI window (PS3.3 C.11.2.1.2/3) mapping into 0-255."""
    x = np.asarray(values, dtype=np.float64)
    function = function.upper()
    if function == "SIGMOID":
        fraction = 1.0 / (1.0 + np.exp(-4.0 * (x - center) / width))
    elif function == "LINEAR_EXACT":
        fraction = (x - center) / width + 0.5
    else:  # LINEAR, the default
        fraction = (x - (center - 0.5)) / (width - 1.0) + 0.5 if width > 1 else (x >= center)
    return np.clip(np.rint(np.clip(fraction, 0.0, 1.0) * 255.0), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- batches


@dataclass
class LoadReport:
    """What a batch load did: how many files loaded and, per failed file, the reason."""

    loaded: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return len(self.failures)

    def reasons(self) -> dict[str, int]:
        """Count of failures per reason (the reason text without the file name)."""
        counts: dict[str, int] = {}
        for _, reason in self.failures:
            counts[reason] = counts.get(reason, 0) + 1
        return counts


def load_many(
    paths: Iterable[str | os.PathLike], report: LoadReport | None = None
) -> Iterator[tuple[str, np.ndarray]]:
    """Yield ``(path, image)`` for every readable file; unreadable ones are logged, counted in
    ``report`` (when given) and skipped, never raised."""
    for path in paths:
        try:
            image = load_image(path)
        except ImageLoadError as exc:
            log.warning("skipping image %s", exc)
            if report is not None:
                report.failures.append((exc.path, exc.reason))
            continue
        if report is not None:
            report.loaded += 1
        yield str(path), image


# --------------------------------------------------------------------------- resizing and cache


def shorter_side_size(
    height: int,
    width: int,
    shorter_side: int = DEFAULT_SHORTER_SIDE,
    max_longer_side: int = DEFAULT_MAX_LONGER_SIDE,
) -> tuple[int, int]:
    """Target ``(height, width)``: the shorter side becomes ``shorter_side``, aspect kept,
    the longer side capped at ``max_longer_side``; never below 1 pixel."""
    scale = shorter_side / min(height, width)
    scale = min(scale, max_longer_side / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def resize_shorter_side(
    image: np.ndarray,
    shorter_side: int = DEFAULT_SHORTER_SIDE,
    max_longer_side: int = DEFAULT_MAX_LONGER_SIDE,
) -> np.ndarray:
    """Resize a 2-D uint8 image (antialiased bilinear) so its shorter side is ``shorter_side``.

    The aspect ratio is kept; see :func:`shorter_side_size` for the cap on the longer side.
    """
    return resize_to(image, shorter_side_size(*image.shape, shorter_side, max_longer_side))


def resize_to(image: np.ndarray, target: tuple[int, int]) -> np.ndarray:
    """A 2-D uint8 image resized to ``target`` ``(height, width)`` (antialiased bilinear)."""
    if target == image.shape:
        return image
    resized = Image.fromarray(image, "L").resize((target[1], target[0]), Image.Resampling.BILINEAR)
    return np.asarray(resized)


def save_grey_png(image: np.ndarray, target: str | os.PathLike) -> None:
    """Write a 2-D uint8 array as an 8-bit grey PNG, atomically (not fsynced: the image cache
    is checked when reused)."""
    write_cache_file(png_bytes(image), target)


def png_bytes(image: np.ndarray) -> bytes:
    """A 2-D uint8 array encoded as the cache's 8-bit grey PNG: zlib level 1 with the
    run-length strategy (``Z_RLE``), smaller than level 6 on radiographs and faster than
    level 1's default strategy (measured in BENCHMARKS.md); lossless either way."""
    buffer = io.BytesIO()
    Image.fromarray(image, "L").save(buffer, format="PNG", compress_level=1,
                                     compress_type=zlib.Z_RLE)
    return buffer.getvalue()


@dataclass(frozen=True)
class CachedImage:
    """What :func:`cache_resized` did: the cached ``shape`` ``(height, width)`` and the
    source's (None where an existing cached file was kept without reading the source)."""

    shape: tuple[int, int]
    source_shape: tuple[int, int] | None = None

    @property
    def upsampled(self) -> bool:
        """Whether the cached image is larger than its source (known sources only)."""
        return self.source_shape is not None and min(self.shape) > min(self.source_shape)


def cache_resized(
    source: str | os.PathLike,
    target: str | os.PathLike,
    shorter_side: int = DEFAULT_SHORTER_SIDE,
    max_longer_side: int = DEFAULT_MAX_LONGER_SIDE,
) -> CachedImage:
    """Load ``source``, resize it to ``shorter_side`` and write it to ``target`` as an 8-bit
    grey PNG (atomically). Returns the cached and the source sizes (:class:`CachedImage`).

    An existing ``target`` that decodes is kept as it is (the cache is idempotent; delete it to
    rebuild); a damaged one is made again. Raises :class:`ImageLoadError` when ``source``
    cannot be read.
    """
    target = Path(target)
    if target.is_file():
        try:
            with Image.open(target) as cached:
                cached.verify()
                return CachedImage((cached.height, cached.width))
        except (OSError, SyntaxError):
            log.warning("%s: damaged cached image; making it again", target)
    image, source_shape = _read(source, (shorter_side, max_longer_side))
    save_grey_png(image, target)
    return CachedImage(image.shape, source_shape)
