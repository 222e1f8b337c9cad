"""The trainer on a prepared phantom with a tiny model: every variant trains, the loss falls,
checkpoints load alone, an interrupted run resumes bit-exactly, a NaN loss stops the run and
keeps the last good checkpoint."""

from __future__ import annotations

import csv
import json
import logging
import math

import pytest
import torch
from safetensors.torch import load_file

from clip2clinic.cli import main
from clip2clinic.io import InputError
from clip2clinic.model import ClinicCLIP
from clip2clinic.run_dir import RunDir
from clip2clinic.training import objective as objective_module
from clip2clinic.training.checkpoint import STATE_DIR
from clip2clinic.training.config import with_overrides
from clip2clinic.training.trainer import Trainer, TrainingDiverged, load_run_config, train
from tests.training_fixtures import TINY_BERT, tiny_config, tiny_config_file

VARIANTS = ("baseline", "dt", "dt_c", "n", "n_dt_c", "g", "g_dtcg", "n_g_dtcg", "softclip")


def losses(run) -> list[float]:
    with (run / "logs" / "metrics.csv").open() as handle:
        return [float(row["loss"]) for row in csv.DictReader(handle)]


def weights(folder) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    different = [name for name in a if not torch.equal(a[name], b[name])]
    assert not different, f"tensors differ: {different[:5]}"


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_variant_trains_two_steps_with_a_finite_loss(variant, tiny_prepared_phantom,
                                                           tmp_path):
    config = tiny_config(tmp_path, tiny_prepared_phantom, variant, "train.stop_after_steps=2")
    result = train(config)
    assert (result.step, result.finished) == (2, False)
    values = losses(tmp_path / "run")
    assert len(values) == 2 and all(math.isfinite(v) and v > 0 for v in values)
    model = ClinicCLIP.from_pretrained(result.checkpoint)
    assert (model.graph is not None) == config.loss.graph


def test_baseline_loss_falls_and_the_final_checkpoint_loads_alone(tiny_prepared_phantom,
                                                                  tmp_path):
    config = tiny_config(tmp_path, tiny_prepared_phantom, "baseline", "train.epochs=10",
                         "data.batch_size=12", "optim.lr_backbones=1e-3",
                         "optim.lr_heads=1e-3", "data.augment=null")  # fmt: skip
    trainer = Trainer(config)
    result = trainer.fit()
    values = losses(tmp_path / "run")
    assert result.finished and result.checkpoint.name == "final" and len(values) == 20
    first, last = sum(values[:4]) / 4, sum(values[-4:]) / 4
    chance = 2 * math.log(12)  # InfoNCE both ways with uniform predictions
    assert last < 0.85 * first and last < chance, values
    # the final folder alone rebuilds the trained model
    loaded = ClinicCLIP.from_pretrained(result.checkpoint)
    assert {p.name for p in result.checkpoint.iterdir()} == {
        "model.safetensors", "config.json", "README.md"}  # fmt: skip
    assert "| seed | " in (result.checkpoint / "README.md").read_text()
    state = trainer.unwrapped.state_dict()
    assert all(torch.equal(value, state[name]) for name, value in loaded.state_dict().items())
    pixels = torch.randn(2, 1, 32, 32)
    trainer.unwrapped.eval()
    assert torch.equal(loaded.eval().encode_image(pixels), trainer.unwrapped.encode_image(pixels))
    # logs and the resolved config
    assert load_run_config(tmp_path / "run") == config
    assert list((tmp_path / "run" / "logs" / "tensorboard").glob("events.out.tfevents.*"))
    with pytest.raises(InputError, match="already finished"):
        train(config)


def resumed_weights(config, interrupt) -> dict[str, torch.Tensor]:
    """Run ``config`` with ``interrupt`` (overrides or an on_step callback), resume, finish."""
    with pytest.raises(KeyboardInterrupt) if callable(interrupt) else _nothing():
        first = train(config if callable(interrupt) else with_overrides(config, interrupt),
                      on_step=interrupt if callable(interrupt) else None)  # fmt: skip
        assert not first.finished
    result = train(config)
    assert result.finished
    return weights(result.checkpoint)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_an_interrupted_run_resumes_to_bit_identical_weights(tiny_prepared_phantom, tmp_path):
    """Mid-epoch stop (checkpoint at the stop) and a crash (replay from the last checkpoint),
    with dropout, graphs and hard negatives: same final weights as an uninterrupted run."""
    # 3 batches per epoch, 2 epochs; checkpoints every 2 steps, so step 5 is mid-epoch
    options = ("data.batch_size=10", "train.checkpoint_every=2", "model.text.head.dropout=0.3")
    reference = train(tiny_config(tmp_path / "a", tiny_prepared_phantom, "n_g_dtcg", *options))
    assert reference.step == 6
    expected = weights(reference.checkpoint)

    stopped = tiny_config(tmp_path / "b", tiny_prepared_phantom, "n_g_dtcg", *options)
    assert_same_weights(resumed_weights(stopped, ["train.stop_after_steps=5"]), expected)
    assert [step for step, _ in RunDir(tmp_path / "b" / "run").step_checkpoints()] == [
        2, 3, 4, 5, 6]  # fmt: skip
    assert [int(r["step"]) for r in csv.DictReader((tmp_path / "b/run/logs/metrics.csv").open())
            ] == [1, 2, 3, 4, 5, 6]  # fmt: skip

    def crash(step: int) -> None:
        if step == 5:
            raise KeyboardInterrupt

    crashed = tiny_config(tmp_path / "c", tiny_prepared_phantom, "n_g_dtcg", *options)
    assert_same_weights(resumed_weights(crashed, crash), expected)


def test_resume_refuses_a_changed_config(tiny_prepared_phantom, tmp_path):
    config = tiny_config(tmp_path, tiny_prepared_phantom, "dt", "train.stop_after_steps=1")
    train(config)
    with pytest.raises(InputError, match=r"different config \(optim.lr_heads differ\)"):
        train(with_overrides(config, ["optim.lr_heads=0.5"]))
    assert main(["train", "--resume", str(tmp_path / "run"), "--set",
                 "train.stop_after_steps=2"]) == 0  # fmt: skip
    assert len(losses(tmp_path / "run")) == 2


def test_a_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(
    tiny_prepared_phantom, tmp_path, monkeypatch
):
    config = tiny_config(tmp_path, tiny_prepared_phantom, "n_dt_c", "train.checkpoint_every=2")
    encode_image, calls = ClinicCLIP.encode_image, []

    def poisoned(self, pixels):
        calls.append(1)
        out = encode_image(self, pixels)
        return out * math.nan if len(calls) == 4 else out

    monkeypatch.setattr(ClinicCLIP, "encode_image", poisoned)
    with pytest.raises(TrainingDiverged) as caught:
        train(config)
    message = str(caught.value)
    assert message.startswith("step 4 (epoch 1, batch 4)")
    assert "non-finite image embeddings" in message and "i2t = nan" in message
    assert "step-000002" in message
    checkpoints = tmp_path / "run" / "checkpoints"
    assert [step for step, _ in RunDir(tmp_path / "run").step_checkpoints()] == [2]
    assert not (checkpoints / "final").exists()
    kept = weights(checkpoints / "step-000002")
    assert all(torch.isfinite(tensor).all() for tensor in kept.values())
    assert (checkpoints / "step-000002" / STATE_DIR / "optimizer.safetensors").is_file()


def test_cli_reports_a_diverged_run(tiny_prepared_phantom, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(objective_module, "clinic_loss_distributed",
                        lambda *a, **k: torch.tensor(math.inf, requires_grad=True))
    path = tiny_config_file(tmp_path)
    code = main(["train", "--config", str(path), "--variant", "baseline", "--manifest",
                 str(tiny_prepared_phantom), "--out", str(tmp_path / "run")])  # fmt: skip
    assert code == 1
    assert "step 1 (epoch 1, batch 1): the clinic loss is inf" in capsys.readouterr().err


def test_full_text_mode_trains_on_cached_token_ids(tiny_prepared_phantom, tmp_path):
    config = tiny_config(tmp_path, tiny_prepared_phantom, "n_g_dtcg", "train.stop_after_steps=2",
                         "model.text.mode=full", "model.text.source=null",
                         f"model.text.config={json.dumps(TINY_BERT)}", "model.text.max_length=64",
                         "train.gradient_checkpointing=true")  # fmt: skip
    result = train(config)
    model = ClinicCLIP.from_pretrained(result.checkpoint)
    assert model.config.text.mode == "full" and model.text.backbone.config.hidden_size == 16
    assert all(math.isfinite(v) for v in losses(tmp_path / "run"))


def test_a_cache_of_another_text_model_is_refused(tiny_prepared_phantom, tmp_path):
    config = tiny_config(tmp_path, tiny_prepared_phantom, "baseline",
                         "model.text.source=emilyalsentzer/Bio_ClinicalBERT")
    with pytest.raises(InputError, match="run prepare with --text-model emilyalsentzer"):
        train(config)


DDP_SCRIPT = """
from clip2clinic.training.config import load_config
from clip2clinic.training.trainer import train
train(load_config([{config!r}]))
"""


@pytest.mark.slow
def test_two_processes_train_like_one_on_the_global_batch(tiny_prepared_phantom, tmp_path):
    """torchrun with 2 CPU processes (gloo): each takes half of every global batch, the loss
    all-gathers, and the run matches the 1-process run (same losses, same weights up to
    float summation order)."""
    import subprocess
    import sys

    options = ("train.epochs=1", "model.text.head.dropout=0.0")
    single = train(tiny_config(tmp_path / "one", tiny_prepared_phantom, "n_g_dtcg", *options))
    config = tiny_config(tmp_path / "two", tiny_prepared_phantom, "n_g_dtcg", *options)
    config.save(tmp_path / "two.yaml")
    script = tmp_path / "ddp_train.py"
    script.write_text(DDP_SCRIPT.format(config=str(tmp_path / "two.yaml")))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node", "2", str(script)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert losses(tmp_path / "two" / "run") == pytest.approx(losses(tmp_path / "one" / "run"),
                                                             rel=1e-5)  # fmt: skip
    one, two = weights(single.checkpoint), weights(tmp_path / "two" / "run/checkpoints/final")
    assert one.keys() == two.keys()
    for name in one:
        torch.testing.assert_close(two[name], one[name], rtol=1e-4, atol=1e-4, msg=name)


def test_a_learned_temperature_trains_is_clamped_and_saved(tiny_prepared_phantom, tmp_path):
    config = tiny_config(tmp_path, tiny_prepared_phantom, "n_g_dtcg", "train.stop_after_steps=2",
                         "model.learn_temperature=true", "model.temperature=0.0101",
                         "optim.lr_heads=0.5")  # fmt: skip
    result = train(config)
    model = ClinicCLIP.from_pretrained(result.checkpoint)
    learned = float(model.temperature)
    assert learned != pytest.approx(0.0101, rel=1e-6)  # it moved ...
    assert 0.01 - 1e-7 <= learned <= 1.0  # ... within open_clip's bounds


@pytest.mark.parametrize("options", [
    ("loss.clinical_encoding=signed",), ("loss.clinical_encoding=onehot",),
    ("loss.image_graph=originals", "loss.zero_own_negation=true"),
])  # fmt: skip
def test_the_open_readings_train(options, tiny_prepared_phantom, tmp_path):
    config = tiny_config(tmp_path, tiny_prepared_phantom, "n_g_dtcg", "train.stop_after_steps=2",
                         *options)
    trainer = Trainer(config)
    width = 14 if "signed" in options[0] else 42  # onehot is the default
    assert trainer.dataset.clinical.shape[1] == width
    assert trainer.fit().step == 2
    assert all(math.isfinite(v) for v in losses(tmp_path / "run"))


@pytest.mark.parametrize(("overrides", "level", "effect"), [
    ((), "INFO", "64 px and the image size trained at (data.image_size, else the image "
                 "tower's) is 32 px: every image is resized"),
    (("data.image_size=96",), "WARNING", "64 px and the image size trained at (data.image_size, "
                                         "else the image tower's) is 96 px: every image is "
                                         "upsampled"),
    (("data.image_size=64",), None, None),
])  # fmt: skip
def test_an_image_size_other_than_the_caches_is_one_line(overrides, level, effect,
                                                         tiny_prepared_phantom, tmp_path,
                                                         caplog):  # fmt: skip
    """The tiny phantom is cached at 64 px; the tiny tower takes 32 px. Smaller than the
    training size is a warning, larger an info line."""
    caplog.set_level(logging.INFO)
    Trainer(tiny_config(tmp_path, tiny_prepared_phantom, "baseline", *overrides))
    lines = [(r.levelname, r.getMessage()) for r in caplog.records
             if "cached images" in r.getMessage()]  # fmt: skip
    if effect is None:
        assert lines == []
    else:
        assert len(lines) == 1 and lines[0][0] == level and effect in lines[0][1]
