"""What a training run records: every loss term per direction and stream, learning rates,
images/s and a validation loss in metrics.csv and TensorBoard; its provenance in config.yaml;
files that follow the user's umask."""

from __future__ import annotations

import csv
import os
import stat

import pytest
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from clip2clinic.cli import main
from clip2clinic.data.manifest import split_sizes
from clip2clinic.io import InputError
from clip2clinic.provenance import file_sha256
from clip2clinic.training.config import load_config
from clip2clinic.training.trainer import load_run_config, log_columns, train
from tests.training_fixtures import tiny_config, tiny_config_file

DIRECTIONS = ("i2t", "t2i", "i2g", "g2i", "t2g", "g2t")


def csv_rows(run) -> list[dict[str, str]]:
    with (run / "logs" / "metrics.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def full_model_run(tiny_prepared_phantom, tmp_path_factory):
    """One epoch of the paper's full model (hard negatives, graphs, streams t, c, g), written
    under umask 002 (a lab's shared group folder)."""
    folder = tmp_path_factory.mktemp("full_run")
    config = tiny_config(folder, tiny_prepared_phantom, "n_g_dtcg", "train.epochs=1",
                         "train.log_every=2")  # fmt: skip
    old = os.umask(0o002)
    try:
        train(config)
    finally:
        os.umask(old)
    return config, folder / "run"


def test_tensorboard_holds_every_loss_term_lr_speed_and_the_validation_loss(full_model_run):
    config, run = full_model_run
    expected = ["loss", *[f"loss_{d}" for d in DIRECTIONS],
                *[f"loss_{d}_{s}" for d in DIRECTIONS for s in ("t", "c", "g")],
                "lr", "lr_heads", "images_per_s", "val_loss"]  # fmt: skip
    assert sorted(log_columns(config)) == sorted(expected)
    (events,) = (run / "logs" / "tensorboard").glob("events.out.tfevents.*")
    accumulator = EventAccumulator(str(events))
    accumulator.Reload()
    tags = set(accumulator.Tags()["scalars"])
    wanted = {f"train/{name}" for name in expected if name != "val_loss"} | {"val/loss"}
    assert wanted <= tags, sorted(wanted - tags)
    rows = csv_rows(run)
    batches = split_sizes(config.data.manifest)["train"] // 8
    # every log_every (2) steps and at the epoch's end, where the validation loss is added
    steps = [s for s in range(1, batches + 1) if s % 2 == 0 or s == batches]
    assert [int(r["step"]) for r in rows] == steps and len(steps) >= 2
    assert [r["val_loss"] != "" for r in rows] == [s == batches for s in steps]
    for row in rows:
        step = int(row["step"])
        scalars = {e.step: e.value for e in accumulator.Scalars("train/loss")}
        assert scalars[step] == pytest.approx(float(row["loss"]), rel=1e-5)
        directions = [float(row[f"loss_{d}"]) for d in DIRECTIONS]
        assert sum(directions) == pytest.approx(float(row["loss"]), rel=1e-4)
        for direction in DIRECTIONS:
            shares = sum(float(row[f"loss_{direction}_{s}"]) for s in ("t", "c", "g"))
            assert shares == pytest.approx(float(row[f"loss_{direction}"]), rel=1e-4)
        assert float(row["images_per_s"]) > 0 and float(row["lr"]) > 0
    (val,) = accumulator.Scalars("val/loss")
    assert val.step == batches and val.value == pytest.approx(float(rows[-1]["val_loss"]), rel=1e-5)
    assert 0 < val.value < 100


def test_config_yaml_records_where_the_run_came_from(full_model_run, tiny_prepared_phantom):
    config, run = full_model_run
    saved = yaml.safe_load((run / "config.yaml").read_text())
    record = saved["provenance"]
    assert record["versions"]["clip2clinic"] and record["versions"]["torch"]
    assert record["versions"]["transformers"]
    assert record["manifests"]["train"]["sha256"] == file_sha256(tiny_prepared_phantom)
    assert (record["seed"], record["device"], record["processes"]) == (0, "cpu", 1)
    # the record is ignored when the config is read back, alone or as a --config file
    assert load_run_config(run) == config
    assert load_config([run / "config.yaml"]).to_dict() == config.to_dict()


def test_the_run_folder_follows_the_users_umask(full_model_run):
    _, run = full_model_run
    paths = [run, *run.rglob("*")]
    assert any(p.name == "model.safetensors" for p in paths)
    modes = {p.relative_to(run).as_posix() or ".": stat.S_IMODE(p.stat().st_mode)
             for p in paths}  # fmt: skip
    wrong = {name: oct(mode) for name, mode in modes.items()
             if mode != (0o775 if (run / name).is_dir() else 0o664)}
    assert not wrong, wrong


def test_a_tracker_that_is_not_installed_is_a_clear_error(tiny_prepared_phantom, tmp_path,
                                                          monkeypatch):
    monkeypatch.setattr("accelerate.utils.is_wandb_available", lambda: False)
    config = tiny_config(tmp_path, tiny_prepared_phantom, "baseline",
                         "train.log_with=[tensorboard, wandb]")
    with pytest.raises(InputError, match=r"wandb is not installed \(pip install wandb\)"):
        train(config)


def test_split_sizes_counts_rows_per_split(tiny_prepared_phantom):
    sizes = split_sizes(tiny_prepared_phantom)
    assert sizes["train"] >= 24 and sizes["validate"] >= 2 and sum(sizes.values()) >= 40


def test_train_dry_run_prints_the_resolved_config_and_trains_nothing(tiny_prepared_phantom,
                                                                     tmp_path, capsys):
    args = ["train", "--config", str(tiny_config_file(tmp_path)), "--variant", "dt", "--manifest",
            str(tiny_prepared_phantom), "--out", str(tmp_path / "run"), "--seed", "7",
            "--epochs", "3"]  # fmt: skip
    assert main([*args, "--dry-run"]) == 0
    printed = capsys.readouterr().out
    config = yaml.safe_load(printed)
    assert (config["train"]["seed"], config["train"]["epochs"]) == (7, 3)
    assert config["variant"] == "dt" and config["loss"]["streams"] == ["t"]
    batches = split_sizes(tiny_prepared_phantom)["train"] // 8
    assert f"x 3 epochs = {3 * batches} steps; starts a fresh run" in printed
    assert not (tmp_path / "run").exists()
    assert main([*args, "--print-config"]) == 0
    assert yaml.safe_load(capsys.readouterr().out) == config
    # a finished run is refused by the dry run as by training
    assert main([*args, "--epochs", "1"]) == 0
    capsys.readouterr()
    assert main([*args, "--epochs", "1", "--dry-run"]) == 2
    assert "already finished" in capsys.readouterr().err
