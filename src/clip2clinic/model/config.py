"""The architecture of a ClinicCLIP model as plain dataclasses, serialisable to JSON and YAML.

A tower is a transformers model named by ``source`` (a hub name, a local folder, or
``package:<module>``, see :mod:`clip2clinic.embedded`) and/or described by ``config`` (a
transformers config dict with ``model_type``). A fresh model loads pretrained weights from
``source`` when given, else builds the tower from ``config`` with random weights; either way
the built model writes the tower's full config dict back, so a saved ``config.json`` rebuilds
the architecture alone, without the hub.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from clip2clinic.config_tree import build, check_choice, plain
from clip2clinic.embedded import MINILM_SOURCE
from clip2clinic.io import InputError, write_text_atomic

TOWER_POOLINGS = ("pooler", "mean", "cls")
HEAD_POOLINGS = ("attention", "mean")
TEXT_MODES = ("full", "head")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PAPER_IMAGE_SOURCE = "microsoft/swin-tiny-patch4-window7-224"
PAPER_TEXT_SOURCE = "emilyalsentzer/Bio_ClinicalBERT"
#: Upper bounds of this file's own size fields (the towers' are in model.towers.SIZE_LIMITS).
_SIZE_LIMITS = {"embed_dim": 8_192, "max_length": 16_384, "width": 16_384, "layers": 64,
                "heads": 256, "ff_dim": 65_536, "hidden_dim": 16_384, "node_dim": 16_384,
                "image_size": 4_096}
#: ``model_type`` of a ClinicCLIP ``config.json`` (beside ``clip2clinic_version``, the
#: package version that wrote it); a config.json without them is an older checkpoint.
MODEL_TYPE = "clinic_clip"
MODEL_TYPE_KEY = "model_type"
VERSION_KEY = "clip2clinic_version"



def _check_positive(where: str, **values: float) -> None:
    for name, value in values.items():
        if not value > 0:
            raise InputError(f"{where}.{name}: must be positive, got {value!r}")


def check_sizes(
    where: str, values: Mapping[str, Any], limits: Mapping[str, int], low: int = 1
) -> None:
    """Raise InputError unless each value (an int, or a list of ints) is in [low, limit]:
    sizes read from a file are bounded before anything is allocated."""
    for name, value in values.items():
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, bool) or not isinstance(item, int) or not (
                low <= item <= limits[name]
            ):
                raise InputError(
                    f"{where}.{name}: {value!r} is not a whole number in [{low}, {limits[name]}]"
                )


def _check_tower_source(where: str, source: str | None, config: dict | None) -> None:
    if source is None and config is None:
        raise InputError(f"{where}: give a source (hub name or folder) or a config dict")
    if config is not None and "model_type" not in config:
        raise InputError(f"{where}.config: a transformers config dict needs 'model_type'")


@dataclass
class ImageTowerConfig:
    """Image tower: a transformers vision model (Swin by default), pooled and projected.

    ``mean``/``std`` are the per-channel normalisation the tower expects; their length is the
    number of input channels the data pipeline should produce. ``image_size`` is the side of
    the square the pipeline feeds it (None: the backbone's own size, written in when built).
    """

    source: str | None = None
    config: dict[str, Any] | None = None
    pooling: str = "pooler"
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    image_size: int | None = None

    def __post_init__(self) -> None:
        where = "model.image"
        _check_tower_source(where, self.source, self.config)
        check_choice(f"{where}.pooling", self.pooling, TOWER_POOLINGS)
        if self.image_size is not None:
            check_sizes(where, {"image_size": self.image_size}, _SIZE_LIMITS, low=8)
        self.mean, self.std = tuple(map(float, self.mean)), tuple(map(float, self.std))
        if len(self.mean) != len(self.std) or not self.mean:
            raise InputError(f"{where}: mean {self.mean} and std {self.std} need the same length")


@dataclass
class TextHeadConfig:
    """Trainable head over cached token features of a frozen text model (text mode "head"):
    LayerNorm + linear to ``width``, ``layers`` pre-norm transformer encoder layers, then
    attention or mean pooling."""

    width: int = 256
    layers: int = 1
    heads: int = 4
    ff_dim: int = 512
    dropout: float = 0.1
    pooling: str = "attention"

    def __post_init__(self) -> None:
        where = "model.text.head"
        check_choice(f"{where}.pooling", self.pooling, HEAD_POOLINGS)
        check_sizes(where, {"width": self.width, "heads": self.heads, "ff_dim": self.ff_dim},
                    _SIZE_LIMITS)
        check_sizes(where, {"layers": self.layers}, _SIZE_LIMITS, low=0)
        if self.layers < 0 or self.width % self.heads:
            raise InputError(
                f"{where}: layers must be >= 0 and width ({self.width}) divisible by heads "
                f"({self.heads})"
            )


@dataclass
class TextTowerConfig:
    """Text tower. Mode "full" fine-tunes the transformers model; mode "head" keeps it frozen
    (its token features are cached at prepare time) and trains ``head`` on them."""

    source: str | None = None
    config: dict[str, Any] | None = None
    mode: str = "full"
    pooling: str = "mean"
    max_length: int = 128
    head: TextHeadConfig = field(
        default_factory=TextHeadConfig
    )

    def __post_init__(self) -> None:
        where = "model.text"
        _check_tower_source(where, self.source, self.config)
        check_choice(f"{where}.mode", self.mode, TEXT_MODES)
        check_choice(f"{where}.pooling", self.pooling, TOWER_POOLINGS)
        check_sizes(where, {"max_length": self.max_length}, _SIZE_LIMITS)


@dataclass
class GraphConfig:
    """Graph encoder: a 2-layer GCN, (node_dim + 4) -> hidden_dim -> embed_dim. ``node_dim`` is
    the width of the entity-text embeddings (default: the text tower's hidden size)."""

    hidden_dim: int = 256
    node_dim: int | None = None

    def __post_init__(self) -> None:
        sizes = {"hidden_dim": self.hidden_dim, "node_dim": self.node_dim}
        check_sizes("model.graph", {k: v for k, v in sizes.items() if v is not None},
                    _SIZE_LIMITS)


@dataclass
class ClinicCLIPConfig:
    """Everything that defines a ClinicCLIP architecture; ``graph`` None means no graph encoder.

    ``temperature`` is fixed unless ``learn_temperature`` is true.
    """

    image: ImageTowerConfig
    text: TextTowerConfig
    graph: GraphConfig | None = None
    embed_dim: int = 512
    temperature: float = 0.1
    learn_temperature: bool = False

    def __post_init__(self) -> None:
        check_sizes("model", {"embed_dim": self.embed_dim}, _SIZE_LIMITS)
        _check_positive("model", temperature=self.temperature)

    def to_dict(self) -> dict[str, Any]:
        """A plain dict of lists, numbers and strings (JSON and ``yaml.safe_dump`` friendly)."""
        return plain(self)

    @property
    def preprocessing(self) -> dict[str, Any]:
        """What turns an image and a report into this model's inputs (image size, channel
        mean/std, text mode, source and max length): all a checkpoint needs to be used."""
        image, text = self.image, self.text
        return {"image_size": image.image_size, "mean": list(image.mean), "std": list(image.std),
                "text_mode": text.mode, "text_source": text.source,
                "max_length": text.max_length}  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClinicCLIPConfig:
        """Build from a dict such as :meth:`to_dict` gives (``model_type`` and
        ``clip2clinic_version`` of a ``config.json`` are accepted); unknown keys raise
        InputError, and so does another ``model_type``."""
        if isinstance(data, Mapping) and (MODEL_TYPE_KEY in data or VERSION_KEY in data):
            data = dict(data)
            model_type = data.pop(MODEL_TYPE_KEY, MODEL_TYPE)
            data.pop(VERSION_KEY, None)
            if model_type != MODEL_TYPE:
                raise InputError(f"model.model_type: {model_type!r} is not a ClinicCLIP "
                                 f"config ({MODEL_TYPE!r})")
        return build(cls, data, "model")

    def save(self, path: str | os.PathLike) -> None:
        """Write as indented JSON, atomically, headed by ``model_type`` and the version of
        clip2clinic that wrote it."""
        header = {MODEL_TYPE_KEY: MODEL_TYPE, VERSION_KEY: package_version()}
        write_text_atomic(json.dumps({**header, **self.to_dict()}, indent=2) + "\n", path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> ClinicCLIPConfig:
        """Read a JSON file written by :meth:`save`."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(f"{path}: cannot read model config ({exc})") from None
        return cls.from_dict(data)


def package_version() -> str:
    """The installed clip2clinic version ("unknown" when run from a bare source tree)."""
    try:
        return metadata.version("clip2clinic")
    except metadata.PackageNotFoundError:
        return "unknown"




EMBEDDED_SWIN = {
    "model_type": "swin",
    "image_size": 128,
    "patch_size": 8,
    "num_channels": 1,
    "embed_dim": 32,
    "depths": [1, 1, 2],
    "num_heads": [2, 4, 8],
    "window_size": 4,
    "drop_path_rate": 0.0,
}


def embedded_config(graph: bool = False) -> ClinicCLIPConfig:
    """The preset that trains on two CPU cores: a small Swin from scratch on 1-channel 128 px
    images, and a trainable head over cached token features of the bundled, frozen MiniLM."""
    return ClinicCLIPConfig(
        image=ImageTowerConfig(config=dict(EMBEDDED_SWIN), mean=(0.5,), std=(0.5,)),
        text=TextTowerConfig(
            source=MINILM_SOURCE,
            mode="head",
            max_length=64,
            head=TextHeadConfig(width=128, layers=1, heads=4, ff_dim=256, dropout=0.0),
        ),
        graph=GraphConfig() if graph else None,
    )


def paper_config(graph: bool = False) -> ClinicCLIPConfig:
    """The paper's preset: Swin-Tiny (ImageNet, 224 px) and Bio_ClinicalBERT, both fine-tuned."""
    return ClinicCLIPConfig(
        image=ImageTowerConfig(source=PAPER_IMAGE_SOURCE),
        text=TextTowerConfig(source=PAPER_TEXT_SOURCE, mode="full", max_length=128),
        graph=GraphConfig() if graph else None,
    )
