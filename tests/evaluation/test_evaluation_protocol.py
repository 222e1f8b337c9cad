"""The evaluation protocol's choices (``--protocol``), each on its own: prompts, 5x200 prompt
weights, VinDr's class set, CheXpert blanks, the adversarial headline, normal detection's K."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from clip2clinic.evaluation.adversarial import build_adversarial_pairs, score_adversarial
from clip2clinic.evaluation.normal_detection import score_normal_detection
from clip2clinic.evaluation.protocol import (
    CHOICES,
    PROTOCOLS,
    VINDR_CXR_CLIP_CLASSES,
    get_protocol,
)
from clip2clinic.evaluation.zeroshot import (
    five_by_200_prompts,
    protocol_templates,
    zero_shot_5x200,
)
from clip2clinic.io import InputError
from tests.evaluation.test_evaluation_adversarial import ToyTextModel, labels_row


def test_the_paper_protocol_takes_the_first_value_of_every_choice_but_the_labeler():
    paper, ours = PROTOCOLS["paper"], PROTOCOLS["clip2clinic"]
    for key, values in CHOICES.items():
        if key != "labeler":
            assert getattr(paper, key) == values[0] and getattr(ours, key) == values[1], key
    assert paper.labeler == ours.labeler == "manifest"  # CheXbert's weights do not ship
    record = paper.record()
    assert record["name"] == "paper" and set(CHOICES) <= set(record)


def test_choices_can_be_overridden_one_by_one_and_are_checked():
    protocol = get_protocol("paper", ["prompts=ensemble", "adversarial=hallucinated"])
    assert protocol.prompts == "ensemble" and protocol.adversarial == "hallucinated"
    assert protocol.name == "paper+prompts=ensemble"  # only what changed is named
    assert protocol.five_by_200 == "cxr_clip"
    with pytest.raises(InputError, match="prompts='cxr'"):
        get_protocol("paper", ["prompts=cxr"])
    with pytest.raises(InputError, match="expected KEY=VALUE"):
        get_protocol("paper", ["colour=red"])
    with pytest.raises(InputError, match="choose from paper, clip2clinic"):
        get_protocol("glorious")
    with pytest.raises(InputError, match="--chexbert-checkpoint"):
        get_protocol("paper", ["labeler=chexbert"]).check()
    assert PROTOCOLS["paper"].reader_options("siim") == {"split": "gloria"}
    assert PROTOCOLS["clip2clinic"].reader_options("siim") == {"split": "dedup"}


def test_cxr_clip_prompts_are_one_pair_with_the_class_name_as_spelled():
    paper = protocol_templates("cxr_clip")
    assert paper.prompts("Pleural effusion") == (["Pleural effusion"], ["No Pleural effusion"])
    assert paper.prompts("Pleural_Thickening") == (["Pleural Thickening"],
                                                   ["No Pleural Thickening"])  # fmt: skip
    assert paper.prompts("Other lesion") is None
    # RSNA: BioViL's pair, as CXR-CLIP's evaluator; VinDr's Pneumonia keeps the plain pair
    assert paper.for_dataset("rsna").prompts("Pneumonia") == (
        ["Findings suggesting pneumonia."], ["No evidence of pneumonia"])
    assert paper.for_dataset("vindr").prompts("Pneumonia") == (["Pneumonia"], ["No Pneumonia"])
    ours = protocol_templates("ensemble")
    positive, negative = ours.prompts("Effusion")
    assert len(positive) == len(negative) == 4 and "There is no pleural effusion." in negative


def test_cxr_clip_5x200_prompts_keep_the_repeated_combinations():
    weighted = five_by_200_prompts(prompt_set="cxr_clip")
    unique = five_by_200_prompts()
    assert {k: len(v) for k, v in weighted.items()} == {
        "Atelectasis": 210, "Cardiomegaly": 15, "Consolidation": 192, "Edema": 18,
        "Pleural Effusion": 54}  # fmt: skip
    assert len(unique["Pleural Effusion"]) == 36
    assert set(weighted["Pleural Effusion"]) == set(unique["Pleural Effusion"])
    counts = pd.Series(weighted["Pleural Effusion"]).value_counts()
    assert counts["small left bilateral pleural effusion"] == 2
    assert counts["small left subpulmonic pleural effusion"] == 1


def test_the_repeats_weigh_in_the_5x200_mean():
    """An image right between the bilateral and the subpulmonic effusion prompts of its
    class: counted twice, the bilateral ones pull the class's mean their way."""
    prompts = five_by_200_prompts(prompt_set="cxr_clip")
    classes = list(prompts)
    dim = 8

    def embed(texts):
        rows = []
        for t in texts:
            k = next(i for i, c in enumerate(classes) if t in prompts[c])
            v = np.zeros(dim)
            v[k] = 1.0
            if classes[k] == "Pleural Effusion":
                v[6 if "bilateral" in t else 7] = 1.0
            rows.append(v / np.linalg.norm(v))
        return np.array(rows)

    image = np.zeros((1, dim))
    image[0, [4, 6]] = 1.0  # effusion, the bilateral kind
    image /= np.linalg.norm(image)
    scores = {}
    for prompt_set in ("cxr_clip", "unique"):
        result = zero_shot_5x200(image, np.array([4]), embed, prompt_set=prompt_set, n_boot=5)
        scores[prompt_set] = result.cases["score_pleural_effusion"].item()
    # bilateral prompts score 1.0, subpulmonic 0.5: mean (2x1 + 0.5)/3 against (1 + 0.5)/2
    assert scores["cxr_clip"] == pytest.approx((2 * 1.0 + 0.5) / 3)
    assert scores["unique"] == pytest.approx((1.0 + 0.5) / 2)


def test_vindr_classes_are_cxr_clips_and_chexpert_blanks_follow_the_protocol(caplog):
    classes = ["Aortic enlargement", "Other lesion", "Pneumonia", "No finding", "COPD"]
    labels = np.array([[1, 1, 0, 0, 1], [1, 0, 1, 0, 0], [0, 0, 0, 1, 0]], dtype=np.float32)
    with caplog.at_level(logging.WARNING):
        columns, _, notes = PROTOCOLS["paper"].reader_labels("vindr", classes, labels, None)
    assert [classes[c] for c in columns] == ["Aortic enlargement", "Pneumonia"]
    assert notes["test_positives"] == {"Aortic enlargement": 2, "Pneumonia": 1}
    assert len(notes["classes_missing"]) == len(VINDR_CXR_CLIP_CLASSES) - 2
    assert "10 or fewer test positives" in caplog.text
    columns, _, _ = PROTOCOLS["clip2clinic"].reader_labels("vindr", classes, labels, None)
    assert columns == list(range(5))

    blank = np.array([[1, np.nan, -1]], dtype=np.float32)
    _, paper, notes = PROTOCOLS["paper"].reader_labels("chexpert", ["A", "B", "C"], blank, None)
    assert paper.tolist() == [[1, 0, -1]] and notes == {"blank_labels": "negative"}
    _, ours, _ = PROTOCOLS["clip2clinic"].reader_labels("chexpert", ["A", "B", "C"], blank, None)
    assert np.isnan(ours[0, 1]) and ours[0, 2] == -1
    assert np.isnan(blank[0, 1])  # the reader's array is not changed


def test_the_paper_adversarial_headline_is_probmeds_hallucinated_pair():
    labels = np.stack([labels_row(Edema=1, Pneumothorax=0), labels_row(Cardiomegaly=1, Edema=0)])
    model = ToyTextModel()
    images = model.images(labels)
    images[1] = -images[1]  # image 1 is read backwards: every judgement about it is wrong
    pairs = build_adversarial_pairs(labels)
    paper = score_adversarial(images, model, pairs, headline="hallucinated")
    ours = score_adversarial(images, model, pairs, headline="all")
    for result in (paper, ours):
        assert result.metrics["adversarial_acc_hallucination"].value == 0.5
        assert result.metrics["adversarial_acc_negation"].value == 0.5
        assert result.metrics["adversarial_acc_all"].value == 0.5
    assert paper.metrics["adversarial_acc"] == paper.metrics["adversarial_acc_hallucination"]
    assert paper.metrics["adversarial_acc"].n == 2
    assert ours.metrics["adversarial_acc"] == ours.metrics["adversarial_acc_all"]
    assert ours.metrics["adversarial_acc"].n == 4
    assert paper.cases["headline"].tolist() == (pairs["kind"] == "hallucinated").tolist()
    with pytest.raises(ValueError, match="headline"):
        score_adversarial(images, model, pairs, headline="negated")


def test_normal_detection_warns_naming_k_when_the_data_has_fewer(caplog):
    rng = np.random.default_rng(0)
    unit = rng.normal(size=(13, 8))
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    with caplog.at_level(logging.WARNING):
        result = score_normal_detection(unit[:2], unit[2:4], unit[4:])
    assert "K = 9 abnormal reports per query" in caplog.text and "2999" in caplog.text
    assert set(result.table["candidates"]) == {10}
