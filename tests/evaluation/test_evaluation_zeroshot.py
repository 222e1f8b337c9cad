import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from clip2clinic.evaluation.classwise import blank_as_negative, mean_auc, rank_auc
from clip2clinic.evaluation.zeroshot import (
    default_templates,
    embed_prompt_sets,
    five_by_200_prompts,
    rsna_ab_labels,
    zero_shot_5x200,
    zero_shot_binary,
)

DIM = 32
FAST = 200  # bootstrap resamples where the interval is not what a test checks


def unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=-1, keepdims=True)


def axis(i: int) -> np.ndarray:
    return np.eye(DIM)[i]


class FakeTexts:
    """embed_texts stand-in: each known prompt maps to a chosen direction plus a little noise of
    its own, so an ensemble mean differs from any single prompt; unknown prompts fail loudly."""

    def __init__(self, directions: dict[str, np.ndarray], noise: float = 0.1):
        rng = np.random.default_rng(7)
        self.table = {t: unit(v + noise * rng.normal(size=DIM)) for t, v in directions.items()}
        self.calls = 0

    def __call__(self, texts):
        self.calls += 1
        return np.stack([self.table[t] for t in texts])


def binary_texts(class_names) -> FakeTexts:
    """Class c: its positive prompts point along axis 2c, its negative ones along 2c + 1."""
    directions = {}
    for c, name in enumerate(class_names):
        positive, negative = default_templates().prompts(name)
        directions |= {p: axis(2 * c) for p in positive} | {p: axis(2 * c + 1) for p in negative}
    return FakeTexts(directions)


def images_for(labels: np.ndarray, flip: bool = False) -> np.ndarray:
    """Each image mixes, per class, the positive direction when labelled 1, else the negative."""
    is_pos = (labels == 1) != flip
    rows = np.zeros((len(labels), DIM))
    for c in range(labels.shape[1]):
        rows += np.where(is_pos[:, [c]], axis(2 * c), axis(2 * c + 1))
    return unit(rows)


CLASSES = ["Effusion", "Pneumothorax", "Nodule"]


def make_labels(n: int = 300, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 2, size=(n, len(CLASSES))).astype(float)


def test_perfect_embedding_scores_one_flipped_zero_random_chance():
    labels = make_labels()
    texts = binary_texts(CLASSES)
    perfect = zero_shot_binary(images_for(labels), labels, CLASSES, texts, "cxr14", n_boot=FAST)
    flipped = zero_shot_binary(
        images_for(labels, flip=True), labels, CLASSES, texts, "cxr14", n_boot=FAST
    )
    noise = unit(np.random.default_rng(3).normal(size=(len(labels), DIM)))
    chance = zero_shot_binary(noise, labels, CLASSES, texts, "cxr14")

    assert perfect.metrics["zeroshot_mean_auc"].value == 1.0
    assert perfect.metrics["zeroshot_mean_acc"].value == 1.0
    assert list(perfect.table["auc"]) == [1.0, 1.0, 1.0]
    assert flipped.metrics["zeroshot_mean_auc"].value == 0.0
    assert flipped.metrics["zeroshot_mean_acc"].value == 0.0
    estimate = chance.metrics["zeroshot_mean_auc"]
    assert estimate.low < 0.5 < estimate.high and estimate.high - estimate.low < 0.2
    assert estimate.n == len(labels)
    assert texts.calls == 3  # one embedding call per evaluation, all prompts at once


def test_unknown_and_uncertain_labels_are_left_out_per_class_and_counted():
    labels = make_labels()
    images = images_for(labels)
    # rows 0-39 of the first class: the embedding says the opposite, but the label is unknown
    images[:40] = images_for(labels[:40], flip=True)
    labels[:20, 0], labels[20:40, 0] = np.nan, -1
    labels[:40, 1:] = np.nan
    result = zero_shot_binary(images, labels, CLASSES, binary_texts(CLASSES), "mimic", n_boot=FAST)
    assert result.metrics["zeroshot_mean_auc"].value == 1.0
    assert list(result.table["n_excluded"]) == [40, 40, 40]
    assert list(result.table["n"]) == [260, 260, 260]


def test_a_class_without_positives_is_nan_with_a_warning_and_the_rest_still_count():
    labels = make_labels()
    labels[:, 2] = 0
    with pytest.warns(UserWarning, match="Nodule is undefined: no positives"):
        result = zero_shot_binary(
            images_for(labels), labels, CLASSES, binary_texts(CLASSES), "vindr", n_boot=FAST
        )
    row = result.table.set_index("class").loc["Nodule"]
    assert math.isnan(row["auc"]) and row["status"] == "no positives"
    assert result.metrics["zeroshot_mean_auc"].value == 1.0


def test_single_class_dataset_takes_a_label_vector():
    labels = np.random.default_rng(4).integers(0, 2, 200).astype(float)
    texts = binary_texts(["Pneumothorax"])
    result = zero_shot_binary(
        images_for(labels[:, None]), labels, ["Pneumothorax"], texts, "SIIM", n_boot=FAST
    )
    assert result.metrics["zeroshot_mean_auc"].value == 1.0
    assert result.table["n_positive"].iloc[0] == labels.sum()


def test_class_wording_special_cases_and_classes_without_prompts():
    templates = default_templates()
    positive, negative = templates.prompts("Effusion")
    assert positive[0] == "Pleural effusion" and negative[0] == "No pleural effusion"
    assert all("pleural effusion" in p.lower() for p in positive + negative)
    assert "Pleural thickening" in templates.prompts("Pleural_Thickening")[0]
    assert "interstitial lung disease" in templates.prompts("ILD")[0][1]
    no_finding = templates.prompts("No finding")
    assert not any("no no" in p.lower() for p in no_finding[0] + no_finding[1])
    assert templates.prompts("Other lesion") is None

    names = ["Pneumothorax", "Other lesion"]
    labels = make_labels()[:, :2]
    with pytest.warns(UserWarning, match="no zero-shot prompt"):
        result = zero_shot_binary(
            images_for(labels), labels, names, binary_texts(names[:1]), "v", n_boot=FAST
        )
    assert list(result.table["status"]) == ["ok", "no prompt"]
    assert result.metrics["zeroshot_mean_auc"].value == 1.0
    assert result.metrics["zeroshot_mean_acc"].value == 1.0


def test_non_finite_image_embeddings_are_left_out_with_a_warning():
    labels = make_labels()
    images = images_for(labels)
    images[5] = np.nan
    with pytest.warns(UserWarning, match="1 of 300 image embeddings are not finite"):
        result = zero_shot_binary(
            images, labels, CLASSES, binary_texts(CLASSES), "rsna", n_boot=FAST
        )
    assert list(result.table["n"]) == [299, 299, 299]


def test_ensemble_is_the_renormalised_mean_of_its_prompts():
    texts = FakeTexts({"a": axis(0), "b": axis(1)}, noise=0.0)
    ensemble = embed_prompt_sets([["a", "b"], ["a"]], texts)
    np.testing.assert_allclose(ensemble[0], unit(axis(0) + axis(1)))
    np.testing.assert_allclose(ensemble[1], axis(0))


def test_rank_auc_equals_scikit_learn_with_ties_and_excluded_labels():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 500)
    scores = rng.integers(0, 10, 500).astype(float)  # many ties
    assert rank_auc(y, scores) == pytest.approx(roc_auc_score(y, scores))
    labels = np.where(rng.random(500) < 0.2, np.nan, y)[:, None]
    rows = ~np.isnan(labels[:, 0])
    assert mean_auc(labels, scores[:, None]) == pytest.approx(roc_auc_score(y[rows], scores[rows]))
    np.testing.assert_array_equal(blank_as_negative(np.array([np.nan, -1, 1])), [0, -1, 1])


def test_rsna_ab_labels():
    labels = rsna_ab_labels(["Lung Opacity", "No Lung Opacity / Not Normal", "Normal"])
    assert labels[:2].tolist() == [1.0, 0.0] and math.isnan(labels[2])
    with pytest.raises(ValueError, match="unknown RSNA detailed class 'Abnormal'"):
        rsna_ab_labels(["Abnormal"])


def test_5x200_prompts_are_every_combination_once():
    prompts = five_by_200_prompts()
    assert {k: len(v) for k, v in prompts.items()} == {
        "Atelectasis": 3 * 7 * 10,
        "Cardiomegaly": 15,
        "Consolidation": 4 * 6 * 8,
        "Edema": 6 * 3,
        "Pleural Effusion": 6 * 3 * 2,
    }
    assert "mild linear atelectasis at the lung bases" in prompts["Atelectasis"]
    assert "small left bilateral pleural effusion" in prompts["Pleural Effusion"]
    every = [p for v in prompts.values() for p in v]
    assert all(p == p.strip() and "  " not in p for p in every)
    sample = five_by_200_prompts(per_class=5, seed=1)
    assert sample == five_by_200_prompts(per_class=5, seed=1)
    assert sample != five_by_200_prompts(per_class=5, seed=2)
    assert all(len(v) == 5 and set(v) <= set(prompts[k]) for k, v in sample.items())


def five_by_200_texts() -> FakeTexts:
    prompts = five_by_200_prompts()
    return FakeTexts({p: axis(k) for k, ps in enumerate(prompts.values()) for p in ps}, 0.3)


def test_5x200_perfect_is_one_and_random_is_a_fifth():
    truth = np.repeat(np.arange(5), 200)
    texts = five_by_200_texts()
    perfect = zero_shot_5x200(np.eye(DIM)[truth], truth, texts, n_boot=FAST)
    assert perfect.metrics["chexpert5x200_acc"].value == 1.0
    assert list(perfect.table["acc"]) == [1.0] * 5
    assert list(perfect.table["n_prompts"]) == [210, 15, 192, 18, 36]
    assert perfect.table["predicted_edema"].tolist() == [0, 0, 0, 200, 0]

    noise = unit(np.random.default_rng(6).normal(size=(1000, DIM)))
    chance = zero_shot_5x200(noise, truth, texts).metrics["chexpert5x200_acc"]
    assert chance.low < 0.2 < chance.high and chance.n == 1000


def test_5x200_rejects_bad_class_indices():
    texts = five_by_200_texts()
    with pytest.raises(ValueError, match="row 1: 5 is not a class index"):
        zero_shot_5x200(np.eye(DIM)[:3], np.array([0, 5, 1]), texts)
    with pytest.raises(ValueError, match="must be 3 integers"):
        zero_shot_5x200(np.eye(DIM)[:3], np.array([0.0, 1.0, 1.0]), texts)
