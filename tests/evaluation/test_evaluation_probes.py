import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from threadpoolctl import threadpool_limits

from clip2clinic.evaluation.probes import (
    ProbeSplit,
    choose_c,
    linear_probe,
    patient_subset,
)

DIM = 12
FAST = 200  # bootstrap resamples where the interval is not what a test checks
CLASSES = ["Pneumonia", "Pneumothorax"]


@pytest.fixture(autouse=True)
def one_blas_thread():
    """These fits are tiny: BLAS threads only contend for the shared cores (measured 10x
    slower with them)."""
    with threadpool_limits(1):
        yield


def make_split(n: int, seed: int, signal: float, patients_from: int = 0) -> ProbeSplit:
    """Two classes; class c shifts feature c by ``signal`` (0 = pure noise). Three images per
    patient, patient ids unique to the split."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=(n, 2)).astype(float)
    features = rng.normal(size=(n, DIM))
    features[:, :2] += signal * (2 * labels - 1)
    features /= np.linalg.norm(features, axis=1, keepdims=True)
    groups = np.array([f"p{patients_from + i // 3}" for i in range(n)])
    return ProbeSplit(features, labels, groups)


def splits(signal: float) -> tuple[ProbeSplit, ProbeSplit, ProbeSplit]:
    return (
        make_split(900, 0, signal),
        make_split(300, 1, signal, patients_from=10_000),
        make_split(300, 2, signal, patients_from=20_000),
    )


def test_separable_features_reach_auc_near_one_and_noise_stays_at_chance():
    good = linear_probe(*splits(3.0), CLASSES, "rsna", n_boot=FAST)
    for setting in ("ft10", "ft100"):
        assert good.metrics[f"probe_{setting}_mean_auc"].value > 0.97
    noise = linear_probe(*splits(0.0), CLASSES, "rsna", fractions=(0.1,))
    chance = noise.metrics["probe_ft10_mean_auc"]
    # seed-to-seed sd of this mean is about 0.015 (measured over 12 noise draws)
    assert abs(chance.value - 0.5) < 0.05 and chance.high - chance.low < 0.15
    assert chance.n == 300


def test_table_has_a_row_per_setting_class_and_seed_and_seed_means():
    table = linear_probe(*splits(1.0), CLASSES, "siim", n_boot=FAST).table
    per_seed = table[table["seed"] != "mean"]
    assert len(per_seed[per_seed["setting"] == "ft10"]) == 2 * 3
    assert len(per_seed[per_seed["setting"] == "ft100"]) == 2  # one deterministic fit
    ft10 = per_seed[per_seed["setting"] == "ft10"]
    assert (ft10["n_train_patients"] == 30).all()  # 10% of 300 patients, all their images
    assert (ft10["n_train"] == 90).all()
    means = table[table["seed"] == "mean"].set_index(["setting", "class"])
    first = means.loc[("ft10", "Pneumonia")]
    expected = ft10[ft10["class"] == "Pneumonia"]["test_auc"].mean()
    assert first["test_auc"] == pytest.approx(expected)
    assert first["test_auc_low"] <= first["test_auc"] <= first["test_auc_high"]
    assert first["seeds"] == 3 and first["test_auc_seed_sd"] > 0


def test_c_is_chosen_without_looking_at_test_labels():
    train, validate, test = splits(0.8)
    shuffled = ProbeSplit(
        test.embeddings, np.random.default_rng(9).permutation(test.labels), test.groups
    )
    original = linear_probe(
        train, validate, test, CLASSES, "x", fractions=(0.1,), n_boot=FAST
    ).table
    blind = linear_probe(
        train, validate, shuffled, CLASSES, "x", fractions=(0.1,), n_boot=FAST
    ).table
    per_seed = original["seed"] != "mean"
    assert original.loc[per_seed, "C"].tolist() == blind.loc[per_seed, "C"].tolist()
    assert original.loc[per_seed, "val_auc"].tolist() == blind.loc[per_seed, "val_auc"].tolist()
    assert original.loc[per_seed, "test_auc"].tolist() != blind.loc[per_seed, "test_auc"].tolist()


def test_choose_c_prefers_the_best_validation_auc_and_falls_back_on_one_class():
    train, validate, _ = splits(0.5)
    x, y = train.embeddings, train.labels[:, 0]
    model, c, val_auc = choose_c(x, y, validate.embeddings, validate.labels[:, 0])
    assert 0.5 < val_auc <= 1 and c in (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)
    _, c, val_auc = choose_c(x, y, validate.embeddings, np.zeros(len(validate.labels)))
    assert c == 1.0 and math.isnan(val_auc)


def test_patient_subset_is_seeded_and_keeps_patients_whole():
    groups = np.repeat(np.arange(200), 4)
    mask = patient_subset(len(groups), 0.1, seed=0, groups=groups)
    assert np.array_equal(mask, patient_subset(len(groups), 0.1, seed=0, groups=groups))
    assert not np.array_equal(mask, patient_subset(len(groups), 0.1, seed=1, groups=groups))
    chosen = np.unique(groups[mask])
    assert len(chosen) == 20 and mask.sum() == 80
    assert not np.isin(groups[~mask], chosen).any()
    assert patient_subset(50, 1.0, seed=3).all()
    with pytest.raises(ValueError, match="fraction"):
        patient_subset(50, 0.0, seed=0)


def test_a_class_without_training_positives_is_nan_with_a_warning():
    train, validate, test = splits(3.0)
    labels = train.labels.copy()
    labels[:, 1] = 0
    train = ProbeSplit(train.embeddings, labels, train.groups)
    with pytest.warns(UserWarning, match=r"Pneumothorax seed \d: 0 positives"):
        result = linear_probe(train, validate, test, CLASSES, "x", fractions=(0.1,), n_boot=FAST)
    table = result.table
    skipped = table[(table["class"] == "Pneumothorax") & (table["seed"] != "mean")]
    assert skipped["test_auc"].isna().all()
    assert (skipped["status"] == "too few training examples").all()
    assert result.metrics["probe_ft10_mean_auc"].value > 0.97  # Pneumonia alone


def test_uncertain_and_unknown_labels_are_left_out_per_class():
    train, validate, test = splits(3.0)
    labels = train.labels.copy()
    labels[:300, 0] = -1
    labels[300:450, 0] = np.nan
    train = ProbeSplit(train.embeddings, labels, train.groups)
    table = linear_probe(train, validate, test, CLASSES, "x", fractions=(1.0,), n_boot=FAST).table
    rows = table[table["seed"] != "mean"].set_index("class")
    assert rows.loc["Pneumonia", "n_train"] == 450
    assert rows.loc["Pneumothorax", "n_train"] == 900


def test_non_finite_embeddings_are_left_out_with_a_warning():
    train, validate, test = splits(3.0)
    embeddings = test.embeddings.copy()
    embeddings[:10] = np.nan
    test = ProbeSplit(embeddings, test.labels, test.groups)
    with pytest.warns(UserWarning, match="test: 10 of 300 image embeddings are not finite"):
        result = linear_probe(train, validate, test, CLASSES, "x", fractions=(1.0,), n_boot=FAST)
    assert result.metrics["probe_ft100_mean_auc"].n == 290
    assert (result.table.loc[result.table["seed"] == "mean", "n_test"] == 290).all()


def test_patients_shared_between_splits_raise():
    train, validate, test = splits(1.0)
    leaky = ProbeSplit(test.embeddings, test.labels, train.groups[: len(test.labels)])
    with pytest.raises(ValueError, match="patients are in both the train and test split"):
        linear_probe(train, validate, leaky, CLASSES, "x")


def test_per_case_predictions_reproduce_the_table_aucs():
    train, validate, test = splits(1.0)
    labels = test.labels.copy()
    labels[:5, 1] = np.nan  # left out for class 1 only
    test = ProbeSplit(test.embeddings, labels, test.groups)
    result = linear_probe(train, validate, test, CLASSES, "siim", n_boot=FAST)
    cases = result.cases
    assert list(cases.columns) == ["image", "setting", "class", "seed", "label", "score"]
    assert len(cases) == 300 * 2 * (3 + 1)  # FT10: 3 seeds; FT100: one fit
    assert set(cases.loc[cases["setting"] == "ft100", "seed"]) == {0}
    row = cases[(cases["image"] == 7) & (cases["class"] == "Pneumothorax")]
    assert (row["label"] == labels[7, 1]).all() and len(row) == 4
    assert cases[(cases["image"] < 5) & (cases["class"] == "Pneumothorax")]["label"].isna().all()
    per_seed = result.table[result.table["seed"] != "mean"]
    for _, expected in per_seed.iterrows():
        mine = cases[(cases["setting"] == expected["setting"])
                     & (cases["class"] == expected["class"]) & (cases["seed"] == expected["seed"])
                     & cases["label"].isin([0, 1])]  # fmt: skip
        assert roc_auc_score(mine["label"], mine["score"]) == pytest.approx(expected["test_auc"])
