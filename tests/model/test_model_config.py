"""ClinicCLIPConfig: serialisation round trips, validation with messages naming the field."""

from __future__ import annotations

import json

import pytest
import yaml

from clip2clinic.io import InputError
from clip2clinic.model import ClinicCLIPConfig, embedded_config, paper_config
from clip2clinic.model.towers import load_backbone


@pytest.mark.parametrize("make", [embedded_config, paper_config])
@pytest.mark.parametrize("graph", [False, True])
def test_presets_round_trip_through_json_and_yaml(make, graph):
    config = make(graph=graph)
    as_dict = config.to_dict()
    assert ClinicCLIPConfig.from_dict(json.loads(json.dumps(as_dict))) == config
    assert ClinicCLIPConfig.from_dict(yaml.safe_load(yaml.safe_dump(as_dict))) == config
    assert (config.graph is not None) == graph


def test_save_and_load_file(tmp_path):
    config = embedded_config(graph=True)
    config.save(tmp_path / "config.json")
    assert ClinicCLIPConfig.load(tmp_path / "config.json") == config


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"text": {"source": "x", "pooling": "max"}}, r"model\.text\.pooling: 'max'"),
        ({"text": {"source": "x", "mode": "frozen"}}, r"model\.text\.mode"),
        ({"image": {"source": "x", "colour": 1}}, r"model\.image: unknown key\(s\) \['colour'\]"),
        ({"image": {}}, r"model\.image: give a source"),
        ({"image": {"config": {"image_size": 64}}}, r"needs 'model_type'"),
        ({"image": {"source": "x", "mean": [0.5], "std": [0.5, 0.5]}}, r"same length"),
        ({"text": {"source": "x", "head": {"width": 30, "heads": 4}}}, r"model\.text\.head"),
        ({"temperature": 0}, r"model\.temperature: must be positive"),
        ({"graph": {"hidden_dim": -1}}, r"model\.graph\.hidden_dim"),
        ({"image": "swin"}, r"model\.image: expected a mapping"),
    ],
)
def test_bad_configs_name_the_field(change, message):
    data = embedded_config().to_dict() | change
    with pytest.raises(InputError, match=message):
        ClinicCLIPConfig.from_dict(data)


def test_unreadable_config_file_names_the_file(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(InputError, match="config.json: cannot read"):
        ClinicCLIPConfig.load(path)


def test_swin_whose_last_stage_is_smaller_than_the_window_is_refused():
    # 64 px / patch 4 = 16 → 8 → 4 → 2: the fourth stage is smaller than a window of 4.
    swin = {"model_type": "swin", "image_size": 64, "patch_size": 4, "embed_dim": 8,
            "depths": [1, 1, 1, 1], "num_heads": [1, 1, 1, 1], "window_size": 4}  # fmt: skip
    with pytest.raises(ValueError, match="stage 4 has a 2x2 feature map"):
        load_backbone(None, swin, pretrained=False)
    assert load_backbone(None, swin | {"depths": [1, 1, 1], "num_heads": [1, 1, 1]}, False)


@pytest.mark.parametrize(("path", "value", "message"), [
    (("embed_dim",), "512", "model.embed_dim: expected an integer, got '512'"),
    (("image", "mean"), [0.5, "x", 0.5], r"model.image.mean\[1\]: expected a number"),
    (("text", "head", "dropout"), True, "model.text.head.dropout: expected a number"),
    (("learn_temperature",), "yes", "model.learn_temperature: expected true or false"),
])
def test_model_configs_are_type_checked_by_the_training_configs_engine(path, value, message):
    """One engine (clip2clinic.config_tree) reads both configs: a config.json with a value of the
    wrong type is refused naming the key, as a training YAML is."""
    data = embedded_config().to_dict()
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(InputError, match=message):
        ClinicCLIPConfig.from_dict(data)
    assert ClinicCLIPConfig.from_dict(embedded_config().to_dict()).image.mean == (0.5,)
