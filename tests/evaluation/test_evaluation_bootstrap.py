"""The vectorised bootstrap: resample multiplicities and the weighted AUC forms give the same
numbers as a plain loop over the same resamples (same seeds, same indices), with patients
(cluster bootstrap), strata (the fixed class set), ties, unknown labels and NaN score sets."""

from __future__ import annotations

import math

import numpy as np
import pytest

from clip2clinic.evaluation.classwise import (
    CLASS_AUC,
    MEAN_CLASS_ACCURACY,
    auc_strata,
    class_aucs,
    mean_auc_estimate,
    rank_auc,
    weighted_class_aucs,
    weighted_rank_auc,
)
from clip2clinic.evaluation.results import bootstrap, resample_weights, resamples


def cohort(n: int = 300, classes: int = 4, seed: int = 0):
    """Labels with unknown (NaN) and uncertain (-1) cells, a rare class, tied scores (rounded
    to one decimal) and two or three images per patient."""
    rng = np.random.default_rng(seed)
    labels = (rng.random((n, classes)) < 0.3).astype(float)
    labels[:, -1] = 0.0
    labels[rng.choice(n, 4, replace=False), -1] = 1.0  # rare: 4 positives
    labels[rng.random((n, classes)) < 0.1] = np.nan
    labels[rng.random((n, classes)) < 0.05] = -1.0
    scores = np.round(rng.random((n, classes)) + 0.4 * np.nan_to_num(labels), 1)
    patients = np.sort(rng.integers(0, n // 2.5, n))
    return labels, scores, patients


@pytest.mark.parametrize("kind", ["rows", "patients", "strata"])
def test_weights_count_the_rows_of_the_same_resamples(kind):
    labels, _, patients = cohort()
    groups = None if kind == "rows" else patients
    strata = auc_strata(labels, groups) if kind == "strata" else None
    n = len(labels)
    expected = [np.bincount(idx, minlength=n) for idx in resamples(n, 37, 5, groups, strata)]
    blocks = list(resample_weights(n, 37, 5, groups, strata, chunk=10))
    assert [b.shape for b in blocks] == [(n, 10)] * 3 + [(n, 7)]
    np.testing.assert_array_equal(np.hstack(blocks).T, expected)


def test_weighted_auc_equals_the_rank_auc_of_the_resampled_rows_exactly():
    labels, scores, patients = cohort()
    y, s = labels[:, 0] == 1, scores[:, 0]
    indices = list(resamples(len(y), 50, 1, patients))
    weights = np.array([np.bincount(i, minlength=len(y)) for i in indices]).T
    loop = [rank_auc(y[i], s[i]) for i in indices]
    assert len(np.unique(s)) < 20  # many ties
    np.testing.assert_array_equal(weighted_rank_auc(y, s, weights), loop)
    flipped = [rank_auc(~y[i], s[i]) for i in indices]  # positives the majority
    np.testing.assert_array_equal(weighted_rank_auc(~y, s, weights), flipped)
    one_class = np.zeros((len(y), 1), dtype=np.int32)
    one_class[np.flatnonzero(~y)[:5]] = 2
    assert math.isnan(weighted_rank_auc(y, s, one_class)[0])


def test_weighted_class_aucs_drop_the_same_score_sets_as_the_loop():
    labels, scores, patients = cohort(classes=3)
    sets = np.stack([scores, scores[::-1], np.round(scores * 0.7, 1)], axis=2)
    sets[:, 1, 2] = np.nan  # a score set skipped for one class (e.g. a probe seed)
    sets[7, 0, 1] = np.nan  # one case unscored in one set: dropped where that case is drawn
    indices = list(resamples(len(labels), 40, 2, patients))
    weights = np.array([np.bincount(i, minlength=len(labels)) for i in indices]).T
    loop = np.array([class_aucs(labels[i], sets[i]) for i in indices])
    np.testing.assert_allclose(weighted_class_aucs(weights, labels, sets), loop, rtol=0,
                               atol=1e-15)


@pytest.mark.parametrize("grouped", [False, True])
def test_vectorised_intervals_equal_the_loop_on_the_same_seed(grouped):
    labels, scores, patients = cohort(seed=3)
    groups = patients if grouped else None
    for c in range(labels.shape[1]):
        usable = np.isin(labels[:, c], (0, 1))
        arrays = [labels[usable, c:c + 1], scores[usable, c:c + 1]]
        mine = (patients if grouped else np.arange(len(labels)))[usable]
        strata = auc_strata(labels[usable, c], mine)
        fast = bootstrap(CLASS_AUC, arrays, 200, 4, groups=mine, strata=strata)
        loop = bootstrap(CLASS_AUC.plain, arrays, 200, 4, groups=mine, strata=strata)
        assert fast == loop
    correct = np.where(np.isin(labels, (0, 1)), (scores > 0.5) == (labels == 1), np.nan)
    fast = bootstrap(MEAN_CLASS_ACCURACY, [correct], 200, 4, groups=groups)
    loop = bootstrap(MEAN_CLASS_ACCURACY.plain, [correct], 200, 4, groups=groups)
    assert fast.value == loop.value
    assert (fast.low, fast.high) == pytest.approx((loop.low, loop.high), rel=1e-12)


def test_mean_auc_keeps_its_fixed_class_set_and_matches_a_reference_loop():
    labels, scores, patients = cohort(seed=4)
    labels[:, 1] = 0.0  # no positives: outside the fixed set
    fast = mean_auc_estimate(labels, scores, seed=9, n_boot=300, groups=patients)

    fixed = ~np.isnan(class_aucs(labels, scores))  # the reference: a loop, written out
    strata = auc_strata(labels, patients, fixed)
    draws = []
    for idx in resamples(len(labels), 300, 9, patients, strata):
        aucs = class_aucs(labels[idx][:, fixed], scores[idx][:, fixed])
        draws.append(math.nan if np.isnan(aucs).any() else aucs.mean())
    draws = np.array(draws)
    low, high = np.percentile(draws[~np.isnan(draws)], [2.5, 97.5])
    assert list(fixed) == [True, False, True, True]
    assert fast.value == pytest.approx(np.nanmean(class_aucs(labels, scores)), rel=1e-15)
    assert (fast.low, fast.high) == pytest.approx((low, high), rel=1e-12)
