"""Training logs of a run directory: ``logs/metrics.csv`` and Accelerate's experiment trackers
(TensorBoard under ``logs/tensorboard`` by default; Weights & Biases and MLflow when installed
and asked for with ``train.log_with``).

Each logged step is one CSV row and one set of tracker scalars, ``train/<column>`` (the
validation loss as ``val/loss``). A resumed run replays the steps after its checkpoint, so
the CSV is cut back to that step first and TensorBoard purges the later events
(``purge_step``).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from accelerate.tracking import GeneralTracker

from clip2clinic.io import InputError, atomic_path
from clip2clinic.run_dir import LOG_TABLE, TENSORBOARD_DIR

#: The CSV column of the validation loss (tracker tag ``val/loss``).
VAL_LOSS = "val_loss"
PROJECT = "clip2clinic"


def tracker_tag(column: str) -> str:
    """The tracker tag of a metrics.csv column."""
    return "val/loss" if column == VAL_LOSS else f"train/{column}"


def make_trackers(names: Sequence[str], logs: Path, run_name: str,
                  resume_step: int = 0) -> list[GeneralTracker]:
    """Started Accelerate trackers for ``names``; InputError naming the package to install
    when one is missing."""
    from accelerate.tracking import MLflowTracker, TensorBoardTracker, WandBTracker
    from accelerate.utils import is_mlflow_available, is_tensorboard_available, is_wandb_available

    available = {"tensorboard": is_tensorboard_available, "wandb": is_wandb_available,
                 "mlflow": is_mlflow_available}  # fmt: skip
    trackers: list[GeneralTracker] = []
    for name in names:
        if not available[name]():
            raise InputError(f"train.log_with: {name} is not installed (pip install "
                             f"{name}), or drop it from train.log_with")
        if name == "tensorboard":
            trackers.append(TensorBoardTracker(TENSORBOARD_DIR, logs,
                                               purge_step=resume_step + 1 if resume_step else None))
        elif name == "wandb":
            trackers.append(WandBTracker(PROJECT, name=run_name))
        else:
            trackers.append(MLflowTracker(PROJECT, str(logs / "mlruns"), run_name=run_name))
    for tracker in trackers:
        tracker.start()
    return trackers


class RunLog:
    """Appends one row per logged step to ``<logs>/metrics.csv`` (``columns``: step, epoch,
    then the logged values) and logs the same values to the trackers.

    ``config`` (flat: dotted keys to plain values) is stored as the trackers' run configuration
    by the trackers that keep one (W&B, MLflow); TensorBoard's is the run's ``config.yaml``.
    """

    def __init__(self, logs: Path, columns: Sequence[str], resume_step: int = 0,
                 trackers: Sequence[str] = ("tensorboard",), run_name: str = PROJECT,
                 config: Mapping[str, Any] | None = None):
        logs.mkdir(parents=True, exist_ok=True)
        self.columns = ["step", "epoch", *columns]
        self.csv_path = logs / LOG_TABLE
        _truncate_csv(self.csv_path, resume_step, self.columns)
        new = not self.csv_path.is_file()
        self._file = self.csv_path.open("a", newline="", encoding="utf-8")
        self._csv = csv.DictWriter(self._file, self.columns, restval="")
        if new:
            self._csv.writeheader()
            self._file.flush()
        self.trackers = make_trackers(trackers, logs, run_name, resume_step)
        for tracker in self.trackers:
            if config is not None and tracker.name != "tensorboard":
                tracker.store_init_configuration(dict(config))

    def write(self, step: int, epoch: int, values: Mapping[str, float]) -> None:
        """Log ``values`` (a subset of the columns; the others stay empty) at ``step``."""
        unknown = set(values) - set(self.columns)
        if unknown:
            raise ValueError(f"not columns of {self.csv_path}: {sorted(unknown)}")
        self._csv.writerow({"step": step, "epoch": epoch,
                            **{k: _format(v) for k, v in values.items()}})  # fmt: skip
        self._file.flush()
        scalars = {tracker_tag(k): float(v) for k, v in values.items() if math.isfinite(v)}
        for tracker in self.trackers:
            tracker.log(scalars, step=step)

    def close(self) -> None:
        self._file.close()
        for tracker in self.trackers:
            tracker.finish()


def _format(value: float) -> str:
    return f"{value:.6g}"


def _truncate_csv(path: Path, last_step: int, columns: Sequence[str]) -> None:
    """Keep the rows up to ``last_step`` (all rows go when it is 0) under the header
    ``columns`` (a log written with other columns keeps the values of the shared ones)."""
    if not path.is_file():
        return
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    kept = [row for row in rows
            if (row.get("step") or "").isdigit() and int(row["step"]) <= last_step]
    with atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, list(columns), restval="", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(kept)
