"""A tiny training setup for the trainer tests: a prepared phantom and a model small enough
that a step takes a fraction of a second on one CPU core."""

from __future__ import annotations

from pathlib import Path

import yaml
from transformers import BertConfig

from clip2clinic.configs import named_config
from clip2clinic.training.config import load_config

#: A tiny embedded-style model: 32 px 1-channel Swin, 16-wide text head over MiniLM features.
TINY = {
    "include": ["presets/embedded.yaml"],
    "model": {
        "image": {"config": {"image_size": 32, "patch_size": 4, "embed_dim": 8, "depths": [1, 1],
                             "num_heads": [1, 2], "window_size": 4}},
        "text": {"head": {"width": 16, "layers": 1, "heads": 2, "ff_dim": 32}},
        "embed_dim": 32,
        "graph": {"hidden_dim": 16},
    },
    "data": {"batch_size": 8},
    "train": {"epochs": 2, "checkpoint_every": 3, "log_every": 1, "progress": False,
              "keep_last": None},
}  # fmt: skip

#: Text mode "full" (the paper preset's path) with a tiny BERT over the cached MiniLM token ids.
TINY_BERT = BertConfig(vocab_size=30522, hidden_size=16, num_hidden_layers=1,
                       num_attention_heads=2, intermediate_size=32,
                       max_position_embeddings=64).to_dict()  # fmt: skip


def tiny_config_file(folder: Path, **sections) -> Path:
    """Write the tiny config (sections merged over :data:`TINY`) as YAML; returns its path."""
    data = {key: dict(value) if isinstance(value, dict) else value for key, value in TINY.items()}
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def tiny_config(folder: Path, manifest: Path, variant: str = "baseline", *overrides: str):
    """The tiny config + a bundled variant, training ``manifest`` into ``folder/run``."""
    path = tiny_config_file(folder)
    return load_config([path, named_config("variant", variant)],
                       [f"data.manifest={manifest}", f"out={folder / 'run'}", *overrides])
