"""Seeded train/validate/test splits: by patient (no leakage), and GLoRIA's row-level split.

``group_split`` assigns whole groups (patients) to splits, so no patient is in two splits.
``gloria_split`` reproduces GLoRIA's preprocessing split exactly: scikit-learn's
``train_test_split`` of the rows into 70 % train and 30 % rest, then of the rest into halves,
the first half test and the second validation, both with ``random_state`` = seed (0 in GLoRIA).
It splits rows, not patients or images, which is why it leaks in SIIM (several rows per image).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from clip2clinic.vocabulary import SPLITS


def _check_fractions(fractions: Sequence[float]) -> None:
    if len(fractions) != len(SPLITS) or any(f < 0 for f in fractions):
        raise ValueError(f"fractions must be {len(SPLITS)} non-negative numbers, got {fractions}")
    if not np.isclose(sum(fractions), 1.0):
        raise ValueError(f"fractions must sum to 1, got {fractions} (sum {sum(fractions)})")


def group_split(
    groups: pd.Series,
    fractions: Sequence[float] = (0.7, 0.15, 0.15),
    seed: int = 0,
    names: Sequence[str] = SPLITS,
) -> pd.Series:
    """Split names per row, assigning whole groups (e.g. patients) to splits.

    The sorted unique groups are shuffled with ``numpy.random.default_rng(seed)`` and cut by
    ``fractions`` of the number of groups (train, validate, test order by default). The result
    depends only on the set of groups and the seed, not on row order.
    """
    _check_fractions(fractions)
    unique = np.array(sorted(groups.astype(str).unique()), dtype=object)
    order = np.random.default_rng(seed).permutation(len(unique))
    bounds = np.rint(np.cumsum(fractions) * len(unique)).astype(int)
    assignment: dict[str, str] = {}
    start = 0
    for name, stop in zip(names, bounds, strict=True):
        for group in unique[order[start:stop]]:
            assignment[group] = name
        start = stop
    return groups.astype(str).map(assignment)


def gloria_split(index: pd.Index, test_fraction: float = 0.15, seed: int = 0) -> pd.Series:
    """GLoRIA's row-level split (see the module notes) as split names per row of ``index``."""
    from sklearn.model_selection import train_test_split  # slow import; only this split uses it

    train, rest = train_test_split(index, test_size=2 * test_fraction, random_state=seed)
    test, validate = train_test_split(rest, test_size=0.5, random_state=seed)
    split = pd.Series(index=index, dtype=object)
    split[train] = "train"
    split[validate] = "validate"
    split[test] = "test"
    return split


def leaked(frame: pd.DataFrame, column: str, split_column: str = "split") -> set[str]:
    """Values of ``column`` (e.g. patient or image ids) that occur in more than one split."""
    per_value = frame.groupby(column)[split_column].nunique()
    return set(per_value[per_value > 1].index.astype(str))
