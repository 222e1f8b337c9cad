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

import numpy as np

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


def auc_strata(labels: np.ndarray, groups: np.ndarray | None = None,
               classes: np.ndarray | None = None) -> np.ndarray:
    """Per row, a stratum for a bootstrap that keeps every class's positives and negatives.

    Each patient (``groups``; every row its own patient when None) goes to the rarest
    (class, label value) it has among ``classes`` (a boolean mask; default all): resampling
    within strata keeps at least one patient of every such pair that is some patient's rarest,
    the rarest pair of all included, and the others in practice. Patients with no known label
    share one stratum."""
    labels = np.asarray(labels, dtype=float).reshape(len(labels), -1)
    chosen = np.ones(labels.shape[1], dtype=bool) if classes is None else classes
    if groups is None:
        unit = np.arange(len(labels))
    else:
        _, unit = np.unique(np.asarray(groups), return_inverse=True)
        unit = unit.reshape(-1)
    values = labels[:, chosen]
    if values.shape[1] == 0 or len(values) == 0:
        return np.zeros(len(labels), dtype=np.int64)
    pairs = np.hstack([values == 1, values == 0]).astype(np.int64)
    has = np.zeros((int(unit.max(initial=-1)) + 1, pairs.shape[1]), dtype=np.int64)
    np.add.at(has, unit, pairs)
    has = has > 0
    cost = np.where(has, has.sum(axis=0), np.iinfo(np.int64).max)
    stratum = np.where(has.any(axis=1), cost.argmin(axis=1), -1)
    return stratum[unit]


def mean_auc_estimate(
    labels: np.ndarray, scores: np.ndarray, seed: int = 0, n_boot: int = N_BOOTSTRAP,
    groups: np.ndarray | None = None,
) -> Estimate:  # fmt: skip
    """:func:`mean_auc` with a bootstrap interval over cases (rows resampled together, by
    patient where ``groups`` are given).

    The class set is fixed: the classes with a defined AUC on all cases. Resampling is
    stratified by :func:`auc_strata` so those classes keep positives and negatives; a resample
    where one of them still has none is left out rather than averaged over fewer classes.
    ``n`` is the number of cases with at least one known label."""
    fixed = ~np.isnan(class_aucs(labels, scores))

    def fixed_mean(y: np.ndarray, s: np.ndarray) -> float:
        aucs = class_aucs(y[:, fixed], s[:, fixed])
        return float(aucs.mean()) if aucs.size and not np.isnan(aucs).any() else math.nan

    strata = auc_strata(labels, groups, fixed)
    estimate = bootstrap(fixed_mean, [labels, scores], n_boot, seed, groups=groups, strata=strata)
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
