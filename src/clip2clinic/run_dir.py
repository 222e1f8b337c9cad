"""The layout of a run directory and of its evaluation outputs, owned here: no other module
spells a file name inside a run.

::

    RUN/
      config.yaml                    the resolved training config (variant, seed, ...)
      logs/metrics.csv               training log: loss and its terms, lr, images/s, val_loss
      logs/tensorboard/              the same as TensorBoard events (clip2clinic.training.run_log)
      checkpoints/step-000500/       model.safetensors + config.json (+ training_state/)
      checkpoints/final/             written when training ends
      evaluation/                    metrics.json, <task>_<dataset>.csv and _cases.parquet,
                                     roc.csv, embeddings/ (see :class:`EvaluationDir`)
      evaluation_validate/           the same on the validation split (``sweep``)

A checkpoint folder holds the Hugging Face names ``model.safetensors`` + ``config.json``.

The trainer writes a run, ``evaluate`` scores it, ``report``/``compare`` read its evaluation,
the API loads its newest checkpoint: each through :class:`RunDir`.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from huggingface_hub.constants import CONFIG_NAME as MODEL_CONFIG_FILE
from huggingface_hub.constants import SAFETENSORS_SINGLE_FILE as WEIGHTS_FILE

from clip2clinic.io import InputError

CONFIG_FILE = "config.yaml"
CHECKPOINTS_DIR = "checkpoints"
FINAL = "final"
LOGS_DIR = "logs"
#: The training log's table inside ``logs/`` (written by clip2clinic.training.run_log).
LOG_TABLE = "metrics.csv"
TENSORBOARD_DIR = "tensorboard"
EVALUATION_DIR = "evaluation"
_STEP_DIR = re.compile(r"^step-(\d+)$")


@dataclass(frozen=True)
class EvaluationDir:
    """The outputs of one ``clip2clinic evaluate`` call (``RUN/evaluation`` or ``--out``)."""

    path: Path

    METRICS = "metrics.json"
    ROC = "roc.csv"
    CASES_SUFFIX = "_cases.parquet"

    @classmethod
    def of(cls, path: str | os.PathLike) -> EvaluationDir:
        """The evaluation folder ``path`` names: a run dir (its ``evaluation/``), an evaluation
        folder, or a ``metrics.json`` file in one."""
        path = Path(path)
        if path.suffix == ".json":
            return cls(path.parent)
        if (path / CONFIG_FILE).is_file() or (path / CHECKPOINTS_DIR).is_dir():
            return RunDir(path).evaluation
        if (path / EVALUATION_DIR / cls.METRICS).is_file():
            return cls(path / EVALUATION_DIR)
        if (path / cls.METRICS).is_file():
            return cls(path)
        return RunDir(path).evaluation

    @property
    def metrics_file(self) -> Path:
        return self.path / self.METRICS

    @property
    def roc_file(self) -> Path:
        return self.path / self.ROC

    @property
    def embeddings(self) -> Path:
        """The default embedding cache of this evaluation."""
        return self.path / "embeddings"

    @property
    def done(self) -> bool:
        """True when a metrics file was written."""
        return self.metrics_file.is_file()

    def task_csv(self, name: str) -> str:
        """The table file of ``name`` (``<task>_<dataset>``), relative to :attr:`path`."""
        return f"{name}.csv"

    def cases_file(self, name: str) -> str:
        """The per-case Parquet file of ``name``, relative to :attr:`path`."""
        return f"{name}{self.CASES_SUFFIX}"


@dataclass(frozen=True)
class RunDir:
    """A training run's folder; see the module docstring for its layout."""

    path: Path

    def __init__(self, path: str | os.PathLike) -> None:
        object.__setattr__(self, "path", Path(path))

    @classmethod
    def containing(cls, checkpoint: str | os.PathLike) -> RunDir | None:
        """The run a checkpoint folder belongs to (``RUN/checkpoints/<name>``), or None for a
        checkpoint folder outside a run."""
        checkpoint = Path(checkpoint)
        if checkpoint.parent.name == CHECKPOINTS_DIR:
            return cls(checkpoint.parent.parent)
        return None

    # --- files -----------------------------------------------------------------------------

    @property
    def config_file(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def logs(self) -> Path:
        return self.path / LOGS_DIR

    @property
    def log_table(self) -> Path:
        """The training log's CSV (one row per logged step)."""
        return self.logs / LOG_TABLE

    @property
    def checkpoints(self) -> Path:
        return self.path / CHECKPOINTS_DIR

    @property
    def final(self) -> Path:
        """The final checkpoint folder (it exists once training ended)."""
        return self.checkpoints / FINAL

    @property
    def evaluation(self) -> EvaluationDir:
        """The evaluation on the test split (what ``report`` and ``compare`` read)."""
        return EvaluationDir(self.path / EVALUATION_DIR)

    def evaluation_of(self, split: str) -> EvaluationDir:
        """The evaluation on ``split``: :attr:`evaluation` for the test split, else
        ``evaluation_<split>/`` (e.g. the sweep's scores on the validation split)."""
        if split == "test":
            return self.evaluation
        return EvaluationDir(self.path / f"{EVALUATION_DIR}_{split}")

    def step(self, step: int) -> Path:
        """The folder of the step checkpoint after optimizer step ``step``."""
        return self.checkpoints / f"step-{step:06d}"

    # --- state -----------------------------------------------------------------------------

    def is_run(self) -> bool:
        """True when the folder looks like a run (a config or a checkpoints folder)."""
        return self.config_file.is_file() or self.checkpoints.is_dir()

    @property
    def finished(self) -> bool:
        """True when training wrote the final checkpoint."""
        return (self.final / WEIGHTS_FILE).is_file()

    def step_checkpoints(self) -> list[tuple[int, Path]]:
        """(step, folder) of the step checkpoints, oldest first."""
        if not self.checkpoints.is_dir():
            return []
        found = []
        for path in self.checkpoints.iterdir():
            match = _STEP_DIR.match(path.name)
            if match and path.is_dir():
                found.append((int(match.group(1)), path))
        return sorted(found)

    def newest_checkpoint(self) -> Path | None:
        """The final checkpoint, else the newest complete step checkpoint, else None."""
        candidates = [self.final, *(f for _, f in reversed(self.step_checkpoints()))]
        return next((f for f in candidates if is_checkpoint(f)), None)

    def prune(self, keep_last: int | None) -> None:
        """Delete all but the newest ``keep_last`` step checkpoints (None keeps all)."""
        if keep_last is None:
            return
        for _, path in self.step_checkpoints()[:-keep_last]:
            shutil.rmtree(path)

    # --- identity --------------------------------------------------------------------------

    def read_config(self) -> dict[str, Any]:
        """The saved config as plain data; InputError naming the file when it is absent or not
        YAML."""
        if not self.config_file.is_file():
            raise InputError(f"{self.path}: no {CONFIG_FILE}; not a clip2clinic run directory")
        try:
            data = yaml.safe_load(self.config_file.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise InputError(f"{self.config_file}: unreadable ({exc})") from None
        if not isinstance(data, dict):
            raise InputError(f"{self.config_file}: not a mapping")
        return data

    def identity(self) -> dict[str, Any]:
        """The run's variant and seed (from its config when it has one; else the folder name
        and None) and its image size (None when the config does not set one)."""
        config = self.read_config() if self.config_file.is_file() else {}
        return {
            "run": str(self.path),
            "variant": config.get("variant") or self.path.name,
            "seed": (config.get("train") or {}).get("seed", config.get("seed")),
            "image_size": (config.get("data") or {}).get("image_size"),
        }


def is_checkpoint(folder: Path) -> bool:
    """True when ``folder`` holds a loadable checkpoint's two files."""
    return (folder / WEIGHTS_FILE).is_file() and (folder / MODEL_CONFIG_FILE).is_file()
