"""`clip2clinic sweep`: the grid, the table and its choice (with a stub scorer), and one real
tiny sweep end to end on the validation split, resumed without retraining."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from clip2clinic.cli import main
from clip2clinic.io import InputError
from clip2clinic.sweep.grid import Setting, parse_grid, split_values
from clip2clinic.sweep.sweep import METRICS, run_sweep, scores_path

#: The tiny model of tests/test_demo.py, as overrides.
TINY = (
    "model.image.config={image_size: 32, patch_size: 4, embed_dim: 8, depths: [1, 1], "
    "num_heads: [1, 2], window_size: 4}",
    "model.text.head={width: 16, layers: 1, heads: 2, ff_dim: 32}",
    "model.embed_dim=32", "model.graph.hidden_dim=16", "data.image_size=32",
    "data.batch_size=8", "train.epochs=1",
)  # fmt: skip


def test_grid_is_the_product_in_the_given_order():
    settings = parse_grid(["loss.clinical_encoding=binary,signed",
                           "loss.weights={t: 1, c: 0.25},{t: 1, c: 1}"])
    assert [s.overrides for s in settings] == [
        ("loss.clinical_encoding=binary", "loss.weights={t: 1, c: 0.25}"),
        ("loss.clinical_encoding=binary", "loss.weights={t: 1, c: 1}"),
        ("loss.clinical_encoding=signed", "loss.weights={t: 1, c: 0.25}"),
        ("loss.clinical_encoding=signed", "loss.weights={t: 1, c: 1}"),
    ]
    assert settings[0].name == "clinical_encoding-binary__weights-_t_1_c_0.25_"
    assert len({s.name for s in settings}) == 4
    assert parse_grid([]) == [Setting(())]
    assert split_values("a, [1, 2] ,b") == ["a", "[1, 2]", "b"]
    for bad in (["loss.x"], ["=1,2"], ["a=1", "a=2"]):
        with pytest.raises(InputError, match="--grid"):
            parse_grid(bad)


def test_the_best_mean_over_seeds_is_chosen_and_written(tmp_path):
    # setting "b" wins on average although one of its seeds is the worst single run
    planted = {("loss.x=a", 0): 0.60, ("loss.x=a", 1): 0.62,
               ("loss.x=b", 0): 0.55, ("loss.x=b", 1): 0.80}

    def scorer(run, variant, seed, overrides):
        value = planted[(overrides[-1], seed)]
        return {m: value for m in METRICS} | {"train_s": 1.0}

    result = run_sweep("unused.parquet", "n_dt_c", parse_grid(["loss.x=a,b"]), [0, 1],
                       tmp_path, progress=False, scorer=scorer)
    assert result.chosen == "x=b"
    assert result.table["setting"].tolist() == ["x=b", "x=a"]
    assert result.table.iloc[0]["score"] == pytest.approx(0.675)
    assert result.table.iloc[0]["score_sd"] == pytest.approx(pd.Series([0.55, 0.8]).std())
    assert len(pd.read_csv(tmp_path / "sweep.csv")) == 4
    assert "Chosen: **x=b**" in (tmp_path / "sweep.md").read_text()
    assert (tmp_path / "sweep.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(InputError, match="--select"):
        run_sweep("m", "n", parse_grid([]), [0], tmp_path, selection=["auc"], scorer=scorer)


def test_a_tiny_sweep_trains_scores_on_validation_and_resumes(tiny_prepared_phantom, tmp_path,
                                                              monkeypatch, capsys):
    args = ["sweep", "--manifest", str(tiny_prepared_phantom), "--variant", "n_dt_c",
            "--grid", "loss.clinical_encoding=binary,onehot", "--seeds", "0",
            "--out", str(tmp_path), "--quiet"]
    for override in TINY:
        args += ["--set", override]
    assert main(args) == 0
    assert "chosen: clinical_encoding=" in capsys.readouterr().out
    runs = pd.read_csv(tmp_path / "sweep.csv")
    assert runs["setting"].tolist() == ["clinical_encoding=binary", "clinical_encoding=onehot"]
    for name in ("clinical_encoding-binary-seed0", "clinical_encoding-onehot-seed0"):
        run = tmp_path / "runs" / name
        record = json.loads((run / "evaluation_validate" / "metrics.json").read_text())
        assert record["split"] == "validate"
        assert json.loads(scores_path(run).read_text())["cxr_align_a"] is not None
    config = (tmp_path / "runs" / "clinical_encoding-onehot-seed0" / "config.yaml").read_text()
    assert "clinical_encoding: onehot" in config

    def fail(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr("clip2clinic.training.trainer.train", fail)
    assert main(args) == 0


def test_a_finished_run_of_another_setting_is_never_reused(tiny_prepared_phantom, tmp_path):
    from clip2clinic.training.trainer import train_variant

    run = tmp_path / "run"
    final = train_variant(tiny_prepared_phantom, run, "n_dt_c", 0, TINY, progress=False)
    assert train_variant(tiny_prepared_phantom, run, "n_dt_c", 0, TINY, progress=False) == final
    with pytest.raises(InputError, match=r"loss.clinical_encoding differ"):
        train_variant(tiny_prepared_phantom, run, "n_dt_c", 0,
                      [*TINY, "loss.clinical_encoding=binary"], progress=False)
