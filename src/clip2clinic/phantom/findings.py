"""Visible signs of the CheXpert observations on a frontal view, placed by the truth.

Each sign follows its finding's side, lobe and severity; an uncertain finding is drawn faint
(or not at all, when the truth says it is not drawn). Heart size, mediastinal width and
hemidiaphragm height change the geometry itself (:func:`frontal_changes`); rib fractures break
a rib while ribs are drawn (:func:`rib_breaks`); everything else is added to the canvas by
:func:`draw_findings`, which returns where each sign is.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from clip2clinic.phantom.anatomy import (
    LEFT,
    RIGHT,
    SIDE_INDEX,
    SIGN,
    Canvas,
    Frontal,
    RibBreak,
    lung_mask,
)
from clip2clinic.phantom.canvas import blob, grid, ramp, smooth_noise, stroke
from clip2clinic.phantom.truth import ZONE, Finding

Box = list[float]

_LOBE_SPOT = {"upper": (0.5, 0.25), "mid": (0.22, 0.6), "lower": (0.5, 0.8)}


def strength(f: Finding) -> float:
    """How strongly a finding is drawn: full when positive, faint when uncertain."""
    return 1.0 if f.presence == "positive" else 0.55


def visible(findings: tuple[Finding, ...]) -> list[Finding]:
    return [f for f in findings if f.drawn]


def _sides(f: Finding) -> tuple[int, ...]:
    if f.laterality == "bilateral":
        return RIGHT, LEFT
    return (SIDE_INDEX[f.laterality],) if f.laterality in SIDE_INDEX else (RIGHT,)


def frontal_changes(findings: tuple[Finding, ...], rng: np.random.Generator, view: str) -> dict:
    """Keyword arguments of :func:`anatomy.sample_frontal` that the findings imply."""
    changes: dict = {}
    lift = [0.0, 0.0]
    for f in visible(findings):
        g = f.severity - 1
        if f.observation == "Cardiomegaly":
            ctr = (0.555, 0.61, 0.67)[g] if f.presence == "positive" else 0.515
            changes["ctr"] = (ctr + rng.uniform(-0.012, 0.012)) * (1.03 if view == "AP" else 1.0)
        elif f.observation == "Enlarged Cardiomediastinum":
            scale = (1.5, 1.75, 2.05)[g] if f.presence == "positive" else 1.3
            changes["mediastinum_scale"] = scale * rng.uniform(0.95, 1.05)
        elif f.observation == "Atelectasis":
            for side in _sides(f):
                lift[side] = (0.015, 0.025, 0.035)[g] * strength(f)
    changes["dome_lift"] = tuple(lift)
    return changes


def rib_breaks(findings: tuple[Finding, ...], rng: np.random.Generator) -> tuple[RibBreak, ...]:
    """The fractures to draw into the ribs."""
    return tuple(
        RibBreak(side=_sides(f)[0], rib=f.number or 6, at=float(rng.uniform(0.68, 0.84)),
                 step=float(rng.uniform(0.45, 0.6)) * strength(f),
                 gap=float(rng.uniform(0.02, 0.03)), callus=f.kind == "healed")
        for f in visible(findings) if f.observation == "Fracture"
    )


def _clip_box(x0: float, y0: float, x1: float, y1: float) -> Box:
    return [round(float(np.clip(v, 0.0, 1.0)), 4) for v in (min(x0, x1), y0, max(x0, x1), y1)]


def _mask_box(mask: np.ndarray, threshold: float = 0.5) -> Box:
    """Normalised bounding box of where ``mask`` exceeds ``threshold``."""
    rows = np.flatnonzero((mask > threshold).any(axis=1))
    cols = np.flatnonzero((mask > threshold).any(axis=0))
    if rows.size == 0:
        return [0.0, 0.0, 0.0, 0.0]
    size = mask.shape[0]
    return _clip_box(cols[0] / size, rows[0] / size, (cols[-1] + 1) / size, (rows[-1] + 1) / size)


def _effusion(c: Canvas, f: Finding, rng: np.random.Generator) -> list[Box]:
    fr, size = c.frontal, c.size
    boxes = []
    for side in _sides(f):
        height = fr.cp[side] - fr.apex
        level = ((0.16, 0.28, 0.45)[f.severity - 1] if f.presence == "positive" else 0.1)
        rise = level * height * rng.uniform(0.9, 1.1)
        x, y = grid(size)
        lateral = fr.lateral(side, y)
        t = np.clip(SIGN[side] * (x - fr.cx) / lateral, 0.0, 1.0)
        surface = fr.cp[side] - rise * (0.6 + 0.4 * t * t)  # meniscus: higher laterally
        fluid = ramp(y - surface, 0.03) * c.lungs[side]
        c.density += 0.44 * strength(f) * fluid
        c.keep_markings *= 1.0 - fluid
        boxes.append(_mask_box(fluid))
    return boxes


def _pneumothorax(c: Canvas, f: Finding, rng: np.random.Generator) -> list[Box]:
    fr, size = c.frontal, c.size
    side = _sides(f)[0]
    gap = (0.03, 0.055, 0.09)[f.severity - 1] if f.presence == "positive" else 0.022
    gap *= rng.uniform(0.9, 1.15)
    collapsed = lung_mask(fr, side, size, apex_drop=1.3 * gap, lateral_shrink=gap)
    air = np.clip(c.lungs[side] - collapsed, 0.0, 1.0)
    c.density -= 0.07 * air
    c.keep_markings *= 1.0 - air
    c.density += 0.12 * strength(f) * 4.0 * collapsed * (1.0 - collapsed) * c.lungs[side]
    return [_mask_box(air)]


def _edema(c: Canvas, f: Finding, rng: np.random.Generator) -> list[Box]:
    fr = c.frontal
    g = f.severity - 1
    value = (0.09, 0.14, 0.2)[g] * strength(f)
    boxes = []
    lungs = c.lungs[RIGHT] + c.lungs[LEFT]
    for side in (RIGHT, LEFT):
        hx, hy = fr.hilum(side)
        center = (hx + SIGN[side] * 0.06, hy + 0.03)
        radii = (0.1 + 0.02 * g, 0.14 + 0.03 * g)
        blob(c.density, center, radii, value, edge=1.2, mask=lungs)
        boxes.append(_clip_box(center[0] - radii[0], center[1] - radii[1],
                               center[0] + radii[0], center[1] + radii[1]))
        if f.severity >= 2:  # septal (Kerley B) thickening at the lateral bases
            for _ in range(6):
                y = fr.cp[side] - rng.uniform(0.02, 0.12)
                x = fr.cx + SIGN[side] * (float(fr.lateral(side, y)) - rng.uniform(0.005, 0.02))
                stroke(c.density, np.array([(x, y), (x - SIGN[side] * 0.025, y)]), 0.0025, 0.06)
    return boxes


def _lobe_center(c: Canvas, f: Finding, rng: np.random.Generator) -> tuple[int, float, float]:
    side = _sides(f)[0]
    u, v = _LOBE_SPOT[ZONE.get(f.location or "", "lower")]
    u = float(np.clip(u + rng.uniform(-0.08, 0.08), 0.1, 0.85))
    v = float(np.clip(v + rng.uniform(-0.05, 0.05), 0.12, 0.88))
    x, y = c.frontal.point(side, u, v)
    return side, x, y


def _airspace(c: Canvas, f: Finding, rng: np.random.Generator, value: float, patchy: bool,
              bronchograms: bool) -> list[Box]:
    side, x, y = _lobe_center(c, f, rng)
    size = c.size
    r = (0.055, 0.08, 0.11)[f.severity - 1] * rng.uniform(0.85, 1.15)
    radii = (r, r * rng.uniform(1.0, 1.4))
    shape = np.zeros_like(c.density)
    rough = (smooth_noise(rng, size, max(size // 12, 4)) - 0.5) * 1.2
    blob(shape, (x, y), radii, 1.0, edge=0.35, roughness=rough, mask=c.lungs[side])
    if patchy:
        shape *= 0.45 + 0.55 * smooth_noise(rng, size, max(size // 12, 4))
    c.density += value * strength(f) * shape
    c.keep_markings *= 1.0 - 0.8 * shape
    box = _mask_box(shape, 0.2)
    if bronchograms:  # air-filled bronchi inside the airless lung
        air = np.zeros_like(c.density)
        hx, hy = c.frontal.hilum(side)
        for _ in range(3):
            angle = np.arctan2(y - hy, x - hx) + rng.uniform(-0.5, 0.5)
            start = (x - 0.6 * r * np.cos(angle), y - 0.6 * r * np.sin(angle))
            end = (x + 0.7 * r * np.cos(angle), y + 0.7 * r * np.sin(angle))
            stroke(air, np.array([start, end]), 0.004, 1.0)
        c.density -= 0.1 * strength(f) * np.minimum(air, 1.0) * shape
    return [box]


def _consolidation(c: Canvas, f: Finding, rng: np.random.Generator) -> list[Box]:
    return _airspace(c, f, rng, 0.3, patchy=False, bronchograms=True)


def _pneumonia(c: Canvas, f: Finding, rng: np.random.Generator) -> list[Box]:
    return _airspace(c, f, rng, 0.26, patchy=True, bronchograms=False)


def _opacity(c: Canvas, f: Finding, rng: np.random.Generator) -> list[Box]:
    fr = c.frontal
    spots = [_lobe_center(c, f, rng)] if f.laterality != "bilateral" else [
        (side, *fr.point(side, rng.uniform(0.3, 0.7), rng.uniform(0.72, 0.85)))
        for side in (RIGHT, LEFT)
    ]
    value = (0.07, 0.09, 0.12)[f.severity - 1] * strength(f)
    spread = 0.04 + 0.02 * f.severity
    boxes = []
    for side, x, y in spots:
        for _ in range(int(rng.integers(4, 8))):
            px = x + rng.uniform(-spread, spread)
            py = y + rng.uniform(-spread, spread)
            r = rng.uniform(0.025, 0.05)
            blob(c.density, (px, py), (r, r * 0.8), value, edge=0.9, mask=c.lungs[side])
        boxes.append(_clip_box(x - spread - 0.05, y - spread - 0.05,
                               x + spread + 0.05, y + spread + 0.05))
    return boxes


def _atelectasis(c: Canvas, f: Finding, rng: np.random.Generator) -> list[Box]:
    """A plate-like band above the (raised) hemidiaphragm: the lost volume."""
    fr = c.frontal
    width = (0.011, 0.015, 0.02)[f.severity - 1]
    boxes = []
    for side in _sides(f):
        v = (fr.dome[side] - 0.045 - fr.apex) / (fr.cp[side] - fr.apex)
        a = fr.point(side, 0.15, v + rng.uniform(-0.02, 0.02))
        b = fr.point(side, 0.85, v + rng.uniform(-0.04, 0.0))
        stroke(c.density, np.array([a, b]), width, 0.17 * strength(f))
        mid = ((a[0] + b[0]) / 2, (a[1] + b[1]) / 2 + 0.02)
        blob(c.density, mid, (0.07, 0.03), 0.08 * strength(f), edge=1.0, mask=c.lungs[side])
        inner = fr.cx + SIGN[side] * float(fr.medial(side, fr.dome[side]))
        boxes.append(_clip_box(inner, min(a[1], b[1]) - 0.03, b[0], fr.cp[side] + 0.01))
    return boxes


def _lesion(c: Canvas, f: Finding, rng: np.random.Generator) -> list[Box]:
    side, x, y = _lobe_center(c, f, rng)
    mm = 2 * c.frontal.w / 300.0  # the thorax is about 30 cm wide
    r = max(0.018, (f.number or 15) / 2 * mm)
    rough = None
    if f.kind == "mass":
        rough = (smooth_noise(rng, c.size, max(c.size // 20, 4)) - 0.5) * 0.3
    blob(c.density, (x, y), (r, r * rng.uniform(0.9, 1.1)), 0.3 * strength(f), edge=0.15,
         roughness=rough, mask=np.minimum(c.lungs[side] * 1.5, 1.0))
    return [_clip_box(x - r, y - r, x + r, y + r)]


def _pleural_thickening(c: Canvas, f: Finding, rng: np.random.Generator) -> list[Box]:
    fr, size = c.frontal, c.size
    side = _sides(f)[0]
    thick = (0.02, 0.027, 0.035)[f.severity - 1]
    inner = lung_mask(fr, side, size, lateral_shrink=thick)
    _, y = grid(size)
    v = (y - fr.apex) / (fr.cp[side] - fr.apex)
    band = np.clip(c.lungs[side] - inner, 0.0, 1.0) * ramp(v - 0.15, 0.08) * ramp(0.85 - v, 0.08)
    lumps = 0.6 + 0.8 * smooth_noise(rng, size, max(size // 16, 4))
    c.density += 0.26 * strength(f) * band * lumps
    c.keep_markings *= 1.0 - band
    return [_mask_box(band, 0.3)]


def fracture_point(fr: Frontal, brk: RibBreak) -> tuple[float, float]:
    """Where a rib breaks (on the rib's centre line)."""
    y = (fr.apex - 0.035 + fr.rib_curve * brk.at**2 - 0.06 * brk.at
         + (brk.rib - 1 + 0.2) * fr.rib_spacing)
    return fr.cx + SIGN[brk.side] * brk.at * fr.w, y


def fracture_box(fr: Frontal, brk: RibBreak) -> Box:
    """The broken rib from the break to the chest wall, with its displaced part."""
    x, y = fracture_point(fr, brk)
    wall = fr.cx + SIGN[brk.side] * 1.04 * fr.w
    drop = (brk.step + 0.3) * fr.rib_spacing + fr.rib_curve * (1.0 - brk.at**2)
    return _clip_box(x - SIGN[brk.side] * 0.03, y - 0.025, wall, y + drop + 0.02)


_DRAW: dict[str, Callable[[Canvas, Finding, np.random.Generator], list[Box]]] = {
    "Pleural Effusion": _effusion,
    "Pneumothorax": _pneumothorax,
    "Edema": _edema,
    "Consolidation": _consolidation,
    "Pneumonia": _pneumonia,
    "Lung Opacity": _opacity,
    "Atelectasis": _atelectasis,
    "Lung Lesion": _lesion,
    "Pleural Other": _pleural_thickening,
}


def draw_findings(c: Canvas, findings: tuple[Finding, ...], breaks: tuple[RibBreak, ...],
                  rng: np.random.Generator) -> list[dict]:
    """Draw every visible pathology; returns one region record per drawn finding."""
    fr = c.frontal
    regions = []
    for f in visible(findings):
        if f.observation in _DRAW:
            boxes = _DRAW[f.observation](c, f, rng)
        elif f.observation == "Cardiomegaly":
            boxes = [_clip_box(fr.cx - fr.heart[RIGHT], fr.heart_top, fr.cx + fr.heart[LEFT],
                               fr.dome[LEFT])]
        elif f.observation == "Enlarged Cardiomediastinum":
            boxes = [_clip_box(fr.cx - fr.med, fr.apex, fr.cx + fr.med, fr.heart_top)]
        else:
            continue
        regions.append({"observation": f.observation, "boxes": boxes})
    for brk in breaks:
        center = fracture_point(fr, brk)
        if brk.callus:  # healing bone around the break
            blob(c.density, center, (0.018, 0.014), 0.1, edge=0.5)
        else:  # extrapleural haematoma against the chest wall
            outer = (center[0] + SIGN[brk.side] * 0.02, center[1] + 0.01)
            blob(c.density, outer, (0.025, 0.035), 0.07, edge=0.8, mask=c.lungs[brk.side])
        regions.append({"observation": "Fracture", "boxes": [fracture_box(fr, brk)]})
    return regions
