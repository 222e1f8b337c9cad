import numpy as np
import pytest

from clip2clinic.evaluation.normal_detection import score_normal_detection


def unit(rng, n, d=64):
    x = rng.normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_a_perfect_embedding_finds_every_normal_report():
    rng = np.random.default_rng(0)
    image = unit(rng, 50)
    result = score_normal_detection(image, image, unit(rng, 300), k=200)
    assert result.metrics["normal_detection_acc"].value == 1.0
    assert (result.table["rank"] == 1).all() and (result.table["candidates"] == 201).all()


def test_a_flipped_embedding_finds_none():
    rng = np.random.default_rng(1)
    image = unit(rng, 50)
    result = score_normal_detection(image, -image, unit(rng, 300), k=200)
    assert result.metrics["normal_detection_acc"].value == 0.0
    assert (result.table["rank"] > 1).all()


def test_a_random_embedding_scores_about_one_in_k_plus_one():
    rng = np.random.default_rng(2)
    result = score_normal_detection(unit(rng, 600), unit(rng, 600), unit(rng, 40), k=9)
    estimate = result.metrics["normal_detection_acc"]
    # within 3 standard errors of chance (sqrt(0.1 * 0.9 / 600) = 0.012); the interval
    # alone is too narrow a check here, as all images share one haystack of 9 reports
    assert abs(estimate.value - 0.1) < 0.036 and estimate.n == 600
    assert estimate.low < estimate.value < estimate.high


def test_k_is_capped_by_the_reports_available_and_the_haystack_is_seeded():
    rng = np.random.default_rng(3)
    image = unit(rng, 1)
    near = image + 0.3 * unit(rng, 1)
    normal = near / np.linalg.norm(near)
    # half of the abnormal reports are traps that match the image better than its report
    abnormal = np.concatenate([np.repeat(image, 50, axis=0), -np.repeat(image, 50, axis=0)])
    capped = score_normal_detection(image, normal, abnormal[:60], k=2999)
    assert capped.table.loc[0, "candidates"] == 61
    outcomes = {
        score_normal_detection(image, normal, abnormal, k=1, seed=s)
        .metrics["normal_detection_acc"]
        .value
        for s in range(12)
    }
    assert outcomes == {0.0, 1.0}
    again = [
        score_normal_detection(image, normal, abnormal, k=1, seed=s).table.loc[0, "rank"]
        for s in (7, 7)
    ]
    assert again[0] == again[1]


def test_a_tie_counts_as_the_chance_of_winning_the_tie_break():
    image = np.eye(1, 8, dtype=np.float32)
    abnormal = np.concatenate([np.repeat(image, 3, axis=0), -np.eye(1, 8, dtype=np.float32)])
    result = score_normal_detection(image, image, abnormal, k=4)
    row = result.table.loc[0]
    assert row["rank"] == 1 and row["tied"] == 3 and row["correct"] == 0.25


def test_bad_inputs_are_refused():
    rng = np.random.default_rng(4)
    x = unit(rng, 4)
    with pytest.raises(ValueError, match="one per image"):
        score_normal_detection(x, x[:3], x)
    with pytest.raises(ValueError, match="no abnormal reports"):
        score_normal_detection(x, x, x[:0])
    with pytest.raises(ValueError, match="width"):
        score_normal_detection(x, x, unit(rng, 4, d=8))
