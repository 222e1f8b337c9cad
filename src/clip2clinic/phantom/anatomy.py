"""Normal chest anatomy of a frontal (PA or AP) radiograph, as geometry and as a density map.

The picture is built as "density" (brighter = more attenuating): a soft-tissue body, two dark
lungs with vascular markings fanning out of the hila, a bright heart and mediastinum, diaphragm
domes with sharp costophrenic angles, posterior and anterior ribs, clavicles, the spine and the
trachea. Sides are the patient's: the patient's right lung is on the image's left (index 0).
An AP (portable) view magnifies the heart and mediastinum, projects the clavicles above the
apices, overlaps the scapulae on the lungs and has lower lung volumes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from clip2clinic.phantom.canvas import (
    axes,
    blob,
    blur,
    cubic_curve,
    ramp,
    resize,
    smooth_noise,
    stroke,
)

RIGHT, LEFT = 0, 1
SIDE_INDEX = {"right": RIGHT, "left": LEFT}
SIGN = (-1.0, 1.0)  # image-x direction of each side from the midline


@dataclass(frozen=True)
class Habitus:
    """A patient's build, fixed across all their studies."""

    half_width: float  # thorax half-width at the costophrenic angles
    apex: float  # y of the lung apices
    lung_height: float  # apex to right costophrenic angle
    ctr: float  # cardiothoracic ratio on a PA view
    mediastinum: float  # superior mediastinum half-width
    soft_tissue: float
    rib_spacing: float
    rib_curve: float
    dome_height: float
    sex: str


def sample_habitus(rng: np.random.Generator, sex: str) -> Habitus:
    """A random build; men are a little wider, women have breast shadows."""
    wide = 0.012 if sex == "M" else 0.0
    return Habitus(
        half_width=float(rng.uniform(0.33, 0.38) + wide),
        apex=float(rng.uniform(0.10, 0.145)),
        lung_height=float(rng.uniform(0.53, 0.61)),
        ctr=float(rng.uniform(0.40, 0.47)),
        mediastinum=float(rng.uniform(0.075, 0.09)),
        soft_tissue=float(rng.uniform(0.45, 0.6)),
        rib_spacing=float(rng.uniform(0.05, 0.058)),
        rib_curve=float(rng.uniform(0.17, 0.24)),
        dome_height=float(rng.uniform(0.07, 0.1)),
        sex=sex,
    )


@dataclass(frozen=True)
class Frontal:
    """Geometry of one frontal image (normalised coordinates, see :mod:`canvas`)."""

    view: str
    cx: float  # midline x
    w: float  # thorax half-width at the bases
    apex: float
    cp: tuple[float, float]  # costophrenic-angle y per side
    dome: tuple[float, float]  # dome-top y per side
    heart: tuple[float, float]  # heart extent from the midline per side
    heart_top: float
    heart_cy: float  # y where the heart is widest
    med: float  # superior mediastinum half-width
    rib_spacing: float
    rib_curve: float
    soft: float
    sex: str
    clavicle_y: float

    @property
    def hilum_y(self) -> float:
        return self.apex + 0.40 * (self.cp[RIGHT] - self.apex)

    @property
    def carina_y(self) -> float:
        return self.apex + 0.27 * (self.cp[RIGHT] - self.apex)

    @property
    def ctr(self) -> float:
        return (self.heart[RIGHT] + self.heart[LEFT]) / (2 * self.w)

    def hilum(self, side: int) -> tuple[float, float]:
        return self.cx + SIGN[side] * (self.med + 0.025), self.hilum_y

    # --- boundaries, vectorised over y (or d = distance from the midline) -------------------
    def lateral(self, side: int, y):
        """Distance from the midline of the lung's outer border at height ``y``."""
        v = (y - self.apex) / (self.cp[side] - self.apex)
        return self.w * (0.58 + 0.42 * np.sqrt(np.clip(v * 1.5, 0.0, 1.0)))

    def medial(self, side: int, y):
        """Distance from the midline of the lung's inner border (mediastinum or heart):
        the superior vena cava on the right, the aortic knob on the left."""
        if side == LEFT:
            bulge = 0.022 * np.exp(-(((y - self.apex - 0.11) / 0.03) ** 2))
        else:
            bulge = 0.01 * np.exp(-(((y - self.heart_top + 0.05) / 0.06) ** 2))
        narrow = 0.015 * np.clip((self.apex + 0.06 - y) / 0.06, 0.0, 1.0)
        return np.maximum(self.med + bulge - narrow, self.heart_extent(side, y))

    def heart_extent(self, side: int, y):
        a = self.heart[side]
        b = self.heart_cy - self.heart_top
        above = a * np.sqrt(np.clip(1.0 - ((self.heart_cy - y) / b) ** 2, 0.0, 1.0))
        below = a * np.clip(1.0 - 0.3 * ((y - self.heart_cy) / 0.12) ** 2, 0.0, 1.0)
        return np.where(y < self.heart_cy, above, below)

    def top(self, d):
        return self.apex + 0.5 * ((d - 0.5 * self.w) / self.w) ** 2

    def diaphragm(self, side: int, d):
        """y of the hemidiaphragm at distance ``d`` from the midline."""
        peak = 0.45 * self.w
        rise = self.cp[side] - self.dome[side]
        t = np.abs((d - peak) / (self.w - peak))
        out = self.dome[side] + rise * t * np.sqrt(t)
        return np.where(d >= peak, out, self.dome[side] + 0.3 * rise * ((peak - d) / peak) ** 2)

    def point(self, side: int, u: float, v: float) -> tuple[float, float]:
        """Image point of a lung at fraction ``v`` of its height and ``u`` of its width
        (0 medial, 1 lateral)."""
        y = self.apex + v * (self.cp[side] - self.apex)
        inner, outer = float(self.medial(side, y)), float(self.lateral(side, y))
        return self.cx + SIGN[side] * (inner + u * (outer - inner)), y

    def landmarks(self) -> dict:
        """Named points of this image (normalised), for tests and localisation."""
        def pair(fn):
            return {name: [round(float(c), 4) for c in fn(i)] for name, i in SIDE_INDEX.items()}

        return {
            "midline_x": round(self.cx, 4),
            "thorax_width": round(2 * self.w, 4),
            "heart_x": [round(self.cx - self.heart[RIGHT], 4),
                        round(self.cx + self.heart[LEFT], 4)],
            "heart_y": [round(self.heart_top, 4), round(self.dome[LEFT], 4)],
            "ctr": round(self.ctr, 4),
            "mediastinum_width": round(2 * self.med, 4),
            "apex": pair(lambda s: (self.cx + SIGN[s] * 0.5 * self.w, self.apex)),
            "costophrenic_angle": pair(lambda s: (self.cx + SIGN[s] * self.w, self.cp[s])),
            "dome": pair(lambda s: (self.cx + SIGN[s] * 0.45 * self.w, self.dome[s])),
            "hilum": pair(self.hilum),
        }


def sample_frontal(h: Habitus, rng: np.random.Generator, view: str, ctr: float | None = None,
                   mediastinum_scale: float = 1.0, dome_lift: tuple[float, float] = (0.0, 0.0)
                   ) -> Frontal:
    """Geometry of a frontal image of a patient: positioning and inspiration vary per image.

    ``ctr`` overrides the cardiothoracic ratio (cardiomegaly), ``mediastinum_scale`` widens
    the mediastinum, ``dome_lift`` raises a hemidiaphragm (volume loss).
    """
    ap = view == "AP"
    magnify = float(rng.uniform(1.06, 1.12)) if ap else 1.0
    height = h.lung_height * float(rng.uniform(0.95, 1.04)) * (0.93 if ap else 1.0)
    cx = 0.5 + float(rng.uniform(-0.02, 0.02))
    apex = h.apex + float(rng.uniform(-0.015, 0.015))
    cp_r = apex + height
    cp = (cp_r, cp_r + float(rng.uniform(0.012, 0.03)))
    dome = tuple(c - h.dome_height - lift for c, lift in zip(cp, dome_lift, strict=True))
    heart_cy = cp[LEFT] - h.dome_height - 0.025  # the heart stays where it was
    ratio = ctr if ctr is not None else min(h.ctr * magnify, 0.49)
    w = h.half_width * float(rng.uniform(0.98, 1.02))
    width = ratio * 2 * w
    right_share = float(rng.uniform(0.33, 0.38))
    heart_top = heart_cy - (0.15 + 0.12 * width)
    return Frontal(
        view=view, cx=cx, w=w, apex=apex, cp=cp, dome=dome,
        heart=(width * right_share, width * (1 - right_share)), heart_top=heart_top,
        heart_cy=heart_cy, med=h.mediastinum * magnify * mediastinum_scale,
        rib_spacing=h.rib_spacing * height / 0.57, rib_curve=h.rib_curve,
        soft=h.soft_tissue, sex=h.sex,
        clavicle_y=apex + (-0.02 if ap else 0.055) + float(rng.uniform(-0.01, 0.01)),
    )


@dataclass
class Canvas:
    """The density map being drawn, with the masks findings need."""

    frontal: Frontal
    density: np.ndarray
    lungs: tuple[np.ndarray, np.ndarray]  # soft masks per side, full size
    markings: np.ndarray  # vascular markings, added to density at the end
    keep_markings: np.ndarray  # 1 where markings show (pneumothorax, fluid set 0)

    @property
    def size(self) -> int:
        return self.density.shape[0]


@dataclass(frozen=True)
class RibBreak:
    """A rib fracture: rib number (1 = first), side, lateral position, displacement."""

    side: int
    rib: int
    at: float  # fraction of the thorax half-width
    step: float  # displacement in rib spacings
    gap: float  # normalised width of the gap
    callus: bool


def _half(f: Frontal, side: int, size: int) -> tuple[slice, np.ndarray, np.ndarray]:
    """Columns of one side of the image and the coordinates there: ``d`` (distance from the
    midline) as a row and ``y`` as a column, which broadcast to the half image. Boundaries
    are functions of one of them, so they cost a row or a column, not an image."""
    split = int(round(f.cx * size))
    cols = slice(0, split) if side == RIGHT else slice(split, size)
    x, y = axes(size)
    return cols, SIGN[side] * (x[:, cols] - f.cx), y


def lung_mask(f: Frontal, side: int, size: int, apex_drop: float = 0.0,
              lateral_shrink: float = 0.0) -> np.ndarray:
    """Soft mask of one lung, full size; ``apex_drop``/``lateral_shrink`` give a smaller lung
    (the collapsed lung of a pneumothorax, the inner edge of pleural thickening)."""
    cols, d, y = _half(f, side, size)
    v = np.clip((y - f.apex) / (f.cp[side] - f.apex), 0.0, 1.0)
    lateral = f.lateral(side, y) - lateral_shrink * (1.0 - 0.6 * v)
    inside = np.minimum(np.minimum(d - f.medial(side, y), lateral - d),
                        np.minimum(y - f.top(d) - apex_drop, f.diaphragm(side, d) - y))
    out = np.zeros((size, size), dtype=np.float32)
    out[:, cols] = ramp(inside, 2.5 / size)
    return out


def _body(f: Frontal, size: int) -> np.ndarray:
    """Soft tissue: neck and shoulders filling the top, chest wall narrowing to the abdomen,
    the upper arms beside the chest, breasts."""
    x, y = axes(size)
    armpit = f.apex + 0.16
    chest = np.interp(y, [armpit, f.cp[RIGHT], 1.0], [f.w + 0.085, f.w + 0.08, f.w + 0.04])
    shoulders = f.w + 0.085 + 0.5 * np.clip((armpit - y) / 0.2, 0.0, 1.0) ** 1.5
    half = np.maximum(chest, shoulders)
    offset = np.abs(x - f.cx)
    chord = np.sqrt(np.clip(1.0 - (offset / (f.w + 0.09)) ** 2, 0.0, 1.0))
    body = (f.soft * (0.55 + 0.45 * chord)) * ramp(half - offset, 0.025)
    # upper arms: soft-tissue bands beside the chest, fading downwards, with a gap of air
    arm = ramp(0.07 - np.abs(offset - f.w - 0.2), 0.03) * ramp(f.cp[RIGHT] - 0.1 - y, 0.15)
    body = np.maximum(body, 0.75 * f.soft * arm)
    if f.sex == "F":  # breast shadows over the lower lungs
        for side in (RIGHT, LEFT):
            center = (f.cx + SIGN[side] * 0.62 * f.w, f.cp[side] - 0.06)
            blob(body, center, (0.19, 0.12), 0.07, edge=1.2)
    return body.astype(np.float32, copy=False)


def _central(f: Frontal, size: int) -> np.ndarray:
    """Heart, mediastinum and upper abdomen: denser than the chest wall's soft tissue."""
    out = np.zeros((size, size), dtype=np.float32)
    for side in (RIGHT, LEFT):
        cols, d, y = _half(f, side, size)
        middle = ramp(f.medial(side, y) + 0.004 - d, 0.012)
        abdomen = ramp(y - f.diaphragm(side, d), 0.012) * ramp(f.w + 0.04 - d, 0.03)
        out[:, cols] = np.maximum(middle, abdomen)
    return out


def _ribs(f: Frontal, size: int, breaks: tuple[RibBreak, ...], rng: np.random.Generator
          ) -> np.ndarray:
    """Posterior ribs (bright curved bands, lower laterally) and fainter anterior ribs."""
    out = np.zeros((size, size), dtype=np.float32)
    uneven = 0.6 + 0.8 * smooth_noise(rng, size, 6)
    for side in (RIGHT, LEFT):
        cols, d, y = _half(f, side, size)
        t = d / f.w
        start = f.apex - 0.035
        phase = (y - start - f.rib_curve * t * t + 0.06 * t) / f.rib_spacing
        band = _rib_profile(phase)
        for brk in breaks:
            if brk.side != side:
                continue
            k = brk.rib - 1
            lateral = t > brk.at
            band = np.where(lateral & (np.floor(phase) == k), 0.0, band)
            shifted = phase - brk.step
            moved = lateral & (t > brk.at + brk.gap / f.w) & (np.floor(shifted) == k)
            band = np.where(moved, _rib_profile(shifted), band)
        visible = (ramp(t - 0.12, 0.06) * ramp(1.03 - t, 0.03)
                   * ramp(f.cp[side] + 0.03 - y, 0.02) * ramp(phase, 0.1))
        anterior = (y - f.apex - 0.02 + 0.11 * t) / (f.rib_spacing * 1.25)
        front = _rib_profile(anterior) * ramp(t - 0.3, 0.1) * ramp(0.98 - t, 0.03)
        front *= ramp(f.cp[side] - 0.08 - y, 0.03) * ramp(anterior, 0.1)
        out[:, cols] = 0.055 * band * visible * uneven[:, cols] + 0.03 * front
    return out


def _rib_profile(phase: np.ndarray) -> np.ndarray:
    """A rib band in the first half of each period: flat top, bright cortical margins."""
    frac = phase - np.floor(phase)
    core = np.clip(1.0 - np.abs(frac - 0.2) / 0.2, 0.0, 1.0)
    return np.sqrt(core) + 0.4 * np.clip(1.0 - np.abs(frac - 0.38) / 0.04, 0.0, 1.0)


def _polar_noise(rng: np.random.Generator, angle: np.ndarray, r: np.ndarray,
                 turns: int, rings: int, reach: float) -> np.ndarray:
    """Smooth noise in polar coordinates: fast along the angle, slow along the radius, so
    that its level lines run outwards like vessels from a hilum."""
    table = rng.random((turns, rings + 2), dtype=np.float32)
    fa = (angle / np.pi + 1.0) * (turns / 2)
    fr = np.clip(r / reach * rings, 0, rings)
    a0 = np.floor(fa)
    r0 = np.floor(fr)
    wa, wr = fa - a0, fr - r0
    i0 = a0.astype(np.intp) % turns
    i1 = (i0 + 1) % turns
    j0 = r0.astype(np.intp)
    j1 = j0 + 1
    # smoothstep weights avoid visible creases along the table's cell borders
    wa = wa * wa * (3 - 2 * wa)
    wr = wr * wr * (3 - 2 * wr)
    near = table[i0, j0] * (1 - wa) + table[i1, j0] * wa
    far = table[i0, j1] * (1 - wa) + table[i1, j1] * wa
    return near * (1 - wr) + far * wr


def _markings(f: Frontal, size: int, rng: np.random.Generator) -> np.ndarray:
    """Vessels fanning out of each hilum and branching, tapering to the periphery.

    Drawn at a third of the resolution (they are soft anyway) and enlarged."""
    small = max(size // 3, 16)
    out = np.zeros((small, small), dtype=np.float32)
    for side in (RIGHT, LEFT):
        cols, d, y = _half(f, side, small)
        dx, dy = d - f.med - 0.02, y - f.hilum_y
        r = np.sqrt(dx * dx + dy * dy)
        angle = np.arctan2(dy, dx)
        vessels = np.zeros_like(r)
        for turns, weight in ((28, 1.0), (64, 0.6)):
            level = _polar_noise(rng, angle, r, turns, 5, 0.45)
            vessels += weight * np.clip(1.0 - np.abs(level - 0.5) * 7.0, 0.0, 1.0) ** 2
        taper = np.exp(-r / 0.24) * ramp(r - 0.035, 0.05)
        out[:, cols] = vessels * taper
    return resize(out, size)


def draw_frontal(f: Frontal, size: int, rng: np.random.Generator,
                 breaks: tuple[RibBreak, ...] = ()) -> Canvas:
    """The normal chest of geometry ``f`` as a :class:`Canvas` (markings not yet added)."""
    x, y = axes(size)
    density = _body(f, size)
    lungs = (lung_mask(f, RIGHT, size), lung_mask(f, LEFT, size))
    both = lungs[RIGHT] + lungs[LEFT]
    # aerated lung is darkest away from its borders, where less soft tissue overlaps it
    depth = 0.45 + 0.55 * blur(both, 10) * np.clip((y - f.apex) / 0.12, 0.3, 1.0)
    depth *= 1.0 - 0.25 * np.clip((y - f.hilum_y) / (f.cp[RIGHT] - f.hilum_y), 0.0, 1.0)
    density -= 0.34 * both * depth
    central = _central(f, size)
    density += 0.12 * central
    density += _ribs(f, size, breaks, rng) * (0.35 + 0.65 * both)
    spine = ramp(0.03 - np.abs(x - f.cx), 0.012) * (1.0 - both)
    discs = 0.75 + 0.25 * np.cos(np.pi * (y - f.apex) / (f.rib_spacing * 0.9)) ** 2
    density += (0.04 if f.view == "AP" else 0.025) * spine * discs
    trachea = ramp(0.011 - np.abs(x - f.cx), 0.012) * ramp(f.carina_y - y, 0.02)
    density -= 0.05 * trachea
    density *= 1.0 + 0.08 * (smooth_noise(rng, size, 5) - 0.5)  # uneven soft tissue
    for side in (RIGHT, LEFT):
        hx, hy = f.hilum(side)
        bronchus = np.array([(f.cx, f.carina_y), (hx - SIGN[side] * 0.01, hy + 0.01)])
        stroke(density, bronchus, 0.007, -0.05)
        blob(density, (hx, hy), (0.03, 0.05), 0.07, edge=1.0)
        _clavicle(density, f, side)
        if f.view == "AP":  # scapula border over the upper lateral lung
            lat = f.cx + SIGN[side] * f.w * 0.93
            pts = np.array([(lat, f.apex + 0.02), (lat - SIGN[side] * 0.05, f.apex + 0.2),
                            (lat - SIGN[side] * 0.03, f.apex + 0.3)])
            stroke(density, pts, 0.006, 0.05)
    if rng.random() < 0.7:  # gas in the stomach under the left hemidiaphragm
        bubble = np.zeros_like(density)
        blob(bubble, (f.cx + 0.55 * f.w, f.dome[LEFT] + 0.06), (0.07, 0.04), 1.0, edge=1.0)
        density -= 0.12 * bubble * central
    markings = _markings(f, size, rng)
    return Canvas(f, density, lungs, markings, np.ones_like(density))


def _clavicle(density: np.ndarray, f: Frontal, side: int) -> None:
    s = SIGN[side]
    lift = 0.045 if f.view == "PA" else 0.015
    pts = cubic_curve(
        (f.cx + s * 0.03, f.clavicle_y + 0.02),
        (f.cx + s * 0.25 * f.w, f.clavicle_y - 0.01),
        (f.cx + s * 0.7 * f.w, f.clavicle_y + 0.01 - lift * 0.3),
        (f.cx + s * (f.w + 0.06), f.clavicle_y - lift),
        n=10,
    )
    stroke(density, pts, 0.012, 0.08)
