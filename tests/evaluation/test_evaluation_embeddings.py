"""The embedding cache: a second call reads from disk without running the model; a changed
checkpoint, input order or file misses; unreadable images and empty texts are skipped, counted
and named, never fatal."""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from clip2clinic.api import Clip2Clinic
from clip2clinic.evaluation.embeddings import (
    EmbedSettings,
    cached_image_embeddings,
    cached_text_embeddings,
)
from clip2clinic.io import InputError
from tests.api_fixtures import film, make_checkpoint, write_films

TEXTS = ["No pneumothorax.", "Small left pleural effusion.", "Moderate cardiomegaly."]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return make_checkpoint("demo", tmp_path_factory.mktemp("checkpoint"))


@pytest.fixture
def clip(checkpoint) -> Clip2Clinic:
    """A fresh model whose image and text encoder calls are counted in ``clip.calls``."""
    clip = Clip2Clinic.from_pretrained(checkpoint)
    clip.calls = {"image": 0, "text": 0}
    for kind in ("image", "text"):
        original = getattr(clip.model, f"encode_{kind}")

        def counted(*args, _kind=kind, _original=original):
            clip.calls[_kind] += 1
            return _original(*args)

        setattr(clip.model, f"encode_{kind}", counted)
    return clip


@pytest.fixture
def films(tmp_path) -> list[Path]:
    return write_films(tmp_path / "films", [(32, 32), (40, 48), (64, 50), (36, 36), (50, 40)])


def cache_files(cache: Path) -> list[Path]:
    return sorted(cache.rglob("*.safetensors"))


def test_second_call_reads_the_cache_without_running_the_model(clip, films, tmp_path):
    cache = tmp_path / "cache"
    embeddings, ok = cached_image_embeddings(clip, films, cache, EmbedSettings(batch_size=2))
    assert clip.calls["image"] == 3 and ok.all()
    np.testing.assert_allclose(embeddings, clip.embed_images(films), atol=1e-6)
    (file,) = cache_files(cache)
    assert file.parent.name == clip.fingerprint[:16]
    assert not [p for p in file.parent.iterdir() if p.suffix == ".tmp"]
    calls = clip.calls["image"]
    again, ok_again = cached_image_embeddings(clip, [str(p) for p in films], cache)
    assert clip.calls["image"] == calls, "the cache was not used"
    np.testing.assert_array_equal(again, embeddings)
    np.testing.assert_array_equal(ok_again, ok)


def test_texts_are_cached_and_empty_ones_skipped(clip, tmp_path):
    cache = tmp_path / "cache"
    texts = [TEXTS[0], "", TEXTS[1], float("nan"), TEXTS[2]]
    with pytest.warns(UserWarning, match=r"2 of 5 texts skipped: text 1: .*''.*text 3: .*nan"):
        embeddings, ok = cached_text_embeddings(clip, texts, cache)
    assert ok.tolist() == [True, False, True, False, True]
    np.testing.assert_allclose(embeddings[ok], clip.embed_texts(TEXTS), atol=1e-5)
    assert not embeddings[~ok].any()
    calls = clip.calls["text"]
    with pytest.warns(UserWarning, match="2 of 5 texts skipped"):  # said again on a cache hit
        again, _ = cached_text_embeddings(clip, texts, cache)
    assert clip.calls["text"] == calls
    np.testing.assert_array_equal(again, embeddings)
    cached_text_embeddings(clip, TEXTS[::-1], cache)  # another order: another entry
    assert clip.calls["text"] > calls and len(cache_files(cache)) == 2


def test_another_checkpoint_order_or_changed_file_misses(clip, films, tmp_path):
    cache = tmp_path / "cache"
    first, _ = cached_image_embeddings(clip, films, cache)
    calls = clip.calls["image"]
    reordered, _ = cached_image_embeddings(clip, films[::-1], cache)
    assert clip.calls["image"] > calls
    np.testing.assert_allclose(reordered, first[::-1], atol=1e-6)
    Image.fromarray(film(32, 32, seed=99), "L").save(films[0])
    stat = films[0].stat()
    os.utime(films[0], ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    changed, _ = cached_image_embeddings(clip, films, cache)
    assert not np.allclose(changed[0], first[0], atol=1e-4)
    np.testing.assert_array_equal(changed[1:], first[1:])
    other = Clip2Clinic.from_pretrained(make_checkpoint("demo", tmp_path / "other", seed=7))
    assert other.fingerprint != clip.fingerprint
    cached_image_embeddings(other, films, cache)
    assert len({p.parent for p in cache_files(cache)}) == 2
    assert len(cache_files(cache)) == 4


def test_unreadable_images_are_skipped_counted_and_named(clip, films, tmp_path):
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(films[2].read_bytes()[:150])
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    missing = tmp_path / "missing.png"
    paths = [films[0], truncated, films[1], empty, missing, films[2]]
    with pytest.warns(UserWarning) as caught:
        embeddings, ok = cached_image_embeddings(clip, paths, tmp_path / "cache",
                                                 EmbedSettings(batch_size=2))
    (message,) = [str(w.message) for w in caught if "skipped" in str(w.message)]
    assert message.startswith("3 of 6 images skipped")
    for bad in (truncated, empty, missing):
        assert re.search(re.escape(str(bad)) + ": ", message)
    assert ok.tolist() == [True, False, True, False, False, True]
    np.testing.assert_allclose(embeddings[ok], clip.embed_images(films[:3]), atol=1e-6)
    assert not embeddings[~ok].any()


def test_an_unreadable_cache_file_is_recomputed(clip, films, tmp_path):
    cache = tmp_path / "cache"
    expected, _ = cached_image_embeddings(clip, films, cache)
    (file,) = cache_files(cache)
    file.write_bytes(b"not safetensors")
    with pytest.warns(UserWarning, match="unreadable embedding cache, recomputing"):
        embeddings, ok = cached_image_embeddings(clip, films, cache)
    np.testing.assert_array_equal(embeddings, expected)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cached_image_embeddings(clip, films, cache)  # the rewritten file reads cleanly


def test_fault_corpus_images_never_stop_the_batch(clip, bad_inputs, tmp_path):
    paths = sorted(p for p in bad_inputs.iterdir() if p.suffix in (".png", ".jpg", ".dcm"))
    with pytest.warns(UserWarning, match="skipped"):
        embeddings, ok = cached_image_embeddings(clip, paths, tmp_path / "cache")
    skipped = {p.name for p, good in zip(paths, ok, strict=True) if not good}
    assert skipped == {"truncated.png", "zero_bytes.jpg", "not_an_image.jpg", "truncated.dcm"}
    np.testing.assert_allclose(np.linalg.norm(embeddings[ok], axis=1), 1.0, atol=1e-5)


def test_reader_processes_give_the_same_embeddings_and_name_bad_files(clip, films, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    paths = [*films[:2], bad, *films[2:]]
    with pytest.warns(UserWarning, match=re.escape(str(bad))):
        embeddings, ok = cached_image_embeddings(clip, paths, tmp_path / "cache",
                                                 EmbedSettings(batch_size=2, workers=2))
    assert ok.tolist() == [True, True, False, True, True, True]
    np.testing.assert_allclose(embeddings[ok], clip.embed_images(films), atol=1e-6)


def test_on_cpu_half_precision_falls_back_to_fp32_and_shares_its_cache(clip, films, tmp_path):
    cache = tmp_path / "cache"
    fp32, _ = cached_image_embeddings(clip, films, cache)
    calls = clip.calls["image"]
    with pytest.warns(UserWarning, match="--precision bf16: embedding on cpu runs in fp32"):
        again, _ = cached_image_embeddings(clip, films, cache, EmbedSettings(precision="bf16"))
    assert clip.calls["image"] == calls and np.array_equal(again, fp32)  # read from the cache


def test_half_precision_rows_are_unit_float32_near_fp32_and_cached_apart(
    clip, films, tmp_path, monkeypatch
):
    cache = tmp_path / "cache"
    fp32, _ = cached_image_embeddings(clip, films, cache)
    monkeypatch.setattr(EmbedSettings, "precision_on", lambda self, device: "bf16")
    half, ok = cached_image_embeddings(clip, films, cache)  # CPU autocast in bf16
    texts, _ = cached_text_embeddings(clip, TEXTS, cache)
    assert half.dtype == np.float32 and ok.all()
    np.testing.assert_allclose(np.linalg.norm(half, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(texts, axis=1), 1.0, atol=1e-6)
    assert not np.array_equal(half, fp32)  # really computed in bf16
    assert np.min(np.sum(half * fp32, axis=1)) > 0.99  # cosine to the fp32 embedding
    assert len(cache_files(cache)) == 3  # fp32 images, bf16 images, bf16 texts


def test_gpu_precision_choice(monkeypatch):
    cuda = torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert EmbedSettings().precision_on(cuda) == "fp16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert EmbedSettings().precision_on(cuda) == "bf16"
    assert EmbedSettings(precision="fp32").precision_on(cuda) == "fp32"
    assert EmbedSettings(precision="fp16").precision_on(cuda) == "fp16"
    assert EmbedSettings().precision_on(torch.device("cpu")) == "fp32"


@pytest.mark.parametrize(("field", "value", "message"), [
    ("batch_size", 0, "--batch-size"), ("workers", -1, "--workers"),
    ("precision", "fp8", "--precision"),
])  # fmt: skip
def test_bad_settings_are_named(field, value, message):
    with pytest.raises(InputError, match=message):
        EmbedSettings(**{field: value})
