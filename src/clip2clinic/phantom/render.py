"""From a study's truth to 8-bit grey-scale pixels: anatomy, findings, devices, exposure."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from clip2clinic.phantom.anatomy import Habitus, draw_frontal, sample_frontal
from clip2clinic.phantom.canvas import blur, soften
from clip2clinic.phantom.devices import draw_devices
from clip2clinic.phantom.findings import draw_findings, frontal_changes, rib_breaks
from clip2clinic.phantom.lateral import draw_lateral
from clip2clinic.phantom.truth import Finding

MARKINGS = 0.22  # contrast of the lung vessels
_LEVELS = 4095  # quantisation before the gamma look-up table


@lru_cache(maxsize=4)
def _grain(size: int) -> np.ndarray:
    """A fixed bank of unit Gaussian noise, twice the image size; images crop it at random
    offsets (drawing fresh noise per image would take longer than the whole drawing)."""
    rng = np.random.default_rng(np.random.SeedSequence([size, 7]))
    return rng.standard_normal((2 * size, 2 * size), dtype=np.float32)


def expose(density: np.ndarray, view: str, rng: np.random.Generator) -> np.ndarray:
    """Radiograph look: unsharpness, scatter (portable AP), window, gamma, quantum noise."""
    size = density.shape[0]
    image = soften(density)
    portable = view == "AP"
    if portable:
        image = 0.85 * image + 0.15 * blur(image, 16) + 0.03
    low = rng.uniform(-0.04, 0.02)
    high = rng.uniform(0.82, 0.95) if portable else rng.uniform(0.78, 0.9)
    levels = np.clip((image - low) * (_LEVELS / (high - low)), 0, _LEVELS).astype(np.intp)
    gamma = np.linspace(0.0, 1.0, _LEVELS + 1, dtype=np.float32) ** rng.uniform(0.85, 1.2)
    image = gamma[levels]
    noise = rng.uniform(0.018, 0.03) if portable else rng.uniform(0.008, 0.016)
    dy, dx = rng.integers(0, size, 2)
    image += _grain(size)[dy:dy + size, dx:dx + size] * noise
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def render_frontal(h: Habitus, findings: tuple[Finding, ...], view: str, size: int,
                   rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """A PA or AP image of the findings, with its landmarks and the regions of its signs.

    Anatomy, findings, devices and exposure draw from separate streams of ``rng``, so the
    same generator with and without a finding gives the same patient, noise and exposure.
    """
    anatomy, signs, devices, exposure = rng.spawn(4)
    geometry = sample_frontal(h, anatomy, view, **frontal_changes(findings, signs, view))
    breaks = rib_breaks(findings, signs)
    canvas = draw_frontal(geometry, size, anatomy, breaks)
    regions = draw_findings(canvas, findings, breaks, signs)
    lungs = canvas.lungs[0] + canvas.lungs[1]
    canvas.density += MARKINGS * canvas.markings * canvas.keep_markings * lungs
    regions += draw_devices(canvas, findings, devices)
    return expose(canvas.density, view, exposure), {"landmarks": geometry.landmarks(),
                                                    "regions": regions}


def render_lateral(h: Habitus, findings: tuple[Finding, ...], size: int,
                   rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """A lateral image of the findings and the regions of its signs."""
    anatomy, signs, exposure = rng.spawn(3)
    ctr = frontal_changes(findings, signs, "LATERAL").get("ctr")
    density, regions = draw_lateral(h, findings, size, anatomy,
                                    heart_scale=ctr / h.ctr if ctr else 1.0)
    return expose(density, "LATERAL", exposure), {"landmarks": {}, "regions": regions}


def render_view(h: Habitus, findings: tuple[Finding, ...], view: str, size: int,
                rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Dispatch on the MIMIC ViewPosition (PA, AP, LATERAL)."""
    if view == "LATERAL":
        return render_lateral(h, findings, size, rng)
    return render_frontal(h, findings, view, size, rng)
