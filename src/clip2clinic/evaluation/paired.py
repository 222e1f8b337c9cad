"""Paired statistics for comparing two runs on the same cases.

- :func:`mcnemar`: McNemar's exact test of two paired accuracies (a two-sided binomial test on
  the discordant pairs, ``scipy.stats.binomtest``);
- :func:`delong_covariance` / :func:`delong_test`: DeLong, DeLong & Clarke-Pearson (1988)
  for correlated AUCs, computed with midranks as Sun & Xu (2014) show;
  :func:`delong_mean_test` extends it to a mean of per-class AUCs over shared images;
- :func:`paired_difference`: the difference of a statistic between runs with a percentile
  bootstrap interval that resamples patients (the same resample for both runs);
- :func:`holm`: Holm's step-down adjustment of a family of p-values;
- :func:`seed_interval`: a mean difference across seeds with its t interval.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest, norm, rankdata
from scipy.stats import t as student_t

from clip2clinic.evaluation.results import N_BOOTSTRAP, Estimate, bootstrap


@dataclass(frozen=True)
class McNemar:
    """Discordant pairs (``better``: the run right, the baseline wrong; ``worse``: the
    reverse) and the exact two-sided p-value."""

    better: int
    worse: int
    p: float


def mcnemar(baseline: np.ndarray, run: np.ndarray) -> McNemar:
    """McNemar's exact test of paired 0/1 outcomes: under equal accuracies each discordant pair
    is the run's with probability 1/2. No discordant pair gives p = 1."""
    base, other = np.asarray(baseline, dtype=bool), np.asarray(run, dtype=bool)
    better, worse = int((other & ~base).sum()), int((base & ~other).sum())
    p = binomtest(better, better + worse, 0.5).pvalue if better + worse else 1.0
    return McNemar(better, worse, float(p))


def _midranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks of each column, ties given their mean rank."""
    return rankdata(x, method="average", axis=0)


def delong_components(labels: np.ndarray, scores: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """The AUCs of the ``scores`` columns (n x k) for 0/1 ``labels`` and DeLong's structural
    components: V10 (m positives x k), the share of negatives each positive outranks (ties
    half), and V01 (n negatives x k), the share of positives outranking each negative.

    Midrank form (Sun & Xu 2014): with T_Z the midranks among all cases and T_X, T_Y those
    among positives and among negatives, V10 = (T_Z - T_X) / n and V01 = 1 - (T_Z - T_Y) / m."""
    y = np.asarray(labels).astype(bool)
    s = np.asarray(scores, dtype=float).reshape(len(y), -1)
    positives, negatives = s[y], s[~y]
    m, n = len(positives), len(negatives)
    if m == 0 or n == 0:
        raise ValueError("DeLong: needs positives and negatives")
    t_z = _midranks(np.vstack([positives, negatives]))
    v10 = (t_z[:m] - _midranks(positives)) / n
    v01 = 1.0 - (t_z[m:] - _midranks(negatives)) / m
    return v10.mean(axis=0), v10, v01


def delong_covariance(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The AUCs of the ``scores`` columns and DeLong's estimate of their covariance (k x k):
    S10 / m + S01 / n, S10 and S01 the sample covariances of the structural components
    (NaN with fewer than two positives or negatives)."""
    aucs, v10, v01 = delong_components(labels, scores)
    m, n = len(v10), len(v01)
    k = v10.shape[1]
    if m < 2 or n < 2:
        return aucs, np.full((k, k), math.nan)
    s10 = np.atleast_2d(np.cov(v10, rowvar=False))
    s01 = np.atleast_2d(np.cov(v01, rowvar=False))
    return aucs, s10 / m + s01 / n


@dataclass(frozen=True)
class DeLong:
    """Two paired AUCs, their difference (run - baseline), its standard error and the
    two-sided p-value of z = difference / se."""

    baseline: float
    run: float
    difference: float
    se: float
    p: float


def _z_test(baseline: float, run: float, variance: float) -> DeLong:
    difference = run - baseline
    se = math.sqrt(max(variance, 0.0)) if not math.isnan(variance) else math.nan
    if math.isnan(se):
        p = math.nan
    elif se == 0:
        p = 1.0 if difference == 0 else 0.0
    else:
        p = float(2 * norm.sf(abs(difference) / se))
    return DeLong(float(baseline), float(run), float(difference), se, p)


def delong_test(labels: np.ndarray, baseline: np.ndarray, run: np.ndarray) -> DeLong:
    """DeLong's test of two AUCs on the same cases: var(difference) = c S c' with c = (-1, 1)."""
    aucs, cov = delong_covariance(labels, np.column_stack([baseline, run]))
    return _z_test(aucs[0], aucs[1], float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]))


def delong_mean_test(labels: np.ndarray, baseline: np.ndarray, run: np.ndarray) -> DeLong:
    """DeLong's test of the difference of mean AUCs over classes (columns of ``labels``:
    1, 0, NaN = left out; every column needs positives and negatives) on shared images.

    Each class's difference d_c has, per image, the DeLong term of its structural component:
    (V10_run - V10_base - d_c) / sqrt(m (m - 1)) for a positive, likewise with V01 and n for a
    negative, so that their sum of squares is DeLong's variance of d_c. The mean's variance
    is the sum over images of the squared mean over classes of these terms: the classes'
    covariances come from the images they share. With one class it is :func:`delong_test`."""
    labels = np.asarray(labels, dtype=float).reshape(len(labels), -1)
    base = np.asarray(baseline, dtype=float).reshape(labels.shape)
    other = np.asarray(run, dtype=float).reshape(labels.shape)
    terms = np.zeros(labels.shape)
    aucs = np.zeros((labels.shape[1], 2))
    variance_defined = True  # a class with fewer than 2 positives or negatives has none
    for c in range(labels.shape[1]):
        rows = np.flatnonzero((labels[:, c] == 0) | (labels[:, c] == 1))
        y = labels[rows, c] == 1
        aucs[c], v10, v01 = delong_components(y, np.column_stack([base[rows, c],
                                                                   other[rows, c]]))
        m, n = len(v10), len(v01)
        if m < 2 or n < 2:
            variance_defined = False
            continue
        d = aucs[c, 1] - aucs[c, 0]
        terms[rows[y], c] = (v10[:, 1] - v10[:, 0] - d) / math.sqrt(m * (m - 1))
        terms[rows[~y], c] = (v01[:, 1] - v01[:, 0] - d) / math.sqrt(n * (n - 1))
    variance = float((terms.mean(axis=1) ** 2).sum()) if variance_defined else math.nan
    return _z_test(aucs[:, 0].mean(), aucs[:, 1].mean(), variance)


def paired_difference(
    statistic: Callable[..., float],
    baseline: Sequence[np.ndarray],
    run: Sequence[np.ndarray],
    groups: np.ndarray | None = None,
    strata: np.ndarray | None = None,
    n_boot: int = N_BOOTSTRAP,
    seed: int = 0,
) -> Estimate:
    """``statistic(*run) - statistic(*baseline)`` with a percentile bootstrap interval: every
    resample draws patients (``groups``; rows when None), each with all its rows, within
    ``strata`` where given, and scores both runs on the same rows."""
    k = len(baseline)

    def difference(*arrays: np.ndarray) -> float:
        return statistic(*arrays[k:]) - statistic(*arrays[:k])

    return bootstrap(difference, [*baseline, *run], n_boot, seed, groups=groups, strata=strata)


def holm(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (NaN stays NaN and is not counted in the family):
    the i-th smallest of m becomes max over j <= i of min(1, (m - j + 1) p_(j))."""
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full(p.shape, math.nan)
    present = np.flatnonzero(~np.isnan(p))
    order = present[np.argsort(p[present], kind="stable")]
    m = len(order)
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted[order] = np.maximum.accumulate(scaled)
    return adjusted


@dataclass(frozen=True)
class SeedInterval:
    """The mean over seeds of per-seed differences, its t interval and one-sample t-test p."""

    difference: float
    low: float
    high: float
    p: float
    seeds: int


def seed_interval(differences: Sequence[float] | np.ndarray, level: float = 0.95) -> SeedInterval:
    """Mean of the per-seed differences ± t(k - 1) · sd / sqrt(k), and the two-sided p of the
    one-sample t-test of zero mean (NaN interval and p with one seed)."""
    d = np.asarray(differences, dtype=float)
    d = d[~np.isnan(d)]
    k = len(d)
    if k == 0:
        return SeedInterval(math.nan, math.nan, math.nan, math.nan, 0)
    mean = float(d.mean())
    if k == 1:
        return SeedInterval(mean, math.nan, math.nan, math.nan, 1)
    se = float(d.std(ddof=1)) / math.sqrt(k)
    half = float(student_t.ppf(1 - (1 - level) / 2, k - 1)) * se
    if se == 0:
        p = 1.0 if mean == 0 else 0.0
    else:
        p = float(2 * student_t.sf(abs(mean) / se, k - 1))
    return SeedInterval(mean, mean - half, mean + half, p, k)
