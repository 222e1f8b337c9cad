"""Clip2Clinic on a demo-like checkpoint (1-channel Swin, text head over frozen MiniLM) and a
paper-like one (RGB Swin, fine-tuned BERT tower): embeddings equal ClinicCLIP's own on the
same inputs, checkpoint resolution, safetensors only, zero-shot and retrieval semantics, and
the examples of docs/api.md."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from clip2clinic.api import Clip2Clinic, resolve_checkpoint
from clip2clinic.data.images import load_image
from clip2clinic.data.transforms import EvalTransform, Normalization
from clip2clinic.embedded import MINILM_SOURCE
from clip2clinic.io import InputError
from clip2clinic.model import ClinicCLIP, encode_token_features, load_tokenizer
from tests.api_fixtures import make_checkpoint, write_films

REPO = Path(__file__).resolve().parents[1]
KINDS = ("demo", "paper")
TEXTS = [
    "No pneumothorax.",
    "Small left pleural effusion with adjacent atelectasis.",
    "Heart size is normal. The lungs are clear. " * 8,  # longer than max_length tokens
    "Interval placement of a right internal jugular central venous catheter.",
    "Moderate cardiomegaly.",
]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("checkpoints")
    return {kind: make_checkpoint(kind, root / kind) for kind in KINDS}


@pytest.fixture(scope="module")
def clips(checkpoints) -> dict[str, Clip2Clinic]:
    return {kind: Clip2Clinic.from_pretrained(path) for kind, path in checkpoints.items()}


@pytest.fixture(scope="module")
def films(tmp_path_factory) -> list[Path]:
    """A 32 px square (the towers' size), non-square and larger films."""
    return write_films(tmp_path_factory.mktemp("films"), [(32, 32), (48, 40), (30, 90), (64, 64)])


def reference_model(checkpoint: Path) -> ClinicCLIP:
    return ClinicCLIP.from_pretrained(checkpoint).eval()


@pytest.mark.parametrize("kind", KINDS)
def test_image_embeddings_equal_the_models_on_hand_normalised_pixels(kind, checkpoints, clips,
                                                                     films):  # fmt: skip
    clip, model = clips[kind], reference_model(checkpoints[kind])
    mean, std = model.config.image.mean, model.config.image.std
    assert len(mean) == (1 if kind == "demo" else 3)
    square = np.asarray(Image.open(films[0]), dtype=np.float32) / 255  # already 32 x 32
    channels = [(square - m) / s for m, s in zip(mean, std, strict=True)]
    pixels = torch.from_numpy(np.stack(channels))
    with torch.no_grad():
        expected = model.encode_image(pixels[None]).numpy()
    got = clip.embed_images([films[0]])
    assert got.dtype == np.float32 and got.shape == (1, 24)
    np.testing.assert_allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_paths_pil_images_and_arrays_embed_alike_in_any_batch(kind, checkpoints, clips, films):
    clip, model = clips[kind], reference_model(checkpoints[kind])
    transform = EvalTransform(32, Normalization(model.config.image.mean, model.config.image.std))
    with torch.no_grad():
        expected = model.encode_image(torch.stack([transform(load_image(p)) for p in films]))
    by_path = clip.embed_images(films, batch_size=3)
    np.testing.assert_allclose(by_path, expected.numpy(), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(by_path, axis=1), 1.0, atol=1e-5)
    pil = [Image.open(p) for p in films]
    rgb = [image.convert("RGB") for image in pil]
    arrays = [np.asarray(image) for image in pil]
    for other in (pil, rgb, arrays, [str(p) for p in films]):
        np.testing.assert_allclose(clip.embed_images(other, batch_size=1), by_path, atol=1e-5)
    assert not np.allclose(by_path[0], by_path[1], atol=1e-3), "different films, same embedding"


@pytest.mark.parametrize("kind", KINDS)
def test_text_embeddings_equal_the_models_on_the_training_inputs(kind, checkpoints, clips):
    clip, model = clips[kind], reference_model(checkpoints[kind])
    max_length = model.config.text.max_length
    if kind == "demo":  # the prepare stage's cached frozen-MiniLM features
        text, mask = encode_token_features(TEXTS, MINILM_SOURCE, max_length)
    else:  # the prepare stage's token ids, padded to max_length
        tokens = load_tokenizer(MINILM_SOURCE)(
            TEXTS, truncation=True, max_length=max_length, padding="max_length", return_tensors="pt"
        )
        text, mask = tokens["input_ids"], tokens["attention_mask"]  # fmt: skip
    with torch.no_grad():
        expected = model.encode_text(text, mask).numpy()
    got = clip.embed_texts(TEXTS, batch_size=2)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    beyond_max_length = clip.embed_texts([TEXTS[2] + " Pneumothorax."])
    np.testing.assert_allclose(beyond_max_length[0], got[2], atol=1e-5)


def test_bad_inputs_are_refused_with_their_name(clips, films, tmp_path):
    clip = clips["demo"]
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(films[3].read_bytes()[:200])
    with pytest.raises(InputError, match=re.escape(str(truncated))):
        clip.embed_images([films[0], truncated])
    with pytest.raises(InputError, match="pass a list"):
        clip.embed_images(str(films[0]))
    with pytest.raises(InputError, match="image 1: .*dict"):
        clip.embed_images([films[0], {}])
    with pytest.raises(InputError, match="text 1: expected a string, got nan"):
        clip.embed_texts(["Clear lungs.", float("nan")])
    with pytest.raises(InputError, match="width 5"):
        clip.similarity(np.zeros((2, 5), np.float32), ["Clear lungs."])


def test_a_run_dir_resolves_to_final_else_its_newest_complete_step(tmp_path):
    run = tmp_path / "run"
    step_10 = make_checkpoint("demo", run / "checkpoints" / "step-000010", seed=1)
    step_200 = make_checkpoint("demo", run / "checkpoints" / "step-000200", seed=2)
    final = make_checkpoint("demo", run / "checkpoints" / "final", seed=3)
    incomplete = run / "checkpoints" / "step-000300"
    incomplete.mkdir()
    shutil.copy(final / "config.json", incomplete / "config.json")  # no weights: skipped
    assert resolve_checkpoint(run) == final
    assert resolve_checkpoint(step_10) == step_10
    fingerprints = {Clip2Clinic.from_pretrained(p).fingerprint for p in (run, step_10, step_200)}
    assert len(fingerprints) == 3
    assert Clip2Clinic.from_pretrained(run).fingerprint == \
        Clip2Clinic.from_pretrained(final).fingerprint  # fmt: skip
    shutil.rmtree(final)
    assert resolve_checkpoint(run) == step_200


def test_folders_without_safetensors_weights_are_refused(checkpoints, tmp_path):
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    shutil.copy(checkpoints["demo"] / "config.json", pickled / "config.json")
    (pickled / "pytorch_model.bin").write_bytes(b"\x80\x04 a pickle")
    with pytest.raises(InputError, match=f"{re.escape(str(pickled))}: holds only pickled .*"
                                         "pytorch_model.bin.*safetensors only"):  # fmt: skip
        Clip2Clinic.from_pretrained(pickled)
    with pytest.raises(InputError, match="not a checkpoint folder"):
        Clip2Clinic.from_pretrained(tmp_path)
    with pytest.raises(InputError, match="no such checkpoint"):
        Clip2Clinic.from_pretrained(tmp_path / "missing")


def test_save_pretrained_round_trip_keeps_embeddings_and_fingerprint(checkpoints, clips, films,
                                                                     tmp_path):  # fmt: skip
    clip = clips["paper"]
    copy = Clip2Clinic.from_pretrained(clip.save_pretrained(tmp_path / "copy"))
    assert copy.fingerprint == clip.fingerprint
    in_memory = Clip2Clinic(reference_model(checkpoints["paper"]))
    assert in_memory.fingerprint == clip.fingerprint
    np.testing.assert_array_equal(copy.embed_images(films), clip.embed_images(films))
    np.testing.assert_array_equal(copy.embed_texts(TEXTS), clip.embed_texts(TEXTS))
    with torch.no_grad():
        in_memory.model.image.projection.bias[0] += 1e-3
    assert Clip2Clinic(in_memory.model).fingerprint != clip.fingerprint


@pytest.mark.parametrize("kind", KINDS)
def test_zero_shot_is_the_binary_softmax_of_positive_against_negative_prompts(kind, clips,
                                                                              films):  # fmt: skip
    clip = clips[kind]
    labels = ["Pneumothorax", "Pleural Effusion", "Edema"]
    table = clip.zero_shot(films, labels)
    assert list(table.columns) == labels and list(table.index) == [str(p) for p in films]
    assert ((table.to_numpy() > 0) & (table.to_numpy() < 1)).all()
    positive = clip.embed_texts(labels)
    negative = clip.embed_texts([f"No {label}" for label in labels])
    images = clip.embed_images(films)
    margin = (images @ positive.T - images @ negative.T) / clip.temperature
    np.testing.assert_allclose(table.to_numpy(), 1 / (1 + np.exp(-margin)), atol=1e-5)
    flipped = clip.zero_shot(films, labels, templates=(["No {label}"], ["{label}"]))
    np.testing.assert_allclose(flipped.to_numpy(), 1 - table.to_numpy(), atol=1e-5)
    # An image embedding equal to a label's positive prompt says "present", to its negative
    # prompt "absent".
    planted = clip.zero_shot(np.stack([positive[0], negative[0]]), labels[:1])
    assert planted.iloc[0, 0] > 0.5 > planted.iloc[1, 0]


def test_zero_shot_prompt_ensembles_average_the_prompt_embeddings(clips, films):
    clip = clips["demo"]
    templates = (["{label}", "There is {label}."], ["No {label}", "There is no {label}."])
    table = clip.zero_shot(films, ["pneumothorax"], templates=templates)

    def ensemble(prompts):
        mean = clip.embed_texts(prompts).mean(axis=0)
        return mean / np.linalg.norm(mean)

    images = clip.embed_images(films)
    margin = images @ (ensemble(["pneumothorax", "There is pneumothorax."])
                       - ensemble(["No pneumothorax", "There is no pneumothorax."]))  # fmt: skip
    np.testing.assert_allclose(table["pneumothorax"], 1 / (1 + np.exp(-margin / 0.1)), atol=1e-5)
    with pytest.raises(InputError, match="placeholder"):
        clip.zero_shot(films, ["pneumothorax"], templates=(["pneumothorax"], ["No {label}"]))


@pytest.mark.parametrize("kind", KINDS)
def test_retrieve_ranks_reports_by_similarity(kind, clips, films):
    clip = clips[kind]
    images, reports = clip.embed_images(films), clip.embed_texts(TEXTS)
    similarity = clip.similarity(images, reports)
    np.testing.assert_allclose(similarity, images @ reports.T, atol=1e-6)
    top = clip.retrieve(films, TEXTS, k=3)
    for row, hits in zip(similarity, top, strict=True):
        assert [index for index, _ in hits] == list(np.argsort(-row)[:3])
        np.testing.assert_allclose([score for _, score in hits], np.sort(row)[::-1][:3], atol=1e-5)
    assert all(len(hits) == len(TEXTS) for hits in clip.retrieve(images, reports, k=50))
    itself = clip.retrieve(reports[::-1].copy(), reports, k=1)  # a report finds itself first
    assert [hits[0][0] for hits in itself] == list(range(len(TEXTS)))[::-1]
    assert all(hits[0][1] == pytest.approx(1.0, abs=1e-5) for hits in itself)


def test_real_radiographs_and_dicom(shared_data, clips, checkpoints):
    images = sorted((shared_data / "images" / "hannover" / "png").glob("*.png"))[:3]
    images += [shared_data / "bad_inputs" / "monochrome2.dcm",
               shared_data / "bad_inputs" / "monochrome1.dcm"]  # fmt: skip
    for kind in KINDS:
        model = reference_model(checkpoints[kind])
        transform = EvalTransform(32, Normalization(model.config.image.mean,
                                                    model.config.image.std))  # fmt: skip
        with torch.no_grad():
            expected = model.encode_image(torch.stack([transform(load_image(p)) for p in images]))
        got = clips[kind].embed_images(images)
        np.testing.assert_allclose(got, expected.numpy(), atol=1e-5)
        cosine = got @ got.T
        assert (cosine[~np.eye(len(images), dtype=bool)] < 1 - 1e-4).all()


def python_blocks(markdown: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", markdown, flags=re.DOTALL)


def test_docs_examples_run(checkpoints, films, tmp_path):
    blocks = python_blocks((REPO / "docs" / "api.md").read_text(encoding="utf-8"))
    assert len(blocks) >= 3
    namespace = {
        "checkpoint": str(checkpoints["demo"]),
        "image_paths": [str(p) for p in films],
        "cache_dir": str(tmp_path / "cache"),
        "out_dir": str(tmp_path / "out"),
    }
    for block in blocks:
        exec(compile(block, "docs/api.md", "exec"), namespace)  # noqa: S102


@pytest.mark.parametrize("kind", KINDS)
def test_open_clip_style_entry_point_gives_the_apis_embeddings(kind, checkpoints, clips, films):
    import clip2clinic

    model, preprocess, tokenizer = clip2clinic.create_model_and_transforms(checkpoints[kind])
    with torch.no_grad():
        images = model.encode_image(torch.stack([preprocess(p) for p in films]))
        texts = model.encode_text(tokenizer(TEXTS))
    np.testing.assert_allclose(images.numpy(), clips[kind].embed_images(films), atol=1e-5)
    np.testing.assert_allclose(texts.numpy(), clips[kind].embed_texts(TEXTS), atol=1e-5)
    one = tokenizer("No pneumothorax.")
    assert one.values.shape[0] == 1 and one.attention_mask.all()


def test_the_text_tower_makes_the_inputs_prepare_caches(checkpoints, monkeypatch):
    """Mode "head": the tower's input encoder gives the cached frozen features (per text,
    trimmed to its tokens), and keeps them: a text seen again skips the frozen model."""
    model = reference_model(checkpoints["demo"])
    assert model.text.cache_key == "features"
    inputs = model.text.input_encoder()
    cached, cached_mask = encode_token_features(TEXTS, MINILM_SOURCE, model.config.text.max_length)
    features, mask = inputs(TEXTS)
    length = mask.shape[1]
    assert torch.equal(mask, cached_mask[:, :length]) and not cached_mask[:, length:].any()
    torch.testing.assert_close(features.float(), cached[:, :length].float(), atol=2e-3, rtol=0)

    def no_model_run(ids):
        raise AssertionError("the frozen model ran for a text it had seen")

    monkeypatch.setattr(inputs.encoder, "run", no_model_run)
    again, _ = inputs(TEXTS[::-1])
    assert torch.equal(again, features.flip(0)[:, : again.shape[1]])
