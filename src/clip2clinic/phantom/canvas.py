"""Vectorised drawing primitives on a square float canvas in normalised coordinates.

Coordinates are fractions of the image side: ``x`` grows to the right of the image, ``y``
downwards, both in [0, 1]. Every primitive works on whole arrays (or the bounding box of a
stroke), never pixel by pixel, so a 224 px radiograph takes a few milliseconds.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image

Points = np.ndarray  # (n, 2) array of (x, y) in normalised coordinates


@lru_cache(maxsize=8)
def grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates ``(x, y)`` of a ``size`` x ``size`` canvas, read-only."""
    axis = (np.arange(size, dtype=np.float32) + 0.5) / size
    x, y = np.meshgrid(axis, axis)
    x.flags.writeable = False
    y.flags.writeable = False
    return x, y


@lru_cache(maxsize=8)
def axes(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates as a row ``x`` (1, size) and a column ``y`` (size, 1): they
    broadcast to the canvas, so functions of one coordinate cost a row, not an image."""
    axis = (np.arange(size, dtype=np.float32) + 0.5) / size
    x, y = axis[None, :].copy(), axis[:, None].copy()
    x.flags.writeable = False
    y.flags.writeable = False
    return x, y


def ramp(signed_distance, width: float):
    """A soft inside-mask: 0 outside, 1 inside, linear across ``width`` around the border."""
    out = np.multiply(signed_distance, np.float32(1.0 / width))
    out += np.float32(0.5)
    return np.minimum(np.maximum(out, 0.0, out=out), 1.0, out=out)


@lru_cache(maxsize=32)
def _resampler(n_in: int, n_out: int, method: int) -> np.ndarray:
    """The (n_in, n_out) matrix of Pillow's 1-D resampling, so that a separable resize of an
    image ``X`` is ``M.T @ X @ M``: two small matrix products instead of a Pillow call."""
    identity = Image.fromarray(np.eye(n_in, dtype=np.float32), "F")
    matrix = np.asarray(identity.resize((n_out, n_in), method), dtype=np.float32).copy()
    matrix.flags.writeable = False
    return matrix


def resize(image: np.ndarray, size: int, method: int = Image.BICUBIC) -> np.ndarray:
    """A square float image resampled to ``size`` x ``size`` (Pillow's filters)."""
    matrix = _resampler(image.shape[0], size, method)
    return matrix.T @ image.astype(np.float32, copy=False) @ matrix


def smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Smooth random field in [0, 1]: ``cells`` x ``cells`` uniform noise, bicubic-upsampled."""
    return resize(rng.random((cells, cells), dtype=np.float32), size)


def soften(image: np.ndarray) -> np.ndarray:
    """A 3 x 3 binomial blur ([1, 2, 1] / 4 along each axis, edges repeated)."""
    padded = np.pad(image.astype(np.float32, copy=False), 1, mode="edge")
    rows = padded[:-2] + 2.0 * padded[1:-1] + padded[2:]
    return (rows[:, :-2] + 2.0 * rows[:, 1:-1] + rows[:, 2:]) * np.float32(1 / 16)


def blur(image: np.ndarray, factor: int) -> np.ndarray:
    """Cheap low-pass: box-downsample by ``factor`` and bicubic-upsample back."""
    size = image.shape[0]
    return resize(resize(image, max(size // factor, 2), Image.BOX), size)


def quadratic_curve(p0: tuple, p1: tuple, p2: tuple, n: int = 16) -> Points:
    """Points along the quadratic Bezier curve with control point ``p1``."""
    t = np.linspace(0.0, 1.0, n, dtype=np.float32)[:, None]
    a, b, c = (np.asarray(p, dtype=np.float32) for p in (p0, p1, p2))
    return (1 - t) ** 2 * a + 2 * (1 - t) * t * b + t**2 * c


def cubic_curve(p0: tuple, p1: tuple, p2: tuple, p3: tuple, n: int = 20) -> Points:
    """Points along the cubic Bezier curve through ``p0`` and ``p3``."""
    t = np.linspace(0.0, 1.0, n, dtype=np.float32)[:, None]
    a, b, c, d = (np.asarray(p, dtype=np.float32) for p in (p0, p1, p2, p3))
    return (1 - t) ** 3 * a + 3 * (1 - t) ** 2 * t * b + 3 * (1 - t) * t**2 * c + t**3 * d


def _box(size: int, lo: np.ndarray, hi: np.ndarray, margin: float) -> tuple[slice, slice]:
    x0, y0 = np.floor((lo - margin) * size).astype(int)
    x1, y1 = np.ceil((hi + margin) * size).astype(int)
    return slice(max(y0, 0), min(y1, size)), slice(max(x0, 0), min(x1, size))


def stroke(canvas: np.ndarray, points: Points, width: float, value: float) -> None:
    """Add ``value`` along a polyline of half-width ``width`` (soft edge), in place.

    Works on the bounding box of the polyline only; a point list of one entry draws a dot.
    """
    size = canvas.shape[0]
    pts = np.asarray(points, dtype=np.float32)
    rows, cols = _box(size, pts.min(axis=0), pts.max(axis=0), width + 2.0 / size)
    if rows.start >= rows.stop or cols.start >= cols.stop:
        return
    x, y = axes(size)
    px, py = x[:, cols][None], y[rows][None]  # (1, 1, w) and (1, h, 1)
    a = pts[:-1] if len(pts) > 1 else pts
    seg = (pts[1:] if len(pts) > 1 else pts) - a
    ax, ay = a[:, 0, None, None], a[:, 1, None, None]
    dx, dy = seg[:, 0, None, None], seg[:, 1, None, None]
    length2 = np.maximum(dx * dx + dy * dy, np.float32(1e-12))
    t = np.clip(((px - ax) * dx + (py - ay) * dy) / length2, 0.0, 1.0)  # (segments, h, w)
    dist2 = ((px - ax - t * dx) ** 2 + (py - ay - t * dy) ** 2).min(axis=0)
    canvas[rows, cols] += value * ramp(width - np.sqrt(dist2), 1.5 / size)


def ellipse_field(
    center: tuple[float, float], radii: tuple[float, float], angle: float = 0.0, size: int = 0
) -> tuple[np.ndarray, tuple[slice, slice]]:
    """Normalised elliptical radius (1 on the border) over the ellipse's bounding box.

    Returns the field and the (rows, cols) slices of the canvas it covers.
    """
    reach = max(radii) * 1.6
    cx, cy = center
    rows, cols = _box(size, np.array([cx, cy]), np.array([cx, cy]), reach)
    x, y = axes(size)
    dx, dy = x[:, cols] - cx, y[rows] - cy
    cos, sin = np.cos(angle), np.sin(angle)
    u = (dx * cos + dy * sin) / radii[0]
    v = (-dx * sin + dy * cos) / radii[1]
    return np.sqrt(u * u + v * v), (rows, cols)


def blob(
    canvas: np.ndarray,
    center: tuple[float, float],
    radii: tuple[float, float],
    value: float,
    edge: float = 0.25,
    angle: float = 0.0,
    roughness: np.ndarray | None = None,
    mask: np.ndarray | None = None,
) -> None:
    """Add a soft ellipse of ``value`` (border softness ``edge`` in radius units), in place.

    ``roughness`` (a full-canvas field around 0) perturbs the border, making the shape
    irregular; ``mask`` (full canvas, 0..1) confines it, e.g. to a lung.
    """
    rho, (rows, cols) = ellipse_field(center, radii, angle, canvas.shape[0])
    inside = 1.0 - rho
    if roughness is not None:
        inside = inside + roughness[rows, cols]
    shape = ramp(inside, edge)
    if mask is not None:
        shape = shape * mask[rows, cols]
    canvas[rows, cols] += value * shape
