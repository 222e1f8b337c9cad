"""Per-class AUCs shared by the zero-shot and linear-probe tasks.

Labels are an ``n x C`` float matrix: 1 positive, 0 negative; anything else (NaN = unknown,
-1 = uncertain) leaves that case out *for that class only*. Scores are ``n x C`` (one score set)
or ``n x C x S`` (S score sets, e.g. seeds, averaged per class). AUCs are computed from ranks
(the Mann-Whitney form, ties counted half), equal to scikit-learn's ``roc_auc_score`` and about
25 times faster on 1,000 cases (benchmarks/bench_classification_eval.py), which matters inside
a 1,000-resample bootstrap.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
from scipy.stats import norm

from clip2clinic.evaluation.results import N_BOOTSTRAP, Estimate, bootstrap


def label_matrix(labels: np.ndarray, n_classes: int, n_cases: int) -> np.ndarray:
    """``labels`` as an ``n x C`` float matrix (a 1-D vector is one class); checks the shape."""
    labels = np.asarray(labels, dtype=float)
    if labels.ndim == 1:
        labels = labels[:, None]
    if labels.shape != (n_cases, n_classes):
        raise ValueError(
            f"labels have shape {labels.shape}, expected ({n_cases}, {n_classes}): "
            "one row per embedding, one column per class"
        )
    return labels


def finite_image_rows(embeddings: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Image embeddings as a float matrix with non-finite rows zeroed, and which rows are
    finite (a failed image is left out of the scores, with a warning naming ``name``)."""
    x = np.asarray(embeddings, dtype=float)
    if x.ndim != 2:
        raise ValueError(f"{name} image embeddings must be 2-D (images x dim), got {x.shape}")
    finite = np.isfinite(x).all(axis=1)
    if not finite.all():
        warnings.warn(
            f"{name}: {int((~finite).sum())} of {len(finite)} image embeddings are not finite; "
            "those images are left out",
            stacklevel=3,
        )
    return np.where(finite[:, None], x, 0.0), finite


def known(labels: np.ndarray) -> np.ndarray:
    """Where a label is a usable 0 or 1 (not NaN, not -1 uncertain)."""
    return (labels == 0) | (labels == 1)


def blank_as_negative(labels: np.ndarray) -> np.ndarray:
    """Report-derived labels read the CheXpert way for evaluation: a finding not mentioned
    (NaN) is absent (0); uncertain (-1) stays out of the evaluation."""
    labels = np.asarray(labels, dtype=float)
    return np.where(np.isnan(labels), 0.0, labels)


def rank_auc(y_true: np.ndarray, scores: np.ndarray) -> np.ndarray | float:
    """ROC AUC of 0/1 ``y_true`` for ``scores`` (1-D, or 2-D: one AUC per column); NaN where
    only one class is present.

    The Mann-Whitney form: the positives' rank sum, ties given their average rank, computed for
    all columns at once (scipy's rankdata costs more per call than the sort itself here)."""
    y_true = np.asarray(y_true, dtype=bool)
    scores = np.asarray(scores, dtype=float)
    columns = scores.reshape(len(scores), -1)
    positives = int(y_true.sum())
    negatives = y_true.size - positives
    if positives == 0 or negatives == 0:
        return math.nan if scores.ndim == 1 else np.full(columns.shape[1], math.nan)
    order = np.argsort(columns, axis=0, kind="stable")
    ordered = np.take_along_axis(columns, order, axis=0)
    position = np.broadcast_to(np.arange(len(columns))[:, None], columns.shape)
    differs = ordered[1:] != ordered[:-1]
    edge = np.ones((1, columns.shape[1]), dtype=bool)
    first = np.maximum.accumulate(np.where(np.vstack([edge, differs]), position, 0), axis=0)
    last = np.where(np.vstack([differs, edge]), position, len(columns))
    last = np.minimum.accumulate(last[::-1], axis=0)[::-1]
    ranks = (first + last) / 2 + 1
    rank_sum = (ranks * y_true[order]).sum(axis=0)
    aucs = (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)
    return float(aucs[0]) if scores.ndim == 1 else aucs


def class_aucs(labels: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Per class, the AUC over its known cases averaged over score sets (NaN where a class has
    one label value or every score set is NaN for it)."""
    if scores.ndim == 2:
        scores = scores[:, :, None]
    usable = known(labels)
    out = np.full(labels.shape[1], math.nan)
    for c in range(labels.shape[1]):
        rows = usable[:, c]
        y_true = labels[rows, c] == 1
        sets = scores[rows, c, :]
        sets = sets[:, ~np.isnan(sets).any(axis=0)] if len(sets) else sets[:, :0]
        if sets.shape[1]:
            values = rank_auc(y_true, sets)
            values = values[values == values]  # drop NaN
            if values.size:
                out[c] = float(values.mean())
    return out


def mean_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """The mean over classes of :func:`class_aucs`, classes with an undefined AUC left out."""
    aucs = class_aucs(labels, scores)
    aucs = aucs[aucs == aucs]  # drop NaN
    return float(aucs.mean()) if aucs.size else math.nan


def mean_auc_estimate(
    labels: np.ndarray, scores: np.ndarray, seed: int = 0, n_boot: int = N_BOOTSTRAP
) -> Estimate:
    """:func:`mean_auc` with a bootstrap interval over cases (rows resampled together).

    ``n`` is the number of cases with at least one known label."""
    estimate = bootstrap(mean_auc, [labels, scores], n_boot=n_boot, seed=seed)
    return Estimate(estimate.value, estimate.low, estimate.high, int(known(labels).any(1).sum()))


def warn_undefined(name: str, labels: np.ndarray) -> str:
    """ "ok", or why a class's AUC is undefined (with a warning): no positives / no negatives."""
    rows = known(labels)
    positives = int((labels[rows] == 1).sum())
    if positives and positives < rows.sum():
        return "ok"
    status = "no positives" if positives == 0 else "no negatives"
    warnings.warn(
        f"AUC of {name} is undefined: {status} among {int(rows.sum())} labelled cases; "
        "reported as NaN",
        stacklevel=3,
    )
    return status


def combine(estimates: Sequence[Estimate]) -> Estimate:
    """The mean of independent estimates (e.g. one per dataset), NaN ones left out.

    The interval is a normal approximation: each estimate's standard error is read from its
    95% interval (width / 2 / 1.96), the mean's error is their root-sum-square / k, clipped to
    [0, 1]. ``n`` is the total number of cases."""
    usable = [e for e in estimates if not math.isnan(e.value)]
    if not usable:
        return Estimate(math.nan, math.nan, math.nan, 0)
    value = float(np.mean([e.value for e in usable]))
    n = sum(e.n for e in usable)
    if any(math.isnan(e.low) or math.isnan(e.high) for e in usable):
        return Estimate(value, math.nan, math.nan, n)
    z = norm.ppf(0.975)
    spread = math.sqrt(sum(((e.high - e.low) / (2 * z)) ** 2 for e in usable)) / len(usable)
    return Estimate(value, max(0.0, value - z * spread), min(1.0, value + z * spread), n)
