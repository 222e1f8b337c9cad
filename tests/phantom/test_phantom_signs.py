"""Each finding's sign is measurably present on the drawn image, where the truth puts it.

Measurements are made on the 8-bit pixels, in regions taken from the image's anatomical
landmarks (costophrenic angles, apices, midline) or from the region the truth names. Paired
images share the patient, anatomy, noise and exposure (separate random streams), so their
difference is the finding alone.
"""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from clip2clinic.phantom.anatomy import RibBreak, _ribs, sample_frontal, sample_habitus
from clip2clinic.phantom.canvas import blur
from clip2clinic.phantom.findings import fracture_box
from clip2clinic.phantom.render import render_view
from clip2clinic.phantom.truth import Finding

SIZE = 128
SEEDS = range(12)


@pytest.fixture(autouse=True)
def one_blas_thread():
    """The drawing's small matrix products, as the generator runs them: on one thread."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _render(findings, seed: int, view: str | None = None, size: int = SIZE):
    view = view or ("PA" if seed % 2 else "AP")
    habitus = sample_habitus(np.random.default_rng(seed), "FM"[seed % 2])
    pixels, info = render_view(habitus, tuple(findings), view, size,
                               np.random.default_rng(1000 + seed))
    return pixels.astype(np.float32) / 255.0, info


def _crop(image: np.ndarray, x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    size = image.shape[0]
    xa, xb = sorted((x0, x1))
    return image[int(y0 * size):int(y1 * size) + 1, int(xa * size):int(xb * size) + 1]


def _mask(box: list[float], size: int = SIZE) -> np.ndarray:
    x0, y0, x1, y1 = (int(round(v * size)) for v in box)
    out = np.zeros((size, size), dtype=bool)
    out[y0:y1 + 1, x0:x1 + 1] = True
    return out


def _side_sign(side: str) -> float:
    return 1.0 if side == "left" else -1.0  # the patient's left is on the image's right


def _costophrenic(image, lm, side):
    _, y = lm["costophrenic_angle"][side]
    cx, w, s = lm["midline_x"], lm["thorax_width"] / 2, _side_sign(side)
    return _crop(image, cx + s * 0.55 * w, y - 0.07, cx + s * 0.9 * w, y - 0.005)


def _apex(image, lm, side):
    _, y = lm["apex"][side]
    cx, w, s = lm["midline_x"], lm["thorax_width"] / 2, _side_sign(side)
    return _crop(image, cx + s * 0.4 * w, y + 0.01, cx + s * 0.85 * w, y + 0.12)


def _measured_ctr(image: np.ndarray, lm: dict) -> float:
    """Cardiothoracic ratio from pixels: width of the bright heart on a row just above the
    left hemidiaphragm, between the half-way levels of lung and heart brightness."""
    size = image.shape[0]
    row = image[int((lm["heart_y"][1] - 0.05) * size)]
    cx, w = lm["midline_x"], lm["thorax_width"] / 2
    lung = row[int((cx - 0.8 * w) * size):int((cx - 0.6 * w) * size)].mean()
    mid = int(cx * size)
    threshold = (lung + row[mid - 2:mid + 3].mean()) / 2
    bright = row > threshold
    left = mid
    while left > 0 and bright[left]:
        left -= 1
    right = mid
    while right < size - 1 and bright[right]:
        right += 1
    return (right - left) / size / lm["thorax_width"]


@pytest.mark.parametrize("side,other", [("left", "right"), ("right", "left")])
def test_effusion_whitens_its_costophrenic_angle(side, other):
    for severity in (1, 2, 3):
        for seed in SEEDS:
            effusion = Finding("Pleural Effusion", laterality=side, severity=severity)
            image, info = _render([effusion], seed)
            lm = info["landmarks"]
            assert _costophrenic(image, lm, side).mean() > _costophrenic(image, lm, other).mean()


def test_effusion_meniscus_rises_with_severity():
    for seed in SEEDS:
        heights = []
        for severity in (1, 2, 3):
            effusion = Finding("Pleural Effusion", laterality="right", severity=severity)
            _, info = _render([effusion], seed)
            box = info["regions"][0]["boxes"][0]
            heights.append(box[3] - box[1])
        assert heights[0] < heights[1] < heights[2]


def test_bilateral_effusion_whitens_both_angles():
    for seed in SEEDS:
        effusion = Finding("Pleural Effusion", laterality="bilateral", severity=2)
        image, info = _render([effusion], seed)
        normal, _ = _render([], seed)
        for side in ("left", "right"):
            lm = info["landmarks"]
            assert _costophrenic(image, lm, side).mean() > _costophrenic(normal, lm, side).mean()


def _erode(mask: np.ndarray, steps: int) -> np.ndarray:
    out = mask.copy()
    for _ in range(steps):
        out[1:] &= out[:-1].copy()
        out[:-1] &= out[1:].copy()
        out[:, 1:] &= out[:, :-1].copy()
        out[:, :-1] &= out[:, 1:].copy()
    return out


@pytest.mark.parametrize("side,other", [("left", "right"), ("right", "left")])
def test_pneumothorax_darkens_the_apex_and_removes_markings(side, other):
    correlations = []
    for seed in SEEDS:
        ptx = Finding("Pneumothorax", laterality=side, location="apex", severity=2)
        image, info = _render([ptx], seed, size=256)
        lm = info["landmarks"]
        assert _apex(image, lm, side).mean() < _apex(image, lm, other).mean()
        # inside the air (where the image got darker, away from its edges) the texture of
        # the vessels is gone: what changed there is the normal lung's texture, negated
        normal, _ = _render([], seed, size=256)
        air = _erode((image - normal) < -0.02, 4) & _mask(info["regions"][0]["boxes"][0], 256)
        assert air.sum() > 100
        texture = blur(normal, 2) - blur(normal, 6)
        lost = blur(image, 2) - blur(image, 6) - texture
        correlations.append(np.corrcoef(lost[air], texture[air])[0, 1])
    assert sum(c < 0 for c in correlations) >= 0.75 * len(correlations)
    assert np.mean(correlations) < -0.15


def test_cardiomegaly_makes_the_heart_wider_than_half_the_thorax():
    normal_ratios, enlarged = [], []
    for seed in SEEDS:
        image, info = _render([], seed)
        normal_ratios.append(_measured_ctr(image, info["landmarks"]))
        big, info_big = _render([Finding("Cardiomegaly", severity=1)], seed)
        enlarged.append(_measured_ctr(big, info_big["landmarks"]))
        assert enlarged[-1] > normal_ratios[-1] + 0.05
    assert np.median(normal_ratios) < 0.5
    assert min(enlarged) > 0.52


def test_enlarged_cardiomediastinum_widens_the_upper_mediastinum():
    for seed in SEEDS:
        normal, info = _render([], seed)
        wide, info_wide = _render([Finding("Enlarged Cardiomediastinum", severity=2)], seed)
        lm, lm_wide = info["landmarks"], info_wide["landmarks"]
        assert lm_wide["mediastinum_width"] > 1.4 * lm["mediastinum_width"]
        cx, y = lm["midline_x"], lm["apex"]["left"][1] + 0.15
        band = (cx - 0.12, y, cx + 0.12, y + 0.03)
        assert _crop(wide, *band).mean() > _crop(normal, *band).mean() + 0.02


def test_edema_hazes_both_perihilar_regions():
    for seed in SEEDS:
        normal, info = _render([], seed)
        edema, info_edema = _render([Finding("Edema", laterality="bilateral", severity=2)], seed)
        boxes = info_edema["regions"][0]["boxes"]
        assert len(boxes) == 2
        centres = sorted((b[0] + b[2]) / 2 for b in boxes)
        assert centres[0] < info["landmarks"]["midline_x"] < centres[1]
        for box in boxes:
            assert _crop(edema, *box).mean() > _crop(normal, *box).mean() + 0.02


_LOCALISED = [
    Finding("Consolidation", laterality="right", location="right lower lobe", severity=1),
    Finding("Consolidation", laterality="left", location="left upper lobe", severity=2),
    Finding("Pneumonia", laterality="left", location="lingula", severity=1),
    Finding("Pneumonia", laterality="right", location="right upper lobe", severity=2),
    Finding("Lung Opacity", laterality="right", location="right middle lobe", severity=1),
    Finding("Lung Opacity", laterality="bilateral", location="lower lungs", severity=2),
    Finding("Atelectasis", laterality="left", location="base", severity=1),
    Finding("Lung Lesion", laterality="right", location="right upper lobe", kind="nodule",
            number=12),
    Finding("Lung Lesion", laterality="left", location="left lower lobe", kind="mass", number=45),
    Finding("Pleural Other", laterality="right", location="lateral chest wall", severity=1),
    Finding("Fracture", laterality="left", location="lateral left rib 7", kind="acute", number=7),
    Finding("Support Devices", kind="et_tube", location="trachea"),
    Finding("Support Devices", kind="ng_tube", location="stomach"),
    Finding("Support Devices", kind="central_line", laterality="right",
            location="right internal jugular"),
    Finding("Support Devices", kind="pacemaker", laterality="left", location="left chest wall"),
    Finding("Support Devices", kind="sternotomy", location="sternum"),
    Finding("Support Devices", kind="chest_tube", laterality="left", location="left pleural space"),
]


@pytest.mark.parametrize("finding", _LOCALISED, ids=lambda f: f"{f.observation}-{f.location}")
def test_sign_lies_in_its_named_region_on_its_named_side(finding):
    for seed in SEEDS:
        image, info = _render([finding], seed)
        normal, _ = _render([], seed)
        change = image - normal
        region = np.zeros_like(image, dtype=bool)
        (record,) = info["regions"]
        for box in record["boxes"]:
            region |= _mask(box)
            centre = (box[0] + box[2]) / 2 - info["landmarks"]["midline_x"]
            if finding.laterality in ("left", "right") and finding.kind != "pacemaker":
                assert np.sign(centre) == _side_sign(finding.laterality)
        # the finding adds density where the truth says (a fracture moves bone), and changes
        # little elsewhere
        if finding.observation == "Fracture":
            assert np.abs(change)[region].mean() > 0.005
        else:
            assert change[region].mean() > 0.003
        assert np.abs(change)[region].sum() > 0.7 * np.abs(change).sum()


def test_devices_are_bright_thin_structures():
    devices = [f for f in _LOCALISED if f.observation == "Support Devices"]
    for seed in SEEDS:
        image, _ = _render(devices, seed)
        normal, _ = _render([], seed)

        def thin_bright(a):
            return ((a - blur(a, 4)) > 0.12).sum()

        assert thin_bright(image) > thin_bright(normal) + 40


@pytest.mark.parametrize("side", [0, 1])
def test_fracture_breaks_the_named_rib_at_the_named_place(side):
    habitus = sample_habitus(np.random.default_rng(side), "M")
    frontal = sample_frontal(habitus, np.random.default_rng(side), "PA")
    rng_state = 5
    whole = _ribs(frontal, 256, (), np.random.default_rng(rng_state))
    brk = RibBreak(side=side, rib=6, at=0.75, step=0.5, gap=0.025, callus=False)
    broken = _ribs(frontal, 256, (brk,), np.random.default_rng(rng_state))
    change = np.abs(broken - whole)
    inside = _mask(fracture_box(frontal, brk), 256)
    assert change.sum() > 0
    assert change[inside].sum() > 0.95 * change.sum()


def test_uncertain_findings_are_fainter():
    sure = Finding("Consolidation", laterality="right", location="right lower lobe")
    unsure = Finding("Consolidation", presence="uncertain", laterality="right",
                     location="right lower lobe")
    for seed in SEEDS:
        normal, _ = _render([], seed)
        strong, info = _render([sure], seed)
        faint, _ = _render([unsure], seed)
        region = _mask(info["regions"][0]["boxes"][0])
        assert (strong - normal)[region].mean() > (faint - normal)[region].mean() > 0


def test_lateral_view_shows_effusion_in_the_posterior_sulcus():
    for seed in SEEDS:
        effusion = Finding("Pleural Effusion", laterality="bilateral", severity=2)
        image, info = _render([effusion], seed, view="LATERAL")
        normal, _ = _render([], seed, view="LATERAL")
        box = info["regions"][0]["boxes"][0]
        assert _crop(image, *box).mean() > _crop(normal, *box).mean() + 0.02
