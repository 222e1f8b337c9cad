"""ClinicCLIP the huggingface_hub way, offline: a Hub cache snapshot (models--org--name/
snapshots/<rev>/, refs/main) loads by hub id with HF_HUB_OFFLINE set, without a socket; the
model card and config.json say what the weights are; push_to_hub uploads the saved folder
(HfApi mocked); older checkpoints without the new fields still load."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import huggingface_hub.constants
import numpy as np
import pytest
import torch

from clip2clinic import Clip2Clinic, create_model_and_transforms
from clip2clinic.io import InputError
from clip2clinic.model import ClinicCLIP
from tests.api_fixtures import make_checkpoint

REVISION = "0123456789abcdef0123456789abcdef01234567"
REPO_ID = "lab/clinic-clip-demo"
TEXTS = ["No pneumothorax.", "Small left pleural effusion."]


@pytest.fixture
def no_network(refused_connections, monkeypatch) -> list:
    """Every outgoing connection is recorded and refused; HF_HUB_OFFLINE is set."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return refused_connections


def hub_cache(root: Path, checkpoint: Path, repo_id: str = REPO_ID) -> Path:
    """``root`` laid out as a Hugging Face Hub cache holding ``checkpoint`` as ``repo_id``."""
    repo = root / f"models--{repo_id.replace('/', '--')}"
    shutil.copytree(checkpoint, repo / "snapshots" / REVISION)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(REVISION)
    return root


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return make_checkpoint("demo", tmp_path_factory.mktemp("ckpt") / "demo")


def test_a_hub_id_loads_from_the_cache_offline(checkpoint, tmp_path, no_network, monkeypatch):
    cache = hub_cache(tmp_path / "hub", checkpoint)
    local = Clip2Clinic.from_pretrained(checkpoint)
    by_id = Clip2Clinic.from_pretrained(REPO_ID, cache_dir=cache)
    assert by_id.fingerprint == local.fingerprint
    assert (by_id.embed_texts(TEXTS) == local.embed_texts(TEXTS)).all()
    model, preprocess, tokenizer = create_model_and_transforms(REPO_ID, cache_dir=cache)
    with torch.no_grad():
        embedded = model.encode_text(tokenizer(TEXTS)).numpy()
    np.testing.assert_allclose(embedded, local.embed_texts(TEXTS), atol=1e-5)
    # HF_HUB_CACHE, as huggingface_hub reads it, is where a hub id is looked up by default
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    model = ClinicCLIP.from_pretrained(REPO_ID)
    assert all(torch.equal(v, local.model.state_dict()[k]) for k, v in model.state_dict().items())
    assert no_network == []


def test_a_hub_id_not_in_the_cache_fails_at_once_offline(tmp_path, no_network):
    with pytest.raises(InputError, match="not in the local Hugging Face cache.*HF_HUB_OFFLINE"):
        ClinicCLIP.from_pretrained("lab/not-cached", cache_dir=tmp_path)
    with pytest.raises(InputError, match="no such checkpoint folder, and not a hub id"):
        ClinicCLIP.from_pretrained("../up/and/away")
    assert no_network == []


def test_a_hub_snapshot_with_only_pickled_weights_is_refused(checkpoint, tmp_path, no_network,
                                                             monkeypatch):  # fmt: skip
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    shutil.copy(checkpoint / "config.json", pickled)
    (pickled / "pytorch_model.bin").write_bytes(b"not to be unpickled")
    cache = hub_cache(tmp_path / "hub", pickled)

    def no_pickles(*args, **kwargs):
        raise AssertionError("torch.load was called")

    monkeypatch.setattr(torch, "load", no_pickles)
    with pytest.raises(InputError, match="no model.safetensors"):
        ClinicCLIP.from_pretrained(REPO_ID, cache_dir=cache)


def test_config_json_and_model_card_describe_the_weights(tmp_path):
    torch.manual_seed(0)
    model = ClinicCLIP.from_pretrained(make_checkpoint("paper", tmp_path / "paper"))
    metrics = {"cxr_align_a": 0.8125, "zeroshot_mean_auc": 0.7}
    model.save_pretrained(tmp_path / "out", model_card_kwargs={
        "variant": "n_g_dtcg", "training_data": "MIMIC-CXR-JPG 2.1.0, train split",
        "settings": {"epochs": 30, "seed": 1}, "metrics": metrics})  # fmt: skip
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["model_type"] == "clinic_clip" and config["clip2clinic_version"]
    assert config["image"]["image_size"] == 32 and config["text"]["max_length"] == 16
    card = (tmp_path / "out" / "README.md").read_text()
    assert card.startswith("---\n") and "library_name: clip2clinic" in card
    for expected in ("# ClinicCLIP (n_g_dtcg)", "MIMIC-CXR-JPG 2.1.0, train split",
                     "| epochs | 30 |", "| cxr_align_a | 0.8125 |", "| text_mode | full |",
                     "Research use only", "PhysioNet Credentialed Health Data License"):
        assert expected in card, expected
    bare = (tmp_path / "bare")
    model.save_pretrained(bare)
    assert "## Evaluation" not in (bare / "README.md").read_text()


def test_an_older_checkpoint_without_the_new_fields_still_loads(checkpoint, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(checkpoint, old)
    (old / "README.md").unlink()
    config = json.loads((old / "config.json").read_text())
    for key in ("model_type", "clip2clinic_version"):
        del config[key]
    del config["image"]["image_size"]
    (old / "config.json").write_text(json.dumps(config))
    loaded = Clip2Clinic.from_pretrained(old)
    assert loaded.image_size == 32
    assert (loaded.embed_texts(TEXTS) == Clip2Clinic.from_pretrained(checkpoint)
            .embed_texts(TEXTS)).all()  # fmt: skip
    config["model_type"] = "bert"
    (old / "config.json").write_text(json.dumps(config))
    with pytest.raises(InputError, match="'bert' is not a ClinicCLIP config"):
        ClinicCLIP.from_pretrained(old)


def test_push_to_hub_uploads_the_saved_folder(checkpoint, monkeypatch):
    calls: dict = {}

    class FakeApi:
        def __init__(self, token=None):
            calls["token"] = token

        def create_repo(self, repo_id, private=None, exist_ok=False):
            calls["repo"] = (repo_id, private)
            return type("RepoUrl", (), {"repo_id": repo_id})()

        def upload_folder(self, repo_id, folder_path, **kwargs):
            calls["files"] = sorted(p.name for p in Path(folder_path).iterdir())
            calls["card"] = (Path(folder_path) / "README.md").read_text()
            return f"https://huggingface.co/{repo_id}/commit/abc"

    monkeypatch.setattr("huggingface_hub.hub_mixin.HfApi", FakeApi)
    model = ClinicCLIP.from_pretrained(checkpoint)
    url = model.push_to_hub(REPO_ID, private=True, token="t",
                            model_card_kwargs={"variant": "dt_c"})  # fmt: skip
    assert url.endswith("/commit/abc") and calls["repo"] == (REPO_ID, True)
    assert calls["files"] == ["README.md", "config.json", "model.safetensors"]
    assert "# ClinicCLIP (dt_c)" in calls["card"] and REPO_ID in calls["card"]
