"""What every evaluation task returns: point estimates with bootstrap 95% confidence intervals.

A task is a function of embeddings (and a text embedder where it needs prompts) that returns a
:class:`TaskResult`: named :class:`Estimate` values (fractions in [0, 1]) and a table (per
class, per case, ...) that ``evaluate`` writes as the task's CSV.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

#: Bootstrap resamples used unless a caller asks otherwise.
N_BOOTSTRAP = 1000


@dataclass(frozen=True)
class Estimate:
    """A metric's value with its bootstrap 95% interval [low, high] over ``n`` cases."""

    value: float
    low: float
    high: float
    n: int

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


@dataclass
class TaskResult:
    """Metrics (name -> Estimate) and a table for the task's CSV."""

    metrics: dict[str, Estimate]
    table: pd.DataFrame = field(default_factory=pd.DataFrame)


def bootstrap(
    statistic: Callable[..., float],
    arrays: Sequence[np.ndarray],
    n_boot: int = N_BOOTSTRAP,
    seed: int = 0,
    level: float = 0.95,
) -> Estimate:
    """``statistic(*arrays)`` with a percentile bootstrap interval.

    Cases (the first axis of every array) are resampled together; resamples where the
    statistic is undefined (NaN, e.g. an AUC with one class) are left out of the interval.
    """
    arrays = [np.asarray(a) for a in arrays]
    n = len(arrays[0])
    if any(len(a) != n for a in arrays):
        raise ValueError("bootstrap: arrays differ in length")
    value = float(statistic(*arrays)) if n else math.nan
    if n == 0 or math.isnan(value):
        return Estimate(value, math.nan, math.nan, n)
    rng = np.random.default_rng(seed)
    draws = np.array(
        [statistic(*(a[idx] for a in arrays)) for idx in rng.integers(0, n, size=(n_boot, n))],
        dtype=float,
    )
    draws = draws[~np.isnan(draws)]
    if draws.size == 0:
        return Estimate(value, math.nan, math.nan, n)
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(draws, [tail, 100 - tail])
    return Estimate(value, float(low), float(high), n)


def _mean(outcomes: np.ndarray) -> float:
    return float(np.mean(outcomes))


def mean_estimate(outcomes: Sequence[float] | np.ndarray, seed: int = 0) -> Estimate:
    """The mean of per-case outcomes (e.g. 1 = right, 0 = wrong) with its bootstrap interval."""
    return bootstrap(_mean, [np.asarray(outcomes, dtype=float)], seed=seed)


def auc(y_true: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC, NaN (not an error) when only one class is present."""
    y_true = np.asarray(y_true)
    if np.unique(y_true).size < 2:
        return math.nan
    return float(roc_auc_score(y_true, scores))


def auc_estimate(y_true: np.ndarray, scores: np.ndarray, name: str = "", seed: int = 0) -> Estimate:
    """AUC with its bootstrap interval; NaN and a warning when a class has no positives
    (or no negatives)."""
    if np.unique(np.asarray(y_true)).size < 2:
        warnings.warn(
            f"AUC{f' of {name}' if name else ''} is undefined: only one class among "
            f"{len(y_true)} cases; reported as NaN",
            stacklevel=2,
        )
    return bootstrap(auc, [np.asarray(y_true), np.asarray(scores, dtype=float)], seed=seed)
