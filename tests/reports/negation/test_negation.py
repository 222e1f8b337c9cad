"""Negation hard negatives: removal of an observation, insertion of its negation, normal
reports, seeding, and the IU X-ray floor (docs/negate.md)."""

from __future__ import annotations

import math
from collections import Counter

import pandas as pd
import pytest
from iu_hard_negatives import iu_texts, score_hard_negatives

from clip2clinic.observations import FINDINGS
from clip2clinic.reports.labeler import RuleLabeler
from clip2clinic.reports.negation import (
    HardNegative,
    SinglePositive,
    make_hard_negative,
    make_hard_negatives,
    negation_phrasings,
    omit_observation,
    single_positive_corpus,
)
from clip2clinic.reports.sentences import split_sentences

ABNORMAL = [
    "Heart size is enlarged. Small left pleural effusion. No pneumothorax. Lungs are clear.",
    "Right lower lobe consolidation concerning for pneumonia. No pleural effusion.",
    "Cardiomegaly and small bilateral pleural effusions. No pneumothorax. Mild degenerative "
    "changes of the spine.",
    "Left subclavian pacemaker leads in the right atrium and ventricle. Normal heart size. "
    "Minimal bibasilar atelectasis. No effusion.",
    "1. Mildly displaced right 6th rib fracture. 2. No pneumothorax. 3. Small nodule in the "
    "right upper lobe.",
    "Streaky opacities at the left base, atelectasis versus scarring. Heart size normal.",
]
NORMAL = [
    "The heart is normal in size. The lungs are clear. No pleural effusion or pneumothorax.",
    "No acute cardiopulmonary abnormality.",
    "",
]
SINGLE = ["Small right pleural effusion. Lungs otherwise clear.",
          "Cardiomegaly. No edema. No effusion."]
SINGLE_CORPUS = [SinglePositive(SINGLE[1], ("Cardiomegaly",)),
                 SinglePositive(SINGLE[0], ("Pleural Effusion",))]


@pytest.fixture(scope="module")
def labeler() -> RuleLabeler:
    return RuleLabeler()


def _nan_equal(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


@pytest.mark.parametrize("report", ABNORMAL)
@pytest.mark.parametrize("row_id", ["a", "b", "c", "d"])
def test_negated_differs_at_exactly_the_chosen_observation(labeler: RuleLabeler, report: str,
                                                            row_id: str) -> None:
    hard = make_hard_negative(report, row_id, seed=3)
    before, after = labeler.label(report), labeler.label(hard.hard_negative)
    assert before[hard.chosen] == 1 and after[hard.chosen] == 0
    for observation in FINDINGS:
        if observation != hard.chosen:
            assert _nan_equal(before[observation], after[observation]), observation
    assert math.isnan(labeler.label(hard.omitted)[hard.chosen])
    assert not any(m.observation == hard.chosen for m in labeler.mentions(hard.omitted))
    statements = set(negation_phrasings(hard.chosen, "train"))
    assert len(statements & set(split_sentences(hard.hard_negative))) == 1


@pytest.mark.parametrize(
    ("report", "observation", "omitted"),
    [
        ("Right lower lobe consolidation concerning for pneumonia.", "Pneumonia",
         "Right lower lobe consolidation."),
        ("Right lower lobe consolidation concerning for pneumonia.", "Consolidation",
         "Findings concerning for pneumonia."),
        ("Cardiomegaly and small bilateral pleural effusions. No pneumothorax.",
         "Pleural Effusion", "Cardiomegaly. No pneumothorax."),
        ("Cardiomegaly without pulmonary edema. Lungs clear.", "Cardiomegaly",
         "No pulmonary edema. Lungs clear."),
        ("Small right effusion. No pneumothorax or effusion on the left.", "Pleural Effusion",
         "No pneumothorax."),
        ("No focal airspace opacity, pleural effusion, or pneumothorax. Right basilar opacity.",
         "Lung Opacity", "No pleural effusion, or pneumothorax."),
        ("Opacity at the left base, atelectasis versus scarring.", "Atelectasis",
         "Opacity at the left base, scarring."),
        ("Bibasilar atelectasis. Findings consistent with CHF. Cardiomegaly.", "Cardiomegaly",
         "Bibasilar atelectasis."),
        ("1. Cardiomegaly. 2. No pneumothorax. 3. Small right effusion.", "Pleural Effusion",
         "1. Cardiomegaly. 2. No pneumothorax."),
        ("1. Cardiomegaly. 2. No pneumothorax. 3. Small right effusion.", "Cardiomegaly",
         "1. No pneumothorax. 3. Small right effusion."),
        ("Cardiomegaly.", "Cardiomegaly", ""),
    ],
)
def test_omission_keeps_every_other_statement(labeler: RuleLabeler, report: str,
                                              observation: str, omitted: str) -> None:
    omission = omit_observation(report, observation, labeler.mentions(report), labeler)
    assert omission.text == omitted
    assert omission.clean


def test_a_differential_keeps_the_other_alternative(labeler: RuleLabeler) -> None:
    report = "Streaky opacity may represent atelectasis or infiltrate. Heart size normal."
    omission = omit_observation(report, "Lung Opacity", labeler.mentions(report), labeler)
    assert omission == ("Findings may represent atelectasis. Heart size normal.", True)


def test_words_naming_two_observations_go_whole_and_are_reported(labeler: RuleLabeler) -> None:
    report = "Small nodular opacity in the right upper lobe. Heart size normal."
    omission = omit_observation(report, "Lung Opacity", labeler.mentions(report), labeler)
    assert omission == ("Heart size normal.", False)  # the nodule (Lung Lesion) went with it


def test_the_choice_prefers_an_observation_that_comes_out_cleanly(labeler: RuleLabeler) -> None:
    report = "Small nodular opacity in the right upper lobe. Cardiomegaly. No effusion."
    chosen = {make_hard_negative(report, str(i)).chosen for i in range(20)}
    assert chosen == {"Cardiomegaly"}


def test_the_statement_lands_at_the_beginning_middle_or_end() -> None:
    report = "Small left pleural effusion. Heart size normal. No pneumothorax. Lungs clear."
    places = Counter()
    for i in range(60):
        hard = make_hard_negative(report, f"row{i}")
        sentences = split_sentences(hard.hard_negative)
        assert split_sentences(hard.omitted) == [s for s in sentences
                                                 if s not in negation_phrasings(hard.chosen)]
        index = next(k for k, s in enumerate(sentences) if s in negation_phrasings(hard.chosen))
        places["beginning" if index == 0 else "end" if index == 3 else "middle"] += 1
    assert set(places) == {"beginning", "middle", "end"}
    assert min(places.values()) >= 10


def test_an_unpunctuated_report_keeps_the_statement_a_sentence_of_its_own(
        labeler: RuleLabeler) -> None:
    report = "Heart size normal\nSmall left effusion\nlungs clear"
    for i in range(10):
        hard = make_hard_negative(report, str(i))
        assert labeler.label(hard.hard_negative)["Pleural Effusion"] == 0
        assert labeler.label(hard.hard_negative)["Cardiomegaly"] == 0


def test_draws_depend_on_seed_and_row_id_not_on_row_order() -> None:
    reports = ABNORMAL + NORMAL
    ids = [f"id{i}" for i in range(len(reports))]
    forward = make_hard_negatives(reports, ids, seed=7)
    order = list(reversed(range(len(reports))))
    backward = make_hard_negatives([reports[i] for i in order], [ids[i] for i in order],
                                   seed=7).iloc[order].reset_index(drop=True)
    pd.testing.assert_frame_equal(forward, backward)
    alone = make_hard_negative(reports[2], ids[2], seed=7,
                               corpus_single_positive=single_positive_corpus(
                                   reports, [RuleLabeler().label(r) for r in reports]))
    assert alone == HardNegative(*forward.iloc[2])
    others = [make_hard_negatives(reports, ids, seed=s) for s in range(1, 6)]
    assert any(not other.equals(forward) for other in others)


def test_normal_reports_get_a_single_positive_corpus_report(labeler: RuleLabeler) -> None:
    for i, report in enumerate(NORMAL[1:]):  # NORMAL[0] mentions both findings (below)
        hard = make_hard_negative(report, str(i), corpus_single_positive=SINGLE_CORPUS)
        assert hard.chosen == "" and hard.omitted == report and hard.hard_negative in SINGLE
    drawn = {make_hard_negative(NORMAL[1], str(i),
                                corpus_single_positive=SINGLE_CORPUS).hard_negative
             for i in range(30)}
    assert drawn == set(SINGLE)
    assert make_hard_negative(NORMAL[0], "x") == HardNegative("", "", NORMAL[0])


def test_normal_reports_never_draw_a_finding_they_mention(labeler: RuleLabeler) -> None:
    report = "No pleural effusion. Lungs are clear."
    drawn = {make_hard_negative(report, str(i), corpus_single_positive=SINGLE_CORPUS).hard_negative
             for i in range(30)}
    assert drawn == {SINGLE[1]}
    # "heart normal in size" and "no pleural effusion" mention both findings of the corpus
    hard = make_hard_negative(NORMAL[0], "x", corpus_single_positive=SINGLE_CORPUS)
    assert hard == HardNegative("", "", NORMAL[0])


def test_uncertain_only_reports_are_negated_for_training_not_for_cxr_align(
        labeler: RuleLabeler) -> None:
    report = "Possible early pneumonia in the right lower lobe. Heart size normal."
    assert labeler.label(report)["Pneumonia"] == -1
    hard = make_hard_negative(report, "u", corpus_single_positive=SINGLE_CORPUS)
    assert hard.chosen == "Pneumonia"
    assert labeler.label(hard.hard_negative)["Pneumonia"] == 0
    assert math.isnan(labeler.label(hard.omitted)["Pneumonia"])
    positive_only = make_hard_negative(report, "u", corpus_single_positive=SINGLE_CORPUS,
                                       uncertain_as_abnormal=False)
    assert positive_only.chosen == "" and positive_only.omitted == report


def test_support_devices_alone_are_abnormal_and_negated(labeler: RuleLabeler) -> None:
    report = "Right PICC line tip in the SVC. Lungs are clear. Heart size normal."
    hard = make_hard_negative(report, "s")
    assert hard.chosen == "Support Devices"
    assert labeler.label(hard.hard_negative)["Support Devices"] == 0
    assert hard.omitted == "Lungs are clear. Heart size normal."


def test_single_positive_corpus_and_its_fallbacks(labeler: RuleLabeler, caplog) -> None:
    reports = ABNORMAL + NORMAL + SINGLE + ["Possible pneumonia. Small effusion."]
    labels = [labeler.label(r) for r in reports]
    assert single_positive_corpus(reports, labels) == SINGLE_CORPUS
    several = ABNORMAL[:3] + NORMAL
    fallback = single_positive_corpus(several, [labeler.label(r) for r in several])
    # one positive finding, one uncertain
    assert fallback == [SinglePositive(ABNORMAL[1], ("Consolidation",))]
    assert "draw from those with 1 positive finding" in caplog.text
    assert single_positive_corpus(NORMAL, [labeler.label(r) for r in NORMAL]) == []


def test_batch_with_given_labels_matches_batch_that_labels(labeler: RuleLabeler) -> None:
    reports = ABNORMAL + NORMAL + SINGLE
    ids = [str(i) for i in range(len(reports))]
    labels = labeler.label_many(reports)
    given = make_hard_negatives(reports, ids, seed=1, pool="eval", labels=labels)
    pd.testing.assert_frame_equal(given, make_hard_negatives(reports, ids, seed=1, pool="eval"))
    for chosen, negated in zip(given["chosen"], given["hard_negative"], strict=True):
        if chosen:
            sentences = set(split_sentences(negated))
            assert sentences & set(negation_phrasings(chosen, "eval"))
            assert not sentences & set(negation_phrasings(chosen, "train"))


def test_given_labels_that_the_text_does_not_bear_out_are_not_negated() -> None:
    hard = make_hard_negative("Lungs are clear.", "x", labels={"Edema": 1.0},
                              corpus_single_positive=SINGLE_CORPUS)
    assert hard.chosen == "" and hard.hard_negative in SINGLE


def test_mismatched_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="2 reports but 1 row ids"):
        make_hard_negatives(["a", "b"], ["1"])


@pytest.mark.slow
def test_iu_reports_meet_the_95_percent_floor(shared_data) -> None:
    """Regression guard on the real IU X-ray reports (it depends on the labeler too)."""
    frame = iu_texts(shared_data / "iu_xray" / "indiana_reports.csv")
    texts = frame["text"].tolist()
    labeler = RuleLabeler()
    negatives = make_hard_negatives(texts, frame["uid"].tolist(), seed=0, labeler=labeler)
    scored = score_hard_negatives(texts, negatives, labeler)
    abnormal = scored[scored["chosen"] != ""]
    assert len(abnormal) > 1000
    assert abnormal["omitted_clean"].all()
    assert abnormal["chosen_negated"].all()
    assert abnormal["ok"].astype(bool).mean() >= 0.95
    normal = scored[scored["chosen"] == ""]
    assert normal["single_positive"].all()
