import math
import warnings

import numpy as np
import pytest
from scipy.stats import binomtest

from clip2clinic.evaluation.classwise import auc_strata, mean_auc_estimate
from clip2clinic.evaluation.results import (
    Estimate,
    auc_estimate,
    bootstrap,
    effective_size,
    headline_metrics,
    mean_estimate,
    metric_key,
    proportion_estimate,
    resamples,
    split_key,
    wilson_interval,
)


def test_mean_interval_covers_the_true_rate_and_narrows_with_more_cases():
    rng = np.random.default_rng(1)
    small = mean_estimate(rng.random(100) < 0.7)
    large = mean_estimate(rng.random(5000) < 0.7)
    assert small.low < 0.7 < small.high and large.low < 0.7 < large.high
    assert (large.high - large.low) < (small.high - small.low) / 4
    assert small.n == 100


def test_a_perfect_mean_of_scores_has_a_degenerate_bootstrap_interval():
    estimate = mean_estimate(np.ones(50))
    assert estimate.value == estimate.low == estimate.high == 1.0


def test_wilson_interval_of_32_of_32_is_not_100_100():
    estimate = proportion_estimate(np.ones(32))
    # by hand: the Wilson lower bound at p = 1 is n / (n + z^2), z = 1.959964
    assert estimate.value == 1.0 and estimate.high == 1.0
    assert estimate.low == pytest.approx(32 / (32 + 1.959964**2), abs=1e-6)  # 0.892820
    assert estimate.low == pytest.approx(0.892820, abs=1e-6)
    for n in range(1, 200):  # the bounds never round past the value
        every = proportion_estimate(np.ones(n))
        assert every.low <= every.value <= every.high
    none = proportion_estimate(np.zeros(32))
    assert none.low == 0.0 and none.high == pytest.approx(1 - 0.892820, abs=1e-6)


@pytest.mark.parametrize(("k", "n"), [(0, 10), (3, 10), (17, 40), (32, 32), (500, 1000)])
def test_wilson_interval_matches_scipy(k, n):
    expected = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert wilson_interval(k / n, n) == pytest.approx((expected.low, expected.high), abs=1e-9)
    estimate = proportion_estimate(np.r_[np.ones(k), np.zeros(n - k)])
    assert (estimate.low, estimate.high, estimate.n) == pytest.approx(
        (expected.low, expected.high, n), abs=1e-9)


def test_cases_duplicated_within_patients_count_once():
    rng = np.random.default_rng(4)
    outcomes = (rng.random(60) < 0.7).astype(float)
    patients = np.repeat(np.arange(60), 4)
    assert effective_size(np.repeat(outcomes, 4), patients) == pytest.approx(60)
    alone = proportion_estimate(outcomes)
    duplicated = proportion_estimate(np.repeat(outcomes, 4), patients)
    naive = proportion_estimate(np.repeat(outcomes, 4))
    assert (duplicated.low, duplicated.high) == pytest.approx((alone.low, alone.high))
    assert duplicated.n == 240 and naive.high - naive.low < 0.6 * (alone.high - alone.low)
    # every outcome the same: each patient counts once
    assert effective_size(np.ones(8), np.array([1, 1, 1, 1, 2, 2, 3, 3])) == 3
    # patients of one case each: the independent-cases interval
    assert effective_size(outcomes, np.arange(60)) == pytest.approx(60)


def test_cluster_bootstrap_is_wider_than_the_per_row_one_on_duplicated_rows():
    rng = np.random.default_rng(5)
    values = rng.random(80)
    rows, patients = np.repeat(values, 5), np.repeat(np.arange(80), 5)
    per_row = mean_estimate(rows)
    cluster = mean_estimate(rows, groups=patients)
    alone = mean_estimate(values)
    assert cluster.value == per_row.value == pytest.approx(values.mean())
    assert (cluster.high - cluster.low) > 1.8 * (per_row.high - per_row.low)
    assert (cluster.high - cluster.low) == pytest.approx(alone.high - alone.low, rel=0.15)


def test_patient_resamples_keep_patients_whole_and_strata_sizes():
    patients = np.array([7, 7, 3, 9, 9, 9, 1])
    strata = np.array([0, 0, 1, 0, 0, 0, 1])
    for idx in resamples(len(patients), 20, seed=1, groups=patients, strata=strata):
        drawn = patients[idx]
        for p in np.unique(drawn):  # a drawn patient brings every row, as often as drawn
            assert np.sum(drawn == p) % np.sum(patients == p) == 0
        units = [np.sum(drawn == p) // np.sum(patients == p) for p in (7, 3, 9, 1)]
        assert units[0] + units[2] == 2 and units[1] + units[3] == 2  # two patients a stratum
    with pytest.raises(ValueError, match="different strata"):
        next(resamples(3, 1, 0, groups=np.array([1, 1, 2]), strata=np.array([0, 1, 0])))


def test_mean_auc_interval_keeps_a_fixed_class_set():
    rng = np.random.default_rng(6)
    n = 200
    labels = np.zeros((n, 2))
    labels[rng.choice(n, 100, replace=False), 0] = 1  # a common class, AUC 0.5 here
    labels[:2, 1] = 1  # a rare class with 2 positives, perfectly scored
    scores = np.column_stack([rng.random(n), labels[:, 1] + 0.0])
    strata = auc_strata(labels)
    assert list(strata[:2]) == [1, 1] and np.sum(strata == 1) == 2  # the rare positives
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        estimate = mean_auc_estimate(labels, scores, seed=0, n_boot=300)
    assert estimate.value == pytest.approx((0.5 + 1.0) / 2, abs=0.06)
    # every resample averages both classes, so the interval stays near 0.75, never reaching
    # the common class alone (0.5), which dropping the rare class would average
    assert estimate.low > 0.68 and estimate.high < 0.82


def test_mean_auc_without_a_defined_class_is_nan():
    estimate = mean_auc_estimate(np.zeros((5, 2)), np.random.default_rng(0).random((5, 2)))
    assert math.isnan(estimate.value) and math.isnan(estimate.low) and estimate.n == 5


def test_auc_strata_put_a_class_positives_in_its_own_stratum():
    labels = np.array([[1, 0], [0, 1], [0, 0], [1, 0], [0, 0], [1, np.nan]])
    strata = auc_strata(labels)
    assert strata[1] != strata[0]  # the only positive of class 1 has a stratum of its own
    assert np.sum(strata == strata[1]) == 1
    by_patient = auc_strata(labels, groups=np.array([0, 0, 1, 1, 2, 2]))
    assert by_patient[0] == by_patient[1] and by_patient[2] == by_patient[3]


def test_metric_keys_and_headline_aggregates():
    assert metric_key("cxr_align_a", "MIMIC-CXR") == "cxr_align_a/mimic_cxr"
    assert split_key("zeroshot_mean_auc/rsna_ab") == ("zeroshot_mean_auc", "rsna_ab")
    assert split_key("cxr_align_a") == ("cxr_align_a", None)
    one = Estimate(0.8, 0.7, 0.9, 30)
    keyed = {
        "zeroshot_mean_auc/rsna": Estimate(0.8, 0.75, 0.85, 100),
        "zeroshot_mean_auc/siim": Estimate(0.6, 0.55, 0.65, 50),
        "zeroshot_mean_auc/vindr": Estimate(math.nan, math.nan, math.nan, 0),
        "cxr_align_a/mimic": one,
    }
    headline = headline_metrics(keyed)
    assert set(headline) == {"zeroshot_mean_auc", "cxr_align_a"}
    assert headline["cxr_align_a"] == one  # one dataset: its own estimate, interval included
    combined = headline["zeroshot_mean_auc"]
    assert combined.value == pytest.approx(0.7) and combined.n == 150
    # two independent intervals of half-width 0.05: the mean's is 0.05 / sqrt(2)
    assert combined.high - combined.value == pytest.approx(0.05 / math.sqrt(2), rel=1e-3)


def test_auc_perfect_random_and_flipped():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    assert auc_estimate(y, y + 0.0).value == 1.0
    assert auc_estimate(y, -y + 0.0).value == 0.0
    chance = auc_estimate(y, rng.random(400))
    assert chance.low < 0.5 < chance.high


def test_auc_with_one_class_is_nan_with_a_warning():
    with pytest.warns(UserWarning, match="Effusion.*only one class"):
        estimate = auc_estimate(np.zeros(10), np.arange(10.0), name="Effusion")
    assert math.isnan(estimate.value) and math.isnan(estimate.low)


def test_bootstrap_is_seeded_and_checks_lengths():
    x = np.random.default_rng(2).random(60)
    assert bootstrap(np.mean, [x], seed=3) == bootstrap(np.mean, [x], seed=3)
    with pytest.raises(ValueError, match="differ in length"):
        bootstrap(lambda a, b: 0.0, [x, x[:10]])
