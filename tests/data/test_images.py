"""Image loading (fault corpus, DICOM handling), the resize cache, and the transforms."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

from clip2clinic.data.images import (
    ImageLoadError,
    LoadReport,
    cache_resized,
    load_image,
    load_many,
    load_resized,
    png_bytes,
    resize_shorter_side,
    scale_to_uint8,
    shorter_side_size,
    window_to_uint8,
)
from clip2clinic.data.transforms import (
    GREY,
    IMAGENET,
    AugmentConfig,
    EvalTransform,
    TrainTransform,
    sample_generator,
)
from tests.image_files import gradient, write_dicom, write_jpeg, write_png

IMAGE_FILES = [
    "ok_gray8.png",
    "truncated.png",
    "zero_bytes.jpg",
    "not_an_image.jpg",
    "gray16.png",
    "rgb.jpg",
    "rgba.png",
    "extreme_aspect.png",
    "all_black.png",
    "all_white.png",
    "bilevel.png",
    "monochrome1.dcm",
    "monochrome2.dcm",
    "truncated.dcm",
]
UNREADABLE = {
    "truncated.png": "truncated",
    "zero_bytes.jpg": "empty file",
    "not_an_image.jpg": "not a recognised image format",
    "truncated.dcm": "no pixel data",
}


# --------------------------------------------------------------------------- fault corpus


@pytest.mark.parametrize("name", sorted(UNREADABLE))
def test_unreadable_files_raise_a_named_reason(bad_inputs: Path, name: str) -> None:
    with pytest.raises(ImageLoadError) as caught:
        load_image(bad_inputs / name)
    assert caught.value.path.endswith(name)
    assert UNREADABLE[name] in caught.value.reason
    assert name in str(caught.value)


def test_truncated_png_is_rejected_even_if_pillow_was_relaxed(
    bad_inputs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(ImageLoadError, match="truncated"):
        load_image(bad_inputs / "truncated.png")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # restored for whoever set it


def test_gray8_is_returned_unchanged(bad_inputs: Path) -> None:
    image = load_image(bad_inputs / "ok_gray8.png")
    expected = np.asarray(Image.open(bad_inputs / "ok_gray8.png"))
    assert image.dtype == np.uint8 and image.shape == expected.shape
    np.testing.assert_array_equal(image, expected)


def test_gray16_uses_its_real_range(bad_inputs: Path) -> None:
    raw = np.asarray(Image.open(bad_inputs / "gray16.png")).astype(np.float64)
    image = load_image(bad_inputs / "gray16.png")
    assert image.shape == raw.shape and image.dtype == np.uint8
    assert image.min() == 0 and image.max() == 255
    expected = (raw - raw.min()) / (raw.max() - raw.min()) * 255
    assert np.abs(image - expected).max() <= 0.5 + 1e-9


@pytest.mark.parametrize("name", ["rgb.jpg", "rgba.png"])
def test_colour_becomes_luma(bad_inputs: Path, name: str) -> None:
    with Image.open(bad_inputs / name) as source:
        assert source.mode in ("RGB", "RGBA")
        expected = np.asarray(source.convert("L"))
    image = load_image(bad_inputs / name)
    assert image.ndim == 2
    np.testing.assert_array_equal(image, expected)


def test_extreme_aspect_is_kept(bad_inputs: Path) -> None:
    image = load_image(bad_inputs / "extreme_aspect.png")
    assert image.shape == (4, 3000)
    resized = resize_shorter_side(image, 256, max_longer_side=2048)
    assert resized.shape[1] == 2048  # capped longer side
    assert resized.shape[1] / resized.shape[0] == pytest.approx(750, rel=0.25)
    tensor = EvalTransform(64)(image)
    assert tensor.shape == (3, 64, 64) and torch.isfinite(tensor).all()


def test_constant_and_bilevel_images(bad_inputs: Path) -> None:
    assert (load_image(bad_inputs / "all_black.png") == 0).all()
    assert (load_image(bad_inputs / "all_white.png") == 255).all()
    bilevel = load_image(bad_inputs / "bilevel.png")
    assert set(np.unique(bilevel)) == {0, 255}


def test_monochrome1_reads_as_the_inverse_of_monochrome2(bad_inputs: Path) -> None:
    mono1 = load_image(bad_inputs / "monochrome1.dcm").astype(int)
    mono2 = load_image(bad_inputs / "monochrome2.dcm").astype(int)
    assert mono1.shape == mono2.shape == (256, 256)
    assert np.abs(mono1 - (255 - mono2)).max() <= 1
    assert mono2.min() == 0 and mono2.max() == 255  # the 12-bit window spans the full range
    assert mono2[:, -1].mean() > mono2[:, 0].mean() + 200  # the gradient survives


def test_load_many_accounts_for_every_file(bad_inputs: Path) -> None:
    report = LoadReport()
    loaded = dict(load_many([bad_inputs / name for name in IMAGE_FILES], report))
    assert report.loaded == len(loaded) == len(IMAGE_FILES) - len(UNREADABLE)
    assert report.failed == len(UNREADABLE)
    assert {Path(path).name for path, _ in report.failures} == set(UNREADABLE)
    assert sum(report.reasons().values()) == report.failed


# --------------------------------------------------------------------------- DICOM details


def test_dicom_window_and_rescale(tmp_path: Path) -> None:
    stored = np.array([[0, 100, 200, 300, 400]], dtype=np.uint16)
    # Rescale 2x - 100 -> [-100, 100, 300, 500, 700]; window [100, 500] -> 0 .. 255.
    path = write_dicom(tmp_path / "w.dcm", stored, window=(300.0, 400.0), rescale=(2.0, -100.0))
    image = load_image(path)
    assert image[0, 0] == 0 and image[0, 1] <= 1
    assert abs(int(image[0, 2]) - 128) <= 1
    assert image[0, 3] >= 254 and image[0, 4] == 255


def test_dicom_without_window_uses_the_real_range(tmp_path: Path) -> None:
    stored = np.array([[1000, 1500, 2000]], dtype=np.uint16)
    image = load_image(write_dicom(tmp_path / "n.dcm", stored))
    np.testing.assert_array_equal(image, [[0, 128, 255]])


def test_dicom_bits_above_bits_stored_are_ignored(tmp_path: Path) -> None:
    stored = np.array([[0, 2048, 4095]], dtype=np.uint16)
    path = write_dicom(tmp_path / "b.dcm", stored, window=(2048.0, 4096.0))
    clean = load_image(path)
    import pydicom

    ds = pydicom.dcmread(path)
    ds.PixelData = (stored | 0xF000).astype("<u2").tobytes()  # overlay garbage in bits 12-15
    ds.save_as(path)
    np.testing.assert_array_equal(load_image(path), clean)


def test_monochrome1_without_window_is_inverted(tmp_path: Path) -> None:
    pixels = gradient(maximum=4095).astype(np.uint16)
    mono1 = load_image(write_dicom(tmp_path / "m1.dcm", pixels, photometric="MONOCHROME1"))
    mono2 = load_image(write_dicom(tmp_path / "m2.dcm", pixels))
    np.testing.assert_array_equal(mono1, 255 - mono2)


def test_window_functions() -> None:
    values = np.array([0.0, 75.0, 100.0, 125.0, 200.0])
    linear = window_to_uint8(values, center=100, width=50)
    # PS3.3 C.11.2.1.2: ((x - (c - 0.5)) / (w - 1) + 0.5) * 255 -> 130.1 at the centre.
    assert list(linear) == [0, 0, 130, 255, 255]
    sigmoid = window_to_uint8(values, center=100, width=50, function="SIGMOID")
    assert sigmoid[2] in (127, 128) and list(sigmoid) == sorted(sigmoid)


def test_scale_to_uint8_constant_images() -> None:
    assert (scale_to_uint8(np.zeros((3, 3), np.uint16)) == 0).all()
    assert (scale_to_uint8(np.full((3, 3), 65535, np.uint16)) == 255).all()


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(ImageLoadError, match="no such file"):
        load_image(tmp_path / "absent.png")
    with pytest.raises(ImageLoadError, match="directory"):
        load_image(tmp_path)


# --------------------------------------------------------------------------- cache


def test_shorter_side_size_keeps_aspect() -> None:
    assert shorter_side_size(3000, 2500, 256) == (307, 256)
    assert shorter_side_size(100, 100, 256) == (256, 256)
    assert shorter_side_size(4, 3000, 256, 2048) == (3, 2048)


def test_cache_resized_writes_atomically_and_is_idempotent(tmp_path: Path) -> None:
    source = write_png(tmp_path / "src.png", gradient(600, 500))
    target = tmp_path / "cache" / "a.png"
    made = cache_resized(source, target, 256)
    assert made.shape == (307, 256) and made.source_shape == (600, 500) and not made.upsampled
    with Image.open(target) as cached:
        assert cached.mode == "L" and cached.size == (256, 307)
    stamp = target.stat().st_mtime_ns
    kept = cache_resized(source, target, 256)  # the source is not read again
    assert kept.shape == (307, 256) and kept.source_shape is None and not kept.upsampled
    assert target.stat().st_mtime_ns == stamp
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.png"]  # no temp files left
    small = write_png(tmp_path / "small.png", gradient(100, 80))
    assert cache_resized(small, tmp_path / "cache" / "b.png", 256).upsampled


def _radiograph(shared_data: Path, size: tuple[int, int]) -> np.ndarray:
    """A real Hannover radiograph upscaled to ``size`` (width, height)."""
    source = sorted((shared_data / "images/hannover/png").glob("*.png"))[0]
    with Image.open(source) as image:
        return np.asarray(image.convert("L").resize(size, Image.Resampling.BICUBIC))


def test_cache_png_is_lossless_and_no_larger_than_the_previous_encoding(shared_data: Path):
    """The cache's PNG (level 1, run-length strategy) holds the same pixels as the previous
    cache format (level 1, default strategy) and is not larger on real radiographs."""
    for source in sorted((shared_data / "images/hannover/png").glob("*.png"))[:4]:
        with Image.open(source) as image:
            pixels = resize_shorter_side(np.asarray(image.convert("L")), 256)
        previous = io.BytesIO()
        Image.fromarray(pixels, "L").save(previous, format="PNG", compress_level=1)
        data = png_bytes(pixels)
        with Image.open(io.BytesIO(data)) as new, Image.open(previous) as old:
            assert new.mode == old.mode == "L"
            assert np.array_equal(np.asarray(new), np.asarray(old))
            assert np.array_equal(np.asarray(new), pixels)
        assert len(data) <= len(previous.getvalue())


def test_large_jpeg_decodes_reduced_and_matches_the_full_decode(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = write_jpeg(tmp_path / "big.jpg", _radiograph(shared_data, (1272, 1528)))
    full = resize_shorter_side(load_image(source), 128)
    decoded = []
    original_load = ImageFile.ImageFile.load

    def spy(image):
        result = original_load(image)
        decoded.append(image.size)
        return result

    monkeypatch.setattr(ImageFile.ImageFile, "load", spy)
    fast = load_resized(source, 128)
    assert set(decoded) == {(159, 191)}  # the 1/8 DCT scale, not 1272 x 1528
    assert fast.shape == full.shape == (154, 128)
    difference = np.abs(fast.astype(np.int16) - full).mean()
    assert difference < 1.0, difference  # grey levels
    decoded.clear()
    load_resized(source, 128, draft_margin=2)
    assert set(decoded) == {(318, 382)}


def test_png_and_small_jpeg_resize_as_before(tmp_path: Path) -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (300, 260), dtype=np.uint8)
    png = write_png(tmp_path / "a.png", pixels)
    np.testing.assert_array_equal(load_resized(png, 64), resize_shorter_side(load_image(png), 64))
    small = write_jpeg(tmp_path / "a.jpg", pixels[:100, :90])  # < 2x the target: full decode
    np.testing.assert_array_equal(load_resized(small, 64),
                                  resize_shorter_side(load_image(small), 64))


def test_cache_of_a_bad_source_leaves_nothing(bad_inputs: Path, tmp_path: Path) -> None:
    target = tmp_path / "cache" / "bad.png"
    with pytest.raises(ImageLoadError):
        cache_resized(bad_inputs / "truncated.png", target)
    assert not target.exists()


# --------------------------------------------------------------------------- transforms


def _left_marked(height: int = 300, width: int = 260) -> np.ndarray:
    image = np.full((height, width), 40, np.uint8)
    image[:, : width // 3] = 220  # a bright left third
    return image


def test_train_transform_is_seeded() -> None:
    image = _left_marked()
    transform = TrainTransform(AugmentConfig(size=64))
    first = transform(image, torch.Generator().manual_seed(7))
    again = transform(image, torch.Generator().manual_seed(7))
    other = transform(image, torch.Generator().manual_seed(8))
    assert first.shape == (3, 64, 64)
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_no_horizontal_flip_by_default_keeps_laterality() -> None:
    image = _left_marked()
    transform = TrainTransform(AugmentConfig(size=64), GREY)
    flipping = TrainTransform(AugmentConfig(size=64, hflip=1.0), GREY)
    for seed in range(20):
        kept = transform(image, torch.Generator().manual_seed(seed))[0]
        assert kept[:, :16].mean() > kept[:, -16:].mean()
        flipped = flipping(image, torch.Generator().manual_seed(seed))[0]
        assert flipped[:, :16].mean() < flipped[:, -16:].mean()


def test_crop_stays_inside_the_image_and_covers_the_scale() -> None:
    config = AugmentConfig(size=32)
    transform = TrainTransform(config)
    generator = torch.Generator().manual_seed(0)
    for width, height in [(256, 256), (256, 400), (500, 256), (4, 3000)]:
        lefts, tops = set(), set()
        for _ in range(50):
            left, top, crop_w, crop_h = transform.crop_box(width, height, generator)
            assert 0 <= left and left + crop_w <= width + 1e-6
            assert 0 <= top and top + crop_h <= height + 1e-6
            assert crop_w * crop_h >= config.scale[0] * width * height * (1 - 1e-6)
            if (width, height) == (256, 256):
                assert config.ratio[0] - 1e-6 <= crop_w / crop_h <= config.ratio[1] + 1e-6
            lefts.add(round(left, 3))
            tops.add(round(top, 3))
        assert len(lefts) > 10 or len(tops) > 10  # the position stays random


def test_eval_transform_normalises_per_channel() -> None:
    white = np.full((50, 80), 255, np.uint8)
    tensor = EvalTransform(32, IMAGENET)(white)
    expected = (1 - torch.tensor(IMAGENET.mean)) / torch.tensor(IMAGENET.std)
    torch.testing.assert_close(tensor.mean(dim=(1, 2)), expected)
    grey = EvalTransform(32, GREY)(white)
    assert grey.shape == (1, 32, 32) and torch.allclose(grey, torch.ones(1))


def test_eval_transform_takes_the_central_square() -> None:
    image = np.zeros((100, 300), np.uint8)
    image[:, 100:200] = 255  # the central square is white, the sides black
    tensor = EvalTransform(50, GREY)(image)
    assert torch.allclose(tensor, torch.ones(1))


def test_sample_generator_depends_on_every_part() -> None:
    def draw(seed: int, epoch: int, index: int) -> float:
        return float(torch.rand((), generator=sample_generator(seed, epoch, index)))

    assert draw(1, 2, 3) == draw(1, 2, 3)
    assert len({draw(1, 2, 3), draw(1, 2, 4), draw(1, 3, 3), draw(2, 2, 3)}) == 4


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="scale"):
        AugmentConfig(scale=(0.0, 1.0))
    with pytest.raises(ValueError, match="hflip"):
        AugmentConfig(hflip=2.0)
