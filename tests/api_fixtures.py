"""Tiny checkpoints for the inference API tests, saved with ``save_pretrained``: one shaped
like the embedded preset (1-channel Swin, text head over frozen MiniLM features) and one like
the paper preset (3-channel ImageNet-normalised Swin, fine-tuned BERT tower, text mode "full",
MiniLM's tokenizer); plus small generated chest-film-like PNGs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from transformers import BertConfig, SwinConfig

from clip2clinic.embedded import MINILM_SOURCE
from clip2clinic.model import (
    ClinicCLIP,
    ClinicCLIPConfig,
    ImageTowerConfig,
    TextHeadConfig,
    TextTowerConfig,
    embedded_config,
)

TINY_SWIN = {"image_size": 32, "patch_size": 4, "embed_dim": 8, "depths": [1, 1],
             "num_heads": [1, 2], "window_size": 4}  # fmt: skip
TINY_BERT = BertConfig(vocab_size=30522, hidden_size=16, num_hidden_layers=1,
                       num_attention_heads=2, intermediate_size=32,
                       max_position_embeddings=64).to_dict()  # fmt: skip


def demo_like_config() -> ClinicCLIPConfig:
    """The embedded preset with a 32 px image tower and a small head."""
    config = embedded_config()
    config.image.config = {**config.image.config, **TINY_SWIN}
    config.text.head = TextHeadConfig(width=16, layers=1, heads=2, ff_dim=32, dropout=0.0)
    config.embed_dim = 24
    return config


def paper_like_config() -> ClinicCLIPConfig:
    """The paper preset's shape: RGB ImageNet-normalised Swin, fine-tuned BERT in mode "full"."""
    swin = SwinConfig(num_channels=3, **TINY_SWIN).to_dict()
    return ClinicCLIPConfig(
        image=ImageTowerConfig(config=swin),
        text=TextTowerConfig(source=MINILM_SOURCE, config=TINY_BERT, mode="full", max_length=16),
        embed_dim=24,
    )


CONFIGS = {"demo": demo_like_config, "paper": paper_like_config}


def make_checkpoint(kind: str, folder: Path, seed: int = 0) -> Path:
    """Save a randomly initialised model of ``kind`` ("demo" or "paper") into ``folder``."""
    torch.manual_seed(seed)
    model = ClinicCLIP(CONFIGS[kind](), pretrained=False)
    return model.save_pretrained(folder)


def film(height: int, width: int, seed: int) -> np.ndarray:
    """A grey uint8 image with a bright frame, two darker 'lungs' and noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / np.array([height, width])[:, None, None]
    lungs = np.exp(-(((x - 0.3) / 0.12) ** 2 + ((y - 0.5) / 0.3) ** 2))
    lungs += np.exp(-(((x - 0.7) / 0.12) ** 2 + ((y - 0.5) / 0.3) ** 2))
    pixels = 200 - 150 * lungs * rng.uniform(0.5, 1.0) + rng.normal(0, 12, (height, width))
    return np.clip(pixels, 0, 255).astype(np.uint8)


def write_films(folder: Path, sizes: list[tuple[int, int]]) -> list[Path]:
    """Write one PNG per (height, width) into ``folder``; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, (height, width) in enumerate(sizes):
        path = folder / f"film{index}.png"
        Image.fromarray(film(height, width, index), "L").save(path)
        paths.append(path)
    return paths
