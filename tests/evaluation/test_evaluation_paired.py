"""Paired statistics on planted known answers: McNemar, DeLong (vs brute force), Holm, the
patient-paired bootstrap and the t interval across seeds."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import ttest_1samp

from clip2clinic.evaluation.classwise import rank_auc
from clip2clinic.evaluation.paired import (
    delong_covariance,
    delong_mean_test,
    delong_test,
    holm,
    mcnemar,
    paired_difference,
    seed_interval,
)


def test_mcnemar_identical_runs_give_p_one():
    outcomes = np.array([1, 0, 1, 1, 0, 1])
    test = mcnemar(outcomes, outcomes)
    assert (test.better, test.worse, test.p) == (0, 0, 1.0)


def test_mcnemar_run_right_on_every_discordant_case():
    base = np.array([0] * 10 + [1] * 20 + [0] * 5)
    run = np.array([1] * 10 + [1] * 20 + [0] * 5)  # 10 discordant, all the run's
    test = mcnemar(base, run)
    assert (test.better, test.worse) == (10, 0)
    assert test.p == pytest.approx(2 * 0.5**10)  # two-sided exact: 2 / 1024
    # 7 against 2: 2 * P(X <= 2), X ~ Bin(9, 1/2) = 2 * (1 + 9 + 36) / 512
    base = np.array([0] * 7 + [1] * 2 + [1] * 4)
    run = np.array([1] * 7 + [0] * 2 + [1] * 4)
    assert mcnemar(base, run).p == pytest.approx(92 / 512)


def brute_force_delong(labels, scores):
    """DeLong's U-statistic covariance from the kernel psi(x, y) itself, by loops."""
    labels = np.asarray(labels, dtype=bool)
    x, y = scores[labels], scores[~labels]
    m, n, k = len(x), len(y), scores.shape[1]

    def psi(a, b):
        return 1.0 if a > b else 0.5 if a == b else 0.0

    v10 = np.array([[sum(psi(x[i, r], y[j, r]) for j in range(n)) / n for r in range(k)]
                    for i in range(m)])  # fmt: skip
    v01 = np.array([[sum(psi(x[i, r], y[j, r]) for i in range(m)) / m for r in range(k)]
                    for j in range(n)])  # fmt: skip
    theta = np.array([sum(psi(x[i, r], y[j, r]) for i in range(m) for j in range(n)) / (m * n)
                      for r in range(k)])  # fmt: skip
    s10 = np.zeros((k, k))
    s01 = np.zeros((k, k))
    for r in range(k):
        for s in range(k):
            s10[r, s] = sum((v10[i, r] - theta[r]) * (v10[i, s] - theta[s])
                            for i in range(m)) / (m - 1)  # fmt: skip
            s01[r, s] = sum((v01[j, r] - theta[r]) * (v01[j, s] - theta[s])
                            for j in range(n)) / (n - 1)  # fmt: skip
    return theta, s10 / m + s01 / n


def test_delong_matches_the_brute_force_u_statistic_covariance():
    rng = np.random.default_rng(3)
    labels = rng.random(23) < 0.4
    scores = np.column_stack([
        labels + rng.normal(0, 1.0, 23),
        np.round(labels * 0.5 + rng.normal(0, 1.0, 23), 1),  # ties within and across labels
        np.round(rng.normal(0, 1.0, 23)),
    ])  # fmt: skip
    aucs, cov = delong_covariance(labels, scores)
    theta, expected = brute_force_delong(labels, scores)
    np.testing.assert_allclose(aucs, theta, atol=1e-12)
    np.testing.assert_allclose(cov, expected, atol=1e-12)
    np.testing.assert_allclose(aucs, [rank_auc(labels, scores[:, r]) for r in range(3)])
    test = delong_test(labels, scores[:, 0], scores[:, 1])
    variance = expected[0, 0] + expected[1, 1] - 2 * expected[0, 1]
    assert test.se == pytest.approx(math.sqrt(variance))
    assert test.difference == pytest.approx(theta[1] - theta[0])


def test_delong_identical_runs_give_difference_zero_and_p_one():
    rng = np.random.default_rng(0)
    labels = rng.random(40) < 0.5
    scores = rng.normal(size=40)
    test = delong_test(labels, scores, scores)
    assert test.difference == 0 and test.p == 1.0


def test_delong_mean_over_classes():
    rng = np.random.default_rng(1)
    labels = (rng.random((50, 1)) < 0.4).astype(float)
    base, run = rng.normal(size=(50, 1)) + labels, rng.normal(size=(50, 1)) + 2 * labels
    one = delong_test(labels[:, 0] == 1, base[:, 0], run[:, 0])
    mean = delong_mean_test(labels, base, run)
    assert mean.se == pytest.approx(one.se) and mean.p == pytest.approx(one.p)
    # the same class twice: the same mean and the same variance (fully correlated)
    twice = delong_mean_test(np.hstack([labels] * 2), np.hstack([base] * 2), np.hstack([run] * 2))
    assert twice.difference == pytest.approx(one.difference) and twice.se == pytest.approx(one.se)
    # a left-out label (NaN) drops that image from that class only
    partial = labels.copy()
    partial[:5] = math.nan
    kept = ~np.isnan(partial[:, 0])
    assert delong_mean_test(partial, base, run).se == pytest.approx(
        delong_test(labels[kept, 0] == 1, base[kept, 0], run[kept, 0]).se)


def test_delong_mean_keeps_every_class_auc_when_one_has_a_single_positive():
    rng = np.random.default_rng(2)
    labels = (rng.random((40, 2)) < 0.5).astype(float)
    labels[:, 0] = 0.0
    labels[0, 0] = 1.0  # one positive: its AUC exists, its DeLong variance does not
    base, run = rng.normal(size=(40, 2)) + labels, rng.normal(size=(40, 2)) + 2 * labels
    mean = delong_mean_test(labels, base, run)
    expected = np.mean([rank_auc(labels[:, c] == 1, run[:, c]) for c in range(2)])
    assert mean.run == pytest.approx(expected)  # not a partial mean over the first classes
    assert math.isnan(mean.p)


def test_holm_against_a_hand_computation():
    # sorted 0.005, 0.01, 0.03, 0.04 -> 4x, 3x, 2x, 1x = 0.02, 0.03, 0.06, 0.04 -> running max
    adjusted = holm([0.01, 0.04, 0.03, 0.005, math.nan])
    np.testing.assert_allclose(adjusted[:4], [0.03, 0.06, 0.06, 0.02])
    assert math.isnan(adjusted[4])
    assert holm([0.9, 0.8])[0] == 1.0  # capped at 1


def test_seed_t_interval_against_a_hand_computation():
    d = [0.02, 0.05, 0.03]
    interval = seed_interval(d)
    mean = 0.1 / 3
    sd = math.sqrt(((0.02 - mean) ** 2 + (0.05 - mean) ** 2 + (0.03 - mean) ** 2) / 2)
    half = 4.302652729911275 * sd / math.sqrt(3)  # t(2) 97.5% quantile, from tables
    assert interval.difference == pytest.approx(mean)
    assert (interval.low, interval.high) == (pytest.approx(mean - half), pytest.approx(mean + half))
    assert interval.p == pytest.approx(ttest_1samp(d, 0).pvalue)
    assert interval.seeds == 3
    one = seed_interval([0.04])
    assert one.difference == 0.04 and math.isnan(one.low) and math.isnan(one.p)


def test_the_paired_bootstrap_keeps_patients_whole_and_pairs_the_runs():
    rng = np.random.default_rng(2)
    patient = np.repeat(np.arange(12), rng.integers(1, 4, 12))
    sizes = np.bincount(patient)
    base = rng.random(len(patient)) < 0.5
    run = rng.random(len(patient)) < 0.7
    drawn = []

    def statistic(outcomes, ids):
        counts = np.bincount(ids, minlength=12)
        assert (counts % sizes == 0).all()  # every drawn patient comes with all its rows
        drawn.append(ids)
        return float(np.mean(outcomes))

    estimate = paired_difference(statistic, [base, patient], [run, patient], patient, n_boot=50)
    assert estimate.value == pytest.approx(run.mean() - base.mean())
    assert estimate.low <= estimate.value <= estimate.high
    # each resample scores both runs on the same rows: baseline and run draws alternate
    assert len(drawn) == 2 * 51 and all(np.array_equal(a, b) for a, b in
                                        zip(drawn[2::2], drawn[3::2], strict=True))  # fmt: skip
    same = paired_difference(lambda x: float(np.mean(x)), [base], [base], patient, n_boot=50)
    assert (same.value, same.low, same.high) == (0.0, 0.0, 0.0)
