"""Per-class AUCs shared by the zero-shot and linear-probe tasks.

Labels are an ``n x C`` float matrix: 1 positive, 0 negative; anything else (NaN = unknown,
-1 = uncertain) leaves that case out *for that class only*. Scores are ``n x C`` (one score set)
or ``n x C x S`` (S score sets, e.g. seeds, averaged per class). AUCs are computed from ranks
(the Mann-Whitney form, ties counted half), equal to scikit-learn's ``roc_auc_score`` and about
25 times faster on 1,000 cases (benchmarks/bench_classification_eval.py), which matters inside
a 1,000-resample bootstrap. Inside the bootstrap the same AUCs come from the resamples'
multiplicities (:func:`weighted_rank_auc`: one sort per class, then sums over all resamples at
once), exact to the last bit against the rank form on the resampled rows.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from clip2clinic.evaluation.results import N_BOOTSTRAP, Estimate, Statistic, bootstrap


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


def weighted_rank_auc(y_true: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """:func:`rank_auc` of 1-D ``scores`` on ``k`` resamples given by their multiplicities
    (``weights``: ``n x k`` integers): ``(k,)`` AUCs, NaN where a resample has one class.

    Each case counts as often as it was drawn: the AUC is the weighted share of (positive,
    negative) pairs ranked right, ties half. The cases are sorted once; per resample one
    cumulative sum over the rarer label's weights remains. The sums are integers, so the value
    equals :func:`rank_auc` on the resampled rows to the last bit."""
    y_true = np.asarray(y_true, dtype=bool)
    scores = np.asarray(scores, dtype=float)
    if 2 * y_true.sum() > len(y_true):  # cumulate the rarer label: AUC(y, s) = AUC(~y, -s)
        y_true, scores = ~y_true, -scores
    order = np.argsort(scores, kind="stable")
    ordered, positive = scores[order], y_true[order]
    # per negative: the positives sorted before its tie block, and up to the block's end
    block = np.cumsum(np.r_[True, ordered[1:] != ordered[:-1]]) - 1
    ends = np.r_[np.flatnonzero(np.diff(block)), len(block) - 1]
    upto = np.cumsum(positive)[ends][block]
    before = upto - np.bincount(block, weights=positive).astype(np.int64)[block]
    upto, before = upto[~positive], before[~positive]
    counted = np.zeros((int(positive.sum()) + 1, weights.shape[1]), dtype=np.int64)
    np.cumsum(weights[order[positive]], axis=0, out=counted[1:])
    negatives = weights[order[~positive]]
    total = counted[-1]
    # twice the pairs ranked right: a positive above the negative counts 2, a tied one 1
    right = (negatives * (2 * total - counted[upto] - counted[before])).sum(axis=0)
    pairs = 2 * total * negatives.sum(axis=0, dtype=np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(pairs > 0, right / pairs, math.nan)


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


def weighted_class_aucs(weights: np.ndarray, labels: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """:func:`class_aucs` on ``k`` resamples given by their multiplicities (``weights``: ``n x
    k``): ``k x C``. A score set counts for a resample when none of its drawn known cases is
    NaN, as :func:`class_aucs` drops it on the resampled rows."""
    if scores.ndim == 2:
        scores = scores[:, :, None]
    usable = known(labels)
    out = np.full((weights.shape[1], labels.shape[1]), math.nan)
    for c in range(labels.shape[1]):
        rows = usable[:, c]
        w, y_true, sets = weights[rows], labels[rows, c] == 1, scores[rows, c, :]
        total, count = np.zeros(w.shape[1]), np.zeros(w.shape[1])
        for s in range(sets.shape[1]):
            unscored = np.isnan(sets[:, s])
            if unscored.all():
                continue
            valid = ~(w[unscored] > 0).any(axis=0)
            values = weighted_rank_auc(y_true, sets[:, s], w)
            counted = valid & ~np.isnan(values)
            total += np.where(counted, values, 0.0)
            count += counted
        with np.errstate(invalid="ignore"):
            out[:, c] = np.where(count > 0, total / count, math.nan)
    return out


def _first_class_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    return float(class_aucs(labels, scores)[0])


def _first_class_auc_weighted(weights: np.ndarray, labels: np.ndarray,
                              scores: np.ndarray) -> np.ndarray:  # fmt: skip
    return weighted_class_aucs(weights, labels, scores)[:, 0]


#: The AUC of one class: labels ``n x 1``, scores ``n x 1`` (or ``n x 1 x S``, averaged over
#: score sets), for :func:`~clip2clinic.evaluation.results.bootstrap`.
CLASS_AUC = Statistic(_first_class_auc, _first_class_auc_weighted)


def mean_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """The mean over classes of :func:`class_aucs`, classes with an undefined AUC left out."""
    aucs = class_aucs(labels, scores)
    aucs = aucs[aucs == aucs]  # drop NaN
    return float(aucs.mean()) if aucs.size else math.nan


def _mean_of_class_means(outcomes: np.ndarray) -> float:
    counted = ~np.isnan(outcomes)
    judged = counted.any(axis=0)
    if not judged.any():
        return math.nan
    return float(np.mean(np.nansum(outcomes[:, judged], axis=0) / counted[:, judged].sum(axis=0)))


def _mean_of_class_means_weighted(weights: np.ndarray, outcomes: np.ndarray) -> np.ndarray:
    counted = ~np.isnan(outcomes)
    drawn = weights.T.astype(float)
    right = drawn @ np.where(counted, outcomes, 0.0)
    cases = drawn @ counted
    judged = cases > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(judged, right / cases, 0.0)
        return np.where(judged.any(axis=1), means.sum(axis=1) / judged.sum(axis=1), math.nan)


#: Per-case outcomes ``n x C`` (1 right, 0 wrong, NaN not judged): the mean over classes with
#: judged cases of the class's mean outcome (e.g. zero-shot accuracy).
MEAN_CLASS_ACCURACY = Statistic(_mean_of_class_means, _mean_of_class_means_weighted)


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

    def fixed_mean_weighted(w: np.ndarray, y: np.ndarray, s: np.ndarray) -> np.ndarray:
        aucs = weighted_class_aucs(w, y[:, fixed], s[:, fixed])
        return aucs.mean(axis=1) if aucs.shape[1] else np.full(len(w), math.nan)

    strata = auc_strata(labels, groups, fixed)
    estimate = bootstrap(Statistic(fixed_mean, fixed_mean_weighted), [labels, scores], n_boot,
                         seed, groups=groups, strata=strata)
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
