"""Training never silently wrong: an unreadable cached image drops its row (never another
row's image in its place), counted and bounded; a checkpoint with non-finite or unreadable
weights is refused by name, and resume falls back to the newest good one, saying why."""

from __future__ import annotations

import logging
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from clip2clinic.api import Clip2Clinic
from clip2clinic.cli import main
from clip2clinic.data.corpus import PreparedCorpus
from clip2clinic.data.manifest import read_manifest
from clip2clinic.data.transforms import GREY
from clip2clinic.io import InputError
from clip2clinic.run_dir import RunDir
from clip2clinic.training.config import with_overrides
from clip2clinic.training.data import Collate, ManifestDataset, open_text_cache
from clip2clinic.training.trainer import resolve_run, train
from tests.training_fixtures import tiny_config, tiny_config_file

pytestmark = pytest.mark.faults


@pytest.fixture
def corrupt_phantom(tiny_prepared_phantom, tmp_path):
    """A copy of the prepared phantom whose first training image is garbage: (manifest, the
    index of that row in the train split)."""
    source = tiny_prepared_phantom.parent
    shutil.copytree(source, tmp_path / "prepared")
    manifest = tmp_path / "prepared" / tiny_prepared_phantom.name
    first = read_manifest(manifest, split="train")["image_cache"].iloc[0]
    (PreparedCorpus(manifest).cache / first).write_bytes(b"\x89PNG truncated")
    return manifest, 0


def test_unreadable_image_drops_its_row_never_borrows_another(corrupt_phantom, caplog):
    manifest, broken = corrupt_phantom
    data = ManifestDataset(manifest, open_text_cache(manifest, "head"), 32, GREY, augment=None)
    assert data[broken] is None
    assert "unreadable cached image" in caplog.text and "dropped" in caplog.text
    batch = Collate()([data[broken], data[1], data[2]])
    assert batch.size == 2 and batch.dropped == 1
    assert torch.equal(batch.pixels[0], data[1]["pixels"])
    with pytest.raises(InputError, match="all 1 images of a batch are unreadable"):
        Collate()([data[broken]])


def test_training_counts_dropped_rows_and_stops_above_the_limit(corrupt_phantom, tmp_path,
                                                                caplog, capsys):
    manifest, _ = corrupt_phantom
    config = tiny_config(tmp_path / "ok", manifest, "baseline", "train.epochs=1")
    with caplog.at_level(logging.WARNING):
        result = train(config, max_unreadable=0.5)
    assert result.finished
    assert "epoch 1: 1 of" in caplog.text and "dropped for unreadable cached images" in caplog.text
    strict = tiny_config(tmp_path / "strict", manifest, "baseline", "train.epochs=1")
    with pytest.raises(InputError, match="rows have unreadable cached images, more than 0.0%"):
        train(strict, max_unreadable=0.0)
    config_file = tiny_config_file(tmp_path / "cli")
    assert main(["train", "--config", str(config_file), "--variant", "baseline", "--manifest",
                 str(manifest), "--out", str(tmp_path / "cli" / "run"), "--set",
                 "train.epochs=1", "--max-unreadable", "0"]) == 2
    assert "more than 0.0%" in capsys.readouterr().err


def poison(folder, name: str | None = None) -> str:
    """Put a NaN into one tensor of ``folder/model.safetensors``; returns its name."""
    tensors = load_file(folder / "model.safetensors")
    name = name or sorted(tensors)[0]
    tensors[name] = tensors[name].clone()
    tensors[name].view(-1)[0] = float("nan")
    save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})
    return name


def test_bad_checkpoints_are_refused_and_resume_falls_back(tiny_prepared_phantom, tmp_path,
                                                           caplog):
    config = tiny_config(tmp_path, tiny_prepared_phantom, "baseline",
                         "train.checkpoint_every=1", "train.stop_after_steps=3")
    train(config)
    folders = dict(RunDir(tmp_path / "run").step_checkpoints())
    name = poison(folders[3])
    (folders[2] / "model.safetensors").write_bytes(b"not safetensors")

    with pytest.raises(InputError, match=rf"tensor '{name}' has 1 non-finite value"):
        Clip2Clinic.from_pretrained(folders[3])
    with caplog.at_level(logging.WARNING):
        assert resolve_run(config) == folders[1]
    assert f"skipping checkpoint {folders[3]}" in caplog.text and "non-finite" in caplog.text
    assert f"skipping checkpoint {folders[2]}" in caplog.text and "unreadable" in caplog.text
    assert train(with_overrides(config, ["train.stop_after_steps=null"])).finished
