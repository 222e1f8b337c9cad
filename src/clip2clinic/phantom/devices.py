"""Support devices on a frontal view: thin, very bright lines, tubes, wires and boxes."""

from __future__ import annotations

import numpy as np

from clip2clinic.phantom.anatomy import LEFT, RIGHT, SIGN, Canvas, Frontal
from clip2clinic.phantom.canvas import blob, cubic_curve, quadratic_curve, stroke
from clip2clinic.phantom.truth import Finding


def _et_tube(fr: Frontal, rng: np.random.Generator, f: Finding) -> list[np.ndarray]:
    tip = fr.carina_y - rng.uniform(0.025, 0.06)
    x = fr.cx + rng.uniform(-0.006, 0.006)
    return [np.array([(x + rng.uniform(-0.01, 0.01), -0.01), (x, tip)])]


def _ng_tube(fr: Frontal, rng: np.random.Generator, f: Finding) -> list[np.ndarray]:
    x = fr.cx + rng.uniform(0.004, 0.015)
    below = fr.dome[LEFT] + rng.uniform(0.03, 0.05)
    body = cubic_curve((x, -0.01), (x + 0.005, fr.hilum_y), (x + 0.01, fr.dome[LEFT]),
                       (x + 0.02, below), n=8)
    stomach = quadratic_curve((x + 0.02, below), (x + 0.05, below + 0.06),
                              (fr.cx + 0.5 * fr.w + rng.uniform(-0.03, 0.03),
                               below + rng.uniform(0.03, 0.07)), n=8)
    return [np.vstack([body, stomach])]


def _central_line(fr: Frontal, rng: np.random.Generator, f: Finding) -> list[np.ndarray]:
    tip = (fr.cx - 0.04, fr.hilum_y - rng.uniform(0.0, 0.04))
    side = LEFT if f.laterality == "left" else RIGHT
    s = SIGN[side]
    route = f.location or ""
    if "jugular" in route:
        start = (fr.cx + s * 0.08, -0.01)
        via = (fr.cx + s * 0.05, fr.clavicle_y + 0.03)
    elif "subclavian" in route:
        start = (fr.cx + s * 0.75 * fr.w, fr.clavicle_y + 0.02)
        via = (fr.cx + s * 0.08, fr.clavicle_y + 0.05)
    else:  # PICC: from the arm
        start = (fr.cx + s * (fr.w + 0.12), fr.apex + 0.12)
        via = (fr.cx + s * 0.1, fr.clavicle_y + 0.05)
    return [cubic_curve(start, via, (tip[0], fr.apex + 0.17), tip, n=14)]


def _chest_tube(fr: Frontal, rng: np.random.Generator, f: Finding) -> list[np.ndarray]:
    side = LEFT if f.laterality == "left" else RIGHT
    s = SIGN[side]
    entry = (fr.cx + s * (fr.w + 0.07), fr.cp[side] - 0.14)
    return [cubic_curve(entry, (fr.cx + s * (fr.w - 0.03), fr.cp[side] - 0.16),
                        (fr.cx + s * 0.8 * fr.w, fr.apex + 0.2),
                        (fr.cx + s * 0.55 * fr.w, fr.apex + rng.uniform(0.05, 0.1)), n=14)]


def _pacemaker_leads(fr: Frontal, rng: np.random.Generator, box: tuple[float, float]
                     ) -> list[np.ndarray]:
    entry = (box[0] - 0.03, box[1] + 0.01)
    svc = (fr.cx - 0.03, fr.hilum_y)
    atrium = (fr.cx - 0.55 * fr.heart[RIGHT], fr.heart_top + 0.07)
    ventricle = (fr.cx + 0.4 * fr.heart[LEFT], fr.heart_cy + rng.uniform(-0.01, 0.02))
    return [
        cubic_curve(entry, (fr.cx + 0.02, fr.clavicle_y + 0.03), svc, atrium, n=14),
        cubic_curve(entry, (fr.cx, fr.clavicle_y + 0.05), svc, ventricle, n=16),
    ]


_WIDTH = {"et_tube": 0.0045, "ng_tube": 0.0035, "central_line": 0.003, "picc": 0.003,
          "chest_tube": 0.006}
_LINES = {"et_tube": _et_tube, "ng_tube": _ng_tube, "central_line": _central_line,
          "picc": _central_line, "chest_tube": _chest_tube}


def draw_devices(c: Canvas, findings: tuple[Finding, ...], rng: np.random.Generator
                 ) -> list[dict]:
    """Draw every support device; returns one region record per device."""
    fr = c.frontal
    regions = []
    for f in findings:
        if f.observation != "Support Devices":
            continue
        paths: list[np.ndarray] = []
        if f.kind in _LINES:
            paths = _LINES[f.kind](fr, rng, f)
            for path in paths:
                stroke(c.density, path, _WIDTH[f.kind], 0.32)
        elif f.kind == "pacemaker":
            box = (fr.cx + 0.7 * fr.w + rng.uniform(-0.02, 0.02),
                   fr.clavicle_y + rng.uniform(0.05, 0.08))
            blob(c.density, box, (0.042, 0.03), 0.6, edge=0.12)
            paths = _pacemaker_leads(fr, rng, box)
            for path in paths:
                stroke(c.density, path, 0.003, 0.4)
            corners = [(box[0] - 0.042, box[1] - 0.03), (box[0] + 0.042, box[1] + 0.03)]
            paths.append(np.array(corners))
        elif f.kind == "sternotomy":
            top, bottom = fr.apex + 0.12, fr.heart_top + 0.12
            angle = np.linspace(0, 2 * np.pi, 13)
            for y in np.linspace(top, bottom, int(rng.integers(5, 8))):
                x = fr.cx + rng.uniform(-0.006, 0.006)
                loop = np.stack([x + 0.012 * np.cos(angle), y + 0.007 * np.sin(angle)], axis=1)
                stroke(c.density, loop, 0.0028, 0.45)
                paths.append(loop)
        if paths:
            pts = np.vstack(paths)
            pad = 0.015  # the stroke's width and the image's unsharpness
            lo, hi = np.clip(pts.min(axis=0) - pad, 0, 1), np.clip(pts.max(axis=0) + pad, 0, 1)
            regions.append({"observation": "Support Devices", "kind": f.kind,
                            "boxes": [[round(float(v), 4) for v in (*lo, *hi)]]})
    return regions
