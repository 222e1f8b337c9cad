"""A lateral view: simpler than the frontal one, but with the same patient's findings.

Anterior is on the image's left. The view shows the overlapping lungs, the heart in front and
below, the spine behind, the sternum, the trachea and both hemidiaphragms with the deep
posterior costophrenic sulcus. Effusions fill the posterior sulcus, airspace disease and
lesions sit where their lobe projects, the heart grows with cardiomegaly, devices are drawn as
on the frontal view; pneumothorax, pleural thickening and rib fractures are not shown (as on
many real laterals).
"""

from __future__ import annotations

import numpy as np

from clip2clinic.phantom.anatomy import Habitus
from clip2clinic.phantom.canvas import (
    axes,
    blob,
    blur,
    cubic_curve,
    ramp,
    smooth_noise,
    stroke,
)
from clip2clinic.phantom.findings import strength, visible
from clip2clinic.phantom.truth import ZONE, Finding

_LOBE_SPOT = {"upper": (0.56, 0.3), "mid": (0.36, 0.52), "lower": (0.66, 0.62)}


def draw_lateral(h: Habitus, findings: tuple[Finding, ...], size: int, rng: np.random.Generator,
                 heart_scale: float = 1.0) -> tuple[np.ndarray, list[dict]]:
    """Density map of a lateral view and the regions of the drawn findings."""
    x, y = axes(size)  # a row and a column: boundaries below cost a row or a column
    shift = rng.uniform(-0.02, 0.02)
    x = x - shift
    apex = h.apex + rng.uniform(-0.01, 0.02)
    dome = apex + h.lung_height * rng.uniform(0.92, 1.0)
    # lungs: a dome-topped field from behind the sternum to the spine, floored by the
    # hemidiaphragms, deepest in the posterior sulcus
    middle = dome - 0.1
    height = middle - apex
    across = ((x - 0.5) / 0.31) ** 2
    upward = (np.minimum(y - middle, 0.0) / height) ** 2
    floor = dome - 0.03 + 0.14 * ((x - 0.4) / 0.4) ** 2
    lungs = ramp(np.minimum(0.5 * (1.0 - across - upward), floor - y), 2.5 / size)

    outline = 0.41 - 0.06 * np.clip((apex - y) / apex, 0.0, 1.0)  # narrower neck
    body = h.soft_tissue * (0.6 + 0.4 * np.sqrt(np.clip(1 - ((x - 0.51) / 0.41) ** 2, 0, 1)))
    density = body * ramp(outline - np.abs(x - 0.51), 0.02)
    density -= 0.3 * lungs * (0.55 + 0.45 * blur(lungs, 10))
    density += 0.1 * ramp(y - floor, 0.03) * ramp(outline - np.abs(x - 0.51), 0.03)
    discs = 0.7 + 0.3 * np.cos(np.pi * (y - apex) / (h.rib_spacing * 0.95)) ** 2
    density += 0.1 * ramp(0.04 - np.abs(x - 0.86), 0.01) * discs  # vertebral bodies
    stroke(density, np.array([(0.15, apex + 0.08), (0.18, apex + 0.45)]), 0.01, 0.07)  # sternum
    stroke(density, np.array([(0.5, -0.01), (0.56, apex + 0.25)]), 0.012, -0.06)  # trachea
    density += 0.06 * lungs * smooth_noise(rng, size, max(size // 12, 4))
    findings = tuple(visible(findings))
    regions = []

    heart_c = (0.38 + shift, dome - 0.08)
    heart_r = (0.14 * heart_scale, 0.12 * heart_scale)
    blob(density, heart_c, heart_r, 0.26, edge=0.2, mask=lungs)
    for f in findings:
        g = f.severity - 1
        box = None
        if f.observation == "Pleural Effusion":
            rise = (0.05, 0.1, 0.18)[g] if f.presence == "positive" else 0.04
            surface = dome + 0.12 - rise * (1.0 + 1.5 * np.clip((x - 0.4) / 0.4, 0, 1))
            fluid = ramp(y - surface, 0.02) * lungs * (x > 0.4)
            density += 0.28 * strength(f) * fluid
            box = [0.4, dome - rise, 0.8, dome + 0.14]
        elif f.observation in ("Consolidation", "Pneumonia", "Lung Lesion", "Lung Opacity",
                               "Atelectasis", "Edema"):
            zone = {"Edema": "upper", "Atelectasis": "lower"}.get(
                f.observation, ZONE.get(f.location or "", "lower"))
            cx, cy = _LOBE_SPOT[zone]
            cx, cy = cx + shift, cy + (apex - 0.12)
            if f.observation == "Edema":
                cx, cy = 0.55 + shift, apex + 0.27
            r = 0.03 if f.observation == "Lung Lesion" else 0.05 + 0.02 * g
            value = 0.25 if f.observation in ("Consolidation", "Lung Lesion") else 0.14
            edge = 0.2 if f.observation == "Lung Lesion" else 0.8
            blob(density, (cx, cy), (r, r * 0.8), value * strength(f), edge=edge, mask=lungs)
            box = [cx - r, cy - r, cx + r, cy + r]
        if box:
            regions.append({"observation": f.observation,
                            "boxes": [[round(float(np.clip(v, 0, 1)), 4) for v in box]]})
    _lateral_devices(density, findings, apex, dome, shift, rng)
    return density.astype(np.float32), regions


def _lateral_devices(density: np.ndarray, findings: tuple[Finding, ...], apex: float,
                     dome: float, shift: float, rng: np.random.Generator) -> None:
    for f in findings:
        if f.observation != "Support Devices":
            continue
        if f.kind == "et_tube":
            stroke(density, np.array([(0.49 + shift, -0.01), (0.53 + shift, apex + 0.17)]),
                   0.0045, 0.3)
        elif f.kind == "ng_tube":
            path = cubic_curve((0.58 + shift, -0.01), (0.62 + shift, apex + 0.3),
                               (0.6 + shift, dome), (0.4 + shift, dome + 0.1), n=12)
            stroke(density, path, 0.0035, 0.3)
        elif f.kind in ("central_line", "picc"):
            path = cubic_curve((0.45 + shift, -0.01), (0.42 + shift, apex + 0.1),
                               (0.45 + shift, apex + 0.2), (0.46 + shift, apex + 0.28), n=10)
            stroke(density, path, 0.003, 0.3)
        elif f.kind == "pacemaker":
            blob(density, (0.2 + shift, apex + 0.1), (0.02, 0.035), 0.6, edge=0.12)
            path = cubic_curve((0.21 + shift, apex + 0.1), (0.35 + shift, apex + 0.15),
                               (0.45 + shift, apex + 0.3), (0.35 + shift, dome - 0.05), n=12)
            stroke(density, path, 0.003, 0.4)
        elif f.kind == "sternotomy":
            for yy in np.linspace(apex + 0.12, apex + 0.42, int(rng.integers(5, 8))):
                stroke(density, np.array([(0.19 + shift, yy)]), 0.006, 0.4)
        elif f.kind == "chest_tube":
            path = cubic_curve((0.78 + shift, dome - 0.05), (0.72 + shift, dome - 0.2),
                               (0.66 + shift, apex + 0.2), (0.6 + shift, apex + 0.08), n=12)
            stroke(density, path, 0.006, 0.3)
