import numpy as np
import pandas as pd
import pytest
from iu_hard_negatives import iu_texts

from clip2clinic.evaluation.adversarial import (
    build_adversarial_pairs,
    score_adversarial,
    statement,
)
from clip2clinic.observations import CHEXPERT_CLASSES, FINDINGS
from clip2clinic.reports.labeler import RuleLabeler

NAN = np.nan


def labels_row(**values):
    row = np.full(len(CHEXPERT_CLASSES), NAN, np.float32)
    for name, value in values.items():
        row[CHEXPERT_CLASSES.index(name.replace("_", " "))] = value
    return row


class ToyTextModel:
    """ "X." embeds to the unit vector of X, "No x." to its opposite, and an image to the
    normalised sum of +unit for the findings it has and -unit for the others: a model that
    understands every finding and every negation."""

    def __init__(self):
        self.axis = {}
        for i, name in enumerate(FINDINGS):
            self.axis[statement(name, True)] = np.eye(1, 16, i, dtype=np.float32)[0]
            self.axis[statement(name, False)] = -np.eye(1, 16, i, dtype=np.float32)[0]
        self.calls = 0

    def __call__(self, texts):
        self.calls += 1
        return np.stack([self.axis[t] for t in texts])

    def images(self, labels):
        signs = np.where(labels[:, 1:] == 1, 1.0, -1.0).astype(np.float32)
        out = np.zeros((len(labels), 16), np.float32)
        out[:, : len(FINDINGS)] = signs
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def random_labels(n, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.choice([1.0, 0.0, NAN], size=(n, len(CHEXPERT_CLASSES)), p=[0.2, 0.4, 0.4])
    labels[:, 0] = NAN
    return labels.astype(np.float32)


def test_statements_read_like_report_sentences():
    assert statement("Pleural Effusion", True) == "Pleural effusion."
    assert statement("Pleural Effusion", False) == "No pleural effusion."
    assert statement("Pleural Other", True) == "Pleural abnormality."
    assert statement("Pleural_Thickening", False) == "No pleural thickening."


def test_pairs_use_a_positive_finding_and_an_absent_one():
    labels = np.stack(
        [
            labels_row(No_Finding=1, Pneumothorax=0, Cardiomegaly=0),  # normal: no pair
            labels_row(Edema=1, Pneumothorax=0, Pleural_Effusion=0, Cardiomegaly=-1),
            labels_row(Fracture=1),  # nothing negative: the hallucination is an unmentioned one
        ]
    )
    pairs = build_adversarial_pairs(labels, seed=0)
    assert set(pairs["image"]) == {1, 2}
    negated = pairs[pairs["kind"] == "negated"].set_index("image")
    assert negated.loc[1, "positive"] == negated.loc[1, "adversarial"] == "Edema"
    assert negated.loc[1, "true_statement"] == "Edema."
    assert negated.loc[1, "adversarial_statement"] == "No edema."
    hallucinated = pairs[pairs["kind"] == "hallucinated"].set_index("image")
    assert hallucinated.loc[1, "adversarial"] in {"Pneumothorax", "Pleural Effusion"}
    assert hallucinated.loc[2, "adversarial"] not in {"Fracture", "No Finding"}
    assert hallucinated.loc[2, "adversarial_statement"].endswith(".")
    assert build_adversarial_pairs(labels, seed=0).equals(pairs)


def test_an_image_with_every_finding_present_gets_no_hallucinated_pair():
    labels = np.ones((1, len(CHEXPERT_CLASSES)), np.float32)
    pairs = build_adversarial_pairs(labels, seed=0)
    assert list(pairs["kind"]) == ["negated"]


def test_other_label_sets_work_through_classes():
    classes = ("Effusion", "Pleural_Thickening", "No Finding")
    pairs = build_adversarial_pairs(np.array([[1, 0, 0]], np.float32), classes=classes)
    assert list(pairs["adversarial_statement"]) == ["No effusion.", "Pleural thickening."]
    with pytest.raises(ValueError, match="expected shape"):
        build_adversarial_pairs(np.zeros((2, 5)), classes=classes)
    with pytest.raises(ValueError, match="unknown pair kind"):
        build_adversarial_pairs(np.zeros((2, 3)), classes=classes, kinds=("swapped",))


def test_a_perfect_model_scores_one_a_flipped_one_zero_and_texts_are_embedded_once():
    labels = random_labels(300)
    model = ToyTextModel()
    pairs = build_adversarial_pairs(labels, seed=1)
    perfect = score_adversarial(model.images(labels), model, pairs)
    assert model.calls == 1
    for name in ("adversarial_acc", "adversarial_acc_negation", "adversarial_acc_hallucination"):
        assert perfect.metrics[name].value == 1.0, name
    flipped = score_adversarial(-model.images(labels), model, pairs)
    for name in ("adversarial_acc", "adversarial_acc_negation", "adversarial_acc_hallucination"):
        assert flipped.metrics[name].value == 0.0, name


def test_a_random_image_scores_chance_one_half_and_one_quarter():
    labels = random_labels(2000, seed=2)
    model = ToyTextModel()
    pairs = build_adversarial_pairs(labels, seed=0)
    rng = np.random.default_rng(3)
    image = rng.normal(size=(len(labels), 16)).astype(np.float32)
    image /= np.linalg.norm(image, axis=1, keepdims=True)
    result = score_adversarial(image, model, pairs)
    negation = result.metrics["adversarial_acc_negation"]
    hallucination = result.metrics["adversarial_acc_hallucination"]
    assert negation.low < 0.5 < negation.high
    assert hallucination.low < 0.25 < hallucination.high
    table = result.table.set_index("kind")
    assert list(table.index) == ["negated", "hallucinated", "all"]
    assert table.loc["all", "n"] == len(pairs)
    assert table.loc["negated", "true_right"] == table.loc["negated", "adversarial_acc"]


def test_a_model_that_ignores_negation_fails_the_negated_pairs():
    """Bag of words: "No x." embeds like "X.", so every comparison is a tie."""
    labels = random_labels(100)
    model = ToyTextModel()
    model.axis = {t: np.abs(v) for t, v in model.axis.items()}
    result = score_adversarial(model.images(labels), model, build_adversarial_pairs(labels, seed=0))
    assert result.metrics["adversarial_acc"].value == 0.0


def test_pairs_on_real_iu_labels(shared_data):
    texts = iu_texts(shared_data / "iu_xray" / "indiana_reports.csv").iloc[:300]
    labels = RuleLabeler().label_many(texts["text"])[list(CHEXPERT_CLASSES)].to_numpy(np.float32)
    pairs = build_adversarial_pairs(labels, seed=0)
    abnormal = np.flatnonzero((labels[:, 1:] == 1).any(axis=1))
    negated = pairs[pairs["kind"] == "negated"]
    assert list(negated["image"]) == list(abnormal)
    hallucinated = pairs[pairs["kind"] == "hallucinated"]
    assert len(hallucinated) >= 0.9 * len(abnormal)
    columns = hallucinated["adversarial"].map(CHEXPERT_CLASSES.index).to_numpy()
    values = labels[hallucinated["image"].to_numpy(), columns]
    assert not np.isin(values, [1, -1]).any()  # never a finding the report states or doubts


def test_bad_pairs_are_refused_and_no_pairs_give_nan():
    model = ToyTextModel()
    image = model.images(random_labels(3))
    with pytest.raises(ValueError, match="image indices"):
        score_adversarial(
            image,
            model,
            pd.DataFrame(
                {"image": [5], "kind": ["negated"], "positive": ["Edema"], "adversarial": ["Edema"]}
            ),
        )
    empty = build_adversarial_pairs(np.full((2, 14), NAN, np.float32))
    result = score_adversarial(image, model, empty)
    assert np.isnan(result.metrics["adversarial_acc"].value) and model.calls == 0
