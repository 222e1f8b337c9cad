"""Training logs of a run directory: ``metrics.csv`` and TensorBoard events under ``logs/``.

A resumed run replays the steps after its checkpoint, so both logs are cut back to that step
first (TensorBoard through ``purge_step``).
"""

from __future__ import annotations

import csv
from pathlib import Path

from torch.utils.tensorboard import SummaryWriter

from clip2clinic.io import atomic_path

CSV_NAME = "metrics.csv"
COLUMNS = ("step", "epoch", "loss", "lr", "lr_heads", "images_per_s")


class RunLog:
    """Appends one row per logged step to ``<logs>/metrics.csv`` and TensorBoard scalars
    (``train/<column>``) to ``<logs>/tensorboard``."""

    def __init__(self, logs: Path, resume_step: int = 0):
        logs.mkdir(parents=True, exist_ok=True)
        self.csv_path = logs / CSV_NAME
        _truncate_csv(self.csv_path, resume_step)
        new = not self.csv_path.is_file()
        self._file = self.csv_path.open("a", newline="", encoding="utf-8")
        self._csv = csv.writer(self._file)
        if new:
            self._csv.writerow(COLUMNS)
        self._tensorboard = SummaryWriter(
            str(logs / "tensorboard"), purge_step=resume_step + 1 if resume_step else None
        )

    def write(self, step: int, epoch: int, loss: float, lr: float, lr_heads: float,
              images_per_s: float) -> None:
        values = dict(zip(COLUMNS, (step, epoch, loss, lr, lr_heads, images_per_s), strict=True))
        self._csv.writerow([_format(values[name]) for name in COLUMNS])
        self._file.flush()
        for name in COLUMNS[2:]:
            self._tensorboard.add_scalar(f"train/{name}", values[name], step)

    def close(self) -> None:
        self._file.close()
        self._tensorboard.close()


def _format(value: float | int) -> str:
    return str(value) if isinstance(value, int) else f"{value:.6g}"


def _truncate_csv(path: Path, last_step: int) -> None:
    """Keep the header and the rows up to ``last_step`` (all rows go when it is 0)."""
    if not path.is_file():
        return
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    kept = [row for row in rows[1:] if row and row[0].isdigit() and int(row[0]) <= last_step]
    with atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerows([list(COLUMNS), *kept])
