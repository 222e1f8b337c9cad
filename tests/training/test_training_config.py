"""Training configs: presets × variants, includes, ``--set`` overrides, and errors that name the
key at fault."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from clip2clinic.cli import main
from clip2clinic.configs import configs_dir, named_config
from clip2clinic.io import InputError
from clip2clinic.model import embedded_config, paper_config
from clip2clinic.training.config import (
    TrainConfig,
    apply_overrides,
    changed_keys,
    load_config,
    with_overrides,
)

VARIANTS = ("baseline", "dt", "dt_c", "n", "n_dt_c", "g", "g_dtcg", "n_g_dtcg", "softclip")
#: The reproduction's table: soft-label streams, graph stream, hard negatives.
TABLE = {
    "baseline": ([], False, False),
    "dt": (["t"], False, False),
    "dt_c": (["t", "c"], False, False),
    "n": ([], False, True),
    "n_dt_c": (["t", "c"], False, True),
    "g": ([], True, False),
    "g_dtcg": (["t", "c", "g"], True, False),
    "n_g_dtcg": (["t", "c", "g"], True, True),
}


def write(path: Path, data) -> Path:
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def bundled(preset: str, variant: str, *overrides: str) -> TrainConfig:
    return load_config([named_config("preset", preset), named_config("variant", variant)],
                       overrides)


def test_bundled_configs_are_exactly_the_nine_variants_and_two_presets():
    assert sorted(p.stem for p in (configs_dir() / "variants").glob("*.yaml")) == sorted(VARIANTS)
    assert sorted(p.stem for p in (configs_dir() / "presets").glob("*.yaml")) == [
        "embedded", "paper"]  # fmt: skip


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("preset", ["embedded", "paper"])
def test_every_preset_and_variant_loads_as_in_the_table(preset, variant):
    config = bundled(preset, variant)
    assert (config.preset, config.variant) == (preset, variant)
    if variant == "softclip":
        assert config.loss.kind == "softclip"
        assert not (config.loss.streams or config.loss.graph or config.loss.hard_negatives)
        return
    streams, graph, negatives = TABLE[variant]
    assert config.loss.kind == "clinic"
    assert (config.loss.streams, config.loss.graph, config.loss.hard_negatives) == (
        streams, graph, negatives)  # fmt: skip
    assert (config.model.graph is not None) == graph
    # the resolved config round-trips through YAML unchanged
    again = TrainConfig.from_dict(yaml.safe_load(yaml.safe_dump(config.to_dict())))
    assert again == config


def test_presets_build_on_the_model_configs():
    embedded, paper = bundled("embedded", "baseline"), bundled("paper", "g")
    assert embedded.model.image == embedded_config().image
    assert embedded.model.text == embedded_config().text
    assert paper.model.image == paper_config().image and paper.model.text == paper_config().text
    assert paper.model.graph.hidden_dim == 256
    assert (paper.data.batch_size, paper.train.epochs, paper.train.mixed_precision) == (
        64, 10, "bf16")  # fmt: skip
    assert embedded.train.mixed_precision == "no"


def test_includes_merge_in_order_and_the_file_wins(tmp_path):
    write(tmp_path / "a.yaml", {"data": {"batch_size": 16, "num_workers": 2}})
    write(tmp_path / "b.yaml", {"include": ["a.yaml"], "data": {"batch_size": 32}})
    run = write(tmp_path / "run.yaml", {
        "include": ["presets/embedded.yaml", "b.yaml", "variants/dt.yaml"],
        "optim": {"lr_heads": 0.002},
    })  # fmt: skip
    config = load_config([run])
    assert (config.data.batch_size, config.data.num_workers) == (32, 2)
    assert config.optim.lr_heads == 0.002 and config.optim.lr_backbones == 5e-4
    assert config.variant == "dt" and config.loss.streams == ["t"]


def test_include_cycle_and_missing_include_are_clear(tmp_path):
    write(tmp_path / "a.yaml", {"include": ["b.yaml"]})
    write(tmp_path / "b.yaml", {"include": ["a.yaml"]})
    with pytest.raises(InputError, match="include cycle"):
        load_config([tmp_path / "a.yaml"])
    write(tmp_path / "c.yaml", {"include": ["nowhere.yaml"]})
    with pytest.raises(InputError, match="'nowhere.yaml' not found"):
        load_config([tmp_path / "c.yaml"])


def test_overrides_parse_yaml_values():
    config = bundled("embedded", "n_g_dtcg", "optim.lr_heads=3e-4", "train.epochs=2",
                     "loss.streams=[t, c]", "loss.thresholds.t=0.8", "data.augment=null",
                     "train.gradient_checkpointing=true", "model.image.config.image_size=64")
    assert config.optim.lr_heads == 3e-4 and config.train.epochs == 2
    assert config.loss.streams == ["t", "c"]
    assert config.loss.thresholds == {"t": 0.8, "c": 0.9, "g": 0.9}  # other keys kept
    assert config.data.augment is None and config.train.gradient_checkpointing
    assert config.model.image.config["image_size"] == 64
    assert config.model.image.config["patch_size"] == 8  # merged into the base, not replaced


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optim.lr_head=1e-3", r"optim: unknown key\(s\) \['lr_head'\]"),
        ("optim.lr_heads=fast", "optim.lr_heads: expected a number, got 'fast'"),
        ("train.epochs=2.5", "train.epochs: expected an integer"),
        ("train.epochs=0", "train.epochs: must be >= 1"),
        ("train.mixed_precision=fp8", "train.mixed_precision: 'fp8' is not one of"),
        ("loss.streams=[t, x]", r"loss.streams: unknown stream\(s\) \['x'\]"),
        ("loss.thresholds.c=1.5", r"loss.thresholds.c: 1.5 is not in \[-1, 1\)"),
        ("loss.graph=false", "loss.streams: stream 'g' needs loss.graph: true"),
        ("loss.kind=softclip", "loss.kind: softclip takes no streams"),
        ("data.augment.hflip=2", "data.augment: hflip is a probability"),
        ("data.augment.twist=3", r"data.augment: unknown key\(s\) \['twist'\]"),
        ("data.batch_size=1", "data.batch_size: must be >= 2"),
        ("model.base=huge", "model.base: 'huge' is not one of embedded, paper"),
        ("model.text.mode=frozen", "model.text.mode: 'frozen' is not one of"),
        ("flavour=mint", r"config: unknown key\(s\) \['flavour'\]"),
        ("optim", "expected key.path=value"),
    ],
)
def test_bad_values_raise_errors_naming_the_key(override, message):
    with pytest.raises(InputError, match=message):
        bundled("embedded", "n_g_dtcg", override)


def test_config_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n", encoding="utf-8")
    with pytest.raises(InputError, match="bad.yaml: not valid YAML"):
        load_config([bad])
    write(bad, [1, 2])
    with pytest.raises(InputError, match="bad.yaml: a config file must be a mapping"):
        load_config([bad])
    with pytest.raises(InputError, match=r"model: missing"):
        load_config([write(tmp_path / "empty.yaml", {})])
    with pytest.raises(InputError, match=r"variant 'nope': .*known variants: \['baseline'"):
        named_config("variant", "nope")


def test_saved_config_reloads_and_changed_keys_are_listed(tmp_path):
    config = bundled("embedded", "dt_c", "out=runs/x", "data.manifest=m.parquet")
    config.save(tmp_path / "config.yaml")
    again = load_config([tmp_path / "config.yaml"])
    assert again == config
    changed = with_overrides(again, ["optim.lr_heads=1e-2", "train.stop_after_steps=3"])
    assert changed_keys(config.to_dict(), changed.to_dict()) == [
        "optim.lr_heads", "train.stop_after_steps"]  # fmt: skip


def test_apply_overrides_builds_missing_sections():
    assert apply_overrides({"a": {"b": 1}}, ["a.c.d=[1, 2]", "e=x"]) == {
        "a": {"b": 1, "c": {"d": [1, 2]}}, "e": "x"}  # fmt: skip


def test_cli_needs_a_config(capsys):
    assert main(["train", "--manifest", "m.parquet"]) == 2
    assert "give --config FILE" in capsys.readouterr().err
    assert main(["train", "--preset", "embedded", "--variant", "baseline"]) == 2
    assert "data.manifest: no manifest given" in capsys.readouterr().err


@pytest.mark.parametrize(("override", "message"), [
    ("loss.clinical_encoding=ternary", "loss.clinical_encoding: 'ternary' is not one of"),
    ("loss.image_graph=some", "loss.image_graph: 'some' is not one of"),
    ("loss.zero_own_negation=maybe", "loss.zero_own_negation: expected true or false"),
])  # fmt: skip
def test_open_readings_are_validated(override, message):
    with pytest.raises(InputError, match=message):
        load_config([named_config("preset", "embedded"), named_config("variant", "n_g_dtcg")],
                    [override])
