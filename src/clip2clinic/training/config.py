"""The training configuration: a tree of dataclasses loaded from YAML files and ``--set``
overrides, validated with errors that name the key at fault.

A config file is a YAML mapping with the sections of :class:`TrainConfig`. It may ``include``
other files (a list of paths, relative to the including file or to :func:`configs_dir`);
included files are merged first, in order, then the file's own keys on top (mappings merge key
by key, anything else replaces). ``model.base`` names the architecture the ``model``
section starts from (``embedded`` or ``paper``, see :mod:`clip2clinic.model.config`); the other
``model`` keys override it. See docs/train.md.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from clip2clinic.config_tree import build, check_choice, plain
from clip2clinic.configs import configs_dir
from clip2clinic.data.transforms import AugmentConfig
from clip2clinic.io import InputError, write_text_atomic
from clip2clinic.losses import (
    CLINICAL_ENCODINGS,
    DEFAULT_CLINICAL_ENCODING,
    DEFAULT_THRESHOLDS,
    DEFAULT_WEIGHTS,
    IMAGE_GRAPH_COLUMNS,
    STREAMS,
)
from clip2clinic.model import ClinicCLIPConfig, GraphConfig, embedded_config, paper_config
from clip2clinic.vocabulary import SPLITS

#: Architectures a ``model`` section can start from (``model.base``).
MODEL_BASES = {"embedded": embedded_config, "paper": paper_config}
LOSS_KINDS = ("clinic", "softclip")
MIXED_PRECISION = ("no", "bf16", "fp16")
#: Keys that may differ when a run is resumed (they change how, not what, is trained).
RESUMABLE_CHANGES = ("train.stop_after_steps", "train.progress", "data.num_workers",
                     "train.log_with", "train.validation_loss")
#: Experiment trackers ``train.log_with`` may name (Accelerate's; see training/run_log.py).
TRACKERS = ("tensorboard", "wandb", "mlflow")
#: The top-level ``config.yaml`` key of a run's provenance: a record, ignored when loading.
PROVENANCE = "provenance"


class ConfigLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that reads ``1e-4`` as a number (as YAML 1.2 does; YAML 1.1, and
    so PyYAML, needs ``1.0e-4``)."""


ConfigLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def parse_yaml(text: str):
    """Parse YAML text with :class:`ConfigLoader`."""
    return yaml.load(text, Loader=ConfigLoader)  # noqa: S506 (a SafeLoader subclass)


@dataclass
class SoftclipConfig:
    """Options of :func:`clip2clinic.losses.softclip_loss` (loss kind ``softclip``)."""

    alpha: float = 0.2
    self_temperature: float = 0.1
    neg_weight: float = 1.0


@dataclass
class LossConfig:
    """What a variant trains: the loss kind, soft-label streams, hard negatives, graph stream.

    ``graph`` adds the graph encoder and its four InfoNCE/soft directions (image↔graph,
    text↔graph); stream ``g`` additionally uses graph similarity as soft labels.
    Missing ``thresholds``/``weights`` keys take the loss module's defaults.
    The paper's open readings (docs/loss.md): ``clinical_encoding`` (how CheXpert outputs
    become the clinical vector, :data:`~clip2clinic.losses.CLINICAL_ENCODINGS`),
    ``image_graph`` (image→graph logits over ``all`` graphs or the B ``originals``) and
    ``zero_own_negation`` (a labelled deviation: no soft target between a report and its own
    hard negative).
    """

    kind: str = "clinic"
    streams: list[str] = field(default_factory=list)
    hard_negatives: bool = False
    graph: bool = False
    thresholds: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_THRESHOLDS))
    weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    clinical_encoding: str = DEFAULT_CLINICAL_ENCODING
    image_graph: str = "all"
    zero_own_negation: bool = False
    softclip: SoftclipConfig = field(default_factory=SoftclipConfig)

    def validate(self, where: str = "loss") -> None:
        check_choice(f"{where}.kind", self.kind, LOSS_KINDS)
        check_choice(f"{where}.clinical_encoding", self.clinical_encoding, CLINICAL_ENCODINGS)
        check_choice(f"{where}.image_graph", self.image_graph, IMAGE_GRAPH_COLUMNS)
        for key in ("streams", "thresholds", "weights"):
            unknown = [s for s in getattr(self, key) if s not in STREAMS]
            if unknown:
                raise InputError(f"{where}.{key}: unknown stream(s) {unknown}; use {STREAMS}")
        if len(set(self.streams)) != len(self.streams):
            raise InputError(f"{where}.streams: {self.streams} repeats a stream")
        for stream, value in self.thresholds.items():
            if not -1.0 <= value < 1.0:
                raise InputError(f"{where}.thresholds.{stream}: {value} is not in [-1, 1)")
        for stream, value in self.weights.items():
            if not (math.isfinite(value) and value >= 0):
                raise InputError(f"{where}.weights.{stream}: {value} must be >= 0")
        if "g" in self.streams and not self.graph:
            raise InputError(f"{where}.streams: stream 'g' needs {where}.graph: true")
        if self.kind == "softclip" and (self.streams or self.hard_negatives or self.graph):
            raise InputError(
                f"{where}.kind: softclip takes no streams, hard_negatives or graph "
                "(it is an image-text baseline)"
            )


@dataclass
class DataConfig:
    """The manifest, the batch and the image pipeline.

    ``batch_size`` is the global batch (the one the loss and its soft labels see), split
    evenly over processes. ``image_size`` defaults to the image tower's. ``augment`` holds
    :class:`clip2clinic.data.transforms.AugmentConfig` fields (null: no augmentation).
    ``uncertain`` is the value an uncertain (-1) CheXpert label takes in the clinical vector
    (positive 1; see ``loss.clinical_encoding`` for negative and not mentioned).
    """

    manifest: str | None = None
    split: str = "train"
    batch_size: int = 64
    num_workers: int = 0
    image_size: int | None = None
    augment: dict[str, Any] | None = field(default_factory=dict)
    uncertain: float = 0.5

    def validate(self, where: str = "data") -> None:
        check_choice(f"{where}.split", self.split, SPLITS)
        _check_min(f"{where}.batch_size", self.batch_size, 2)
        _check_min(f"{where}.num_workers", self.num_workers, 0)
        if self.image_size is not None:
            _check_min(f"{where}.image_size", self.image_size, 8)
        if not -1.0 <= self.uncertain <= 1.0:
            raise InputError(f"{where}.uncertain: {self.uncertain} is not in [-1, 1]")
        if self.augment is not None:
            known = {f.name for f in dataclasses.fields(AugmentConfig)} - {"size"}
            unknown = sorted(set(self.augment) - known)
            if unknown:
                raise InputError(
                    f"{where}.augment: unknown key(s) {unknown}; known: {sorted(known)}"
                )
            try:
                AugmentConfig(**_tuples(self.augment))
            except (TypeError, ValueError) as exc:
                raise InputError(f"{where}.augment: {exc}") from None


@dataclass
class OptimConfig:
    """AdamW with one learning rate for the pretrained/backbone towers and one for the new
    layers (projections, text head, graph encoder); cosine decay after a linear warm-up over
    ``warmup_ratio`` of the steps. Biases and norm weights get no weight decay."""

    lr_backbones: float = 5e-5
    lr_heads: float = 5e-4
    weight_decay: float = 1e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    warmup_ratio: float = 0.05
    max_grad_norm: float | None = 1.0

    def validate(self, where: str = "optim") -> None:
        for key in ("lr_backbones", "lr_heads", "eps"):
            if not getattr(self, key) > 0:
                raise InputError(f"{where}.{key}: must be positive, got {getattr(self, key)}")
        if self.weight_decay < 0:
            raise InputError(f"{where}.weight_decay: must be >= 0, got {self.weight_decay}")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise InputError(f"{where}.betas: two numbers in [0, 1), got {self.betas}")
        if not 0 <= self.warmup_ratio < 1:
            raise InputError(f"{where}.warmup_ratio: must be in [0, 1), got {self.warmup_ratio}")
        if self.max_grad_norm is not None and not self.max_grad_norm > 0:
            raise InputError(f"{where}.max_grad_norm: must be positive or null")


@dataclass
class TrainerConfig:
    """The loop: epochs, seed, precision, checkpoints and logs.

    ``checkpoint_every`` steps (0: only at epoch ends) a checkpoint with the training state is
    written; ``keep_last`` keeps only the newest step checkpoints (null: all).
    ``stop_after_steps`` ends this invocation after that global step, with a checkpoint, as if
    interrupted (the schedule is unchanged; resume continues), e.g. for time-limited jobs.
    ``log_with`` names the experiment trackers (:data:`TRACKERS`; ``metrics.csv`` is always
    written); ``validation_loss`` adds the loss on the validation split at each epoch's end.
    """

    epochs: int = 10
    seed: int = 0
    mixed_precision: str = "no"
    gradient_checkpointing: bool = False
    checkpoint_every: int = 500
    keep_last: int | None = None
    log_every: int = 10
    stop_after_steps: int | None = None
    progress: bool = True
    log_with: list[str] = field(default_factory=lambda: ["tensorboard"])
    validation_loss: bool = True

    def validate(self, where: str = "train") -> None:
        _check_min(f"{where}.epochs", self.epochs, 1)
        for name in self.log_with:
            check_choice(f"{where}.log_with", name, TRACKERS)
        check_choice(f"{where}.mixed_precision", self.mixed_precision, MIXED_PRECISION)
        _check_min(f"{where}.checkpoint_every", self.checkpoint_every, 0)
        _check_min(f"{where}.log_every", self.log_every, 1)
        if self.keep_last is not None:
            _check_min(f"{where}.keep_last", self.keep_last, 1)
        if self.stop_after_steps is not None:
            _check_min(f"{where}.stop_after_steps", self.stop_after_steps, 1)


@dataclass
class TrainConfig:
    """Everything a training run needs; ``to_dict``/``from_dict`` round-trip through YAML.

    ``preset`` and ``variant`` are names recorded for the reader (set by the bundled files).
    ``model`` is the exact architecture: its graph encoder exists iff ``loss.graph``.
    """

    model: ClinicCLIPConfig
    out: str | None = None
    preset: str | None = None
    variant: str | None = None
    loss: LossConfig = field(default_factory=LossConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainerConfig = field(default_factory=TrainerConfig)

    def __post_init__(self) -> None:
        for name in ("loss", "data", "optim", "train"):
            getattr(self, name).validate(name)
        if not self.loss.graph:
            self.model.graph = None
        elif self.model.graph is None:
            self.model.graph = GraphConfig()

    def to_dict(self) -> dict[str, Any]:
        """Plain lists, numbers and strings (``yaml.safe_dump`` friendly)."""
        names = ["out", "preset", "variant", "model", "loss", "data", "optim", "train"]
        values = {name: getattr(self, name) for name in names}
        values["model"] = self.model.to_dict()
        return plain(values)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        """Build and validate; every error names the key (e.g. ``optim.lr_heads``)."""
        data = dict(data)
        data.pop(PROVENANCE, None)
        if not isinstance(data.get("model"), Mapping):
            raise InputError("model: missing; give a model section (e.g. model: {base: embedded})")
        model = _model_config(data.pop("model"))
        return build(cls, {**data, "model": model}, "")

    def save(self, path: str | os.PathLike,
             provenance: Mapping[str, Any] | None = None) -> None:
        """Write the resolved config as YAML, atomically, with a ``provenance`` section (a
        record of where the run came from, see :mod:`clip2clinic.provenance`) when given."""
        data = self.to_dict()
        if provenance is not None:
            data[PROVENANCE] = dict(provenance)
        write_text_atomic(self.to_yaml(data), path)

    def to_yaml(self, data: Mapping[str, Any] | None = None) -> str:
        """The resolved config (or ``data``) as YAML text."""
        return yaml.safe_dump(dict(self.to_dict() if data is None else data), sort_keys=False)


# --- loading -------------------------------------------------------------------------------


def load_config(
    paths: Sequence[str | os.PathLike] = (), overrides: Sequence[str] = ()
) -> TrainConfig:
    """Merge the YAML files ``paths`` in order (each with its includes), apply ``overrides``
    (``"a.b=value"``, value parsed as YAML) and validate."""
    raw: dict[str, Any] = {}
    for path in paths:
        raw = merge(raw, read_yaml(path))
    return TrainConfig.from_dict(apply_overrides(raw, overrides))


def with_overrides(config: TrainConfig, overrides: Sequence[str]) -> TrainConfig:
    """``config`` with ``key.path=value`` overrides applied (validated again)."""
    if not overrides:
        return config
    return TrainConfig.from_dict(apply_overrides(config.to_dict(), overrides))


def read_yaml(path: str | os.PathLike, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """One config file with its ``include`` list merged underneath it."""
    path = Path(path).resolve()
    if path in _seen:
        chain = " -> ".join(str(p) for p in (*_seen, path))
        raise InputError(f"{path}: include cycle ({chain})")
    try:
        data = parse_yaml(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"{path}: cannot read config ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid YAML ({exc})") from None
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise InputError(f"{path}: a config file must be a mapping, got {type(data).__name__}")
    includes = data.pop("include", None) or []
    if isinstance(includes, str):
        includes = [includes]
    if not isinstance(includes, list):
        raise InputError(f"{path}: include must be a list of paths")
    merged: dict[str, Any] = {}
    for entry in includes:
        merged = merge(merged, read_yaml(_include_path(path, str(entry)), (*_seen, path)))
    return merge(merged, data)


def _include_path(including: Path, entry: str) -> Path:
    for candidate in (including.parent / entry, configs_dir() / entry):
        if candidate.is_file():
            return candidate
    raise InputError(
        f"{including}: include {entry!r} not found beside it or in {configs_dir()}"
    )


def merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """``update`` over ``base``: mappings merge recursively, other values replace."""
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def apply_overrides(raw: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply ``key.path=value`` strings; the value is parsed as YAML (``1e-4``, ``[t, c]``,
    ``null``, ``true``)."""
    result = dict(raw)
    for override in overrides:
        key, sep, text = override.partition("=")
        parts = key.strip().split(".")
        if not sep or not all(parts):
            raise InputError(f"--set {override!r}: expected key.path=value")
        try:
            value = parse_yaml(text)
        except yaml.YAMLError as exc:
            raise InputError(f"--set {key}: cannot parse {text!r} ({exc})") from None
        nested: Any = value
        for part in reversed(parts):
            nested = {part: nested}
        result = merge(result, nested)
    return result


# --- validation helpers ----------------------------------------------------------------------


def _model_config(raw: Mapping[str, Any]) -> ClinicCLIPConfig:
    raw = dict(raw)
    base = raw.pop("base", None)
    if base is not None:
        if base not in MODEL_BASES:
            raise InputError(f"model.base: {base!r} is not one of {', '.join(MODEL_BASES)}")
        raw = merge(MODEL_BASES[base]().to_dict(), raw)
    return ClinicCLIPConfig.from_dict(raw)



def _check_min(where: str, value: int, low: int) -> None:
    if value < low:
        raise InputError(f"{where}: must be >= {low}, got {value}")





def _tuples(values: Mapping[str, Any]) -> dict[str, Any]:
    """YAML lists as tuples (AugmentConfig's ranges)."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}


def changed_keys(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two config dicts."""
    keys = []
    for key in sorted(set(old) | set(new)):
        path = f"{prefix}{key}"
        a, b = old.get(key), new.get(key)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            keys += changed_keys(a, b, f"{path}.")
        elif a != b:
            keys.append(path)
    return keys


def flat_config(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A config dict as dotted keys to scalars (lists and None as text), the form experiment
    trackers store as a run's parameters."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat |= flat_config(value, f"{path}.")
        else:
            flat[path] = value if isinstance(value, (bool, int, float, str)) else str(value)
    return flat
