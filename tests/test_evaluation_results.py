import math

import numpy as np
import pytest

from clip2clinic.evaluation.results import auc_estimate, bootstrap, mean_estimate


def test_mean_interval_covers_the_true_rate_and_narrows_with_more_cases():
    rng = np.random.default_rng(1)
    small = mean_estimate(rng.random(100) < 0.7)
    large = mean_estimate(rng.random(5000) < 0.7)
    assert small.low < 0.7 < small.high and large.low < 0.7 < large.high
    assert (large.high - large.low) < (small.high - small.low) / 4
    assert small.n == 100


def test_a_perfect_score_has_a_degenerate_interval():
    estimate = mean_estimate(np.ones(50))
    assert estimate.value == estimate.low == estimate.high == 1.0


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
