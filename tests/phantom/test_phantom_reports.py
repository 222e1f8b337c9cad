"""The phantom's truth sampling and report grammar: labels, wording, imbalance, co-occurrence."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pytest

from clip2clinic.observations import FINDINGS
from clip2clinic.phantom.reports import (
    EXTRA_NORMAL_IMPRESSION,
    aggregate,
    check_labels,
    finding_statement,
    write_report,
)
from clip2clinic.phantom.truth import Finding, sample_corpus
from clip2clinic.reports.sentences import split_sentences

# Words by which a reader recognises each observation in a sentence.
_KEYWORDS = {
    "Pleural Effusion": "effusion", "Pneumothorax": "pneumothora", "Cardiomegaly": "heart|cardi",
    "Edema": "edema", "Consolidation": "consolidation", "Pneumonia": "pneumonia",
    "Atelectasis": "atelectasis", "Lung Lesion": "nodule|mass|lesion",
    "Enlarged Cardiomediastinum": "mediastin", "Fracture": "fracture",
    "Pleural Other": "pleural thickening", "Lung Opacity": "opaci",
}
_NEGATION = re.compile(r"^(no|there is no)\b|\bno evidence of\b|\bis normal\b|\bresolved\b|"
                       r"\bresolution\b", re.I)


@pytest.fixture(scope="module")
def corpus():
    studies = sample_corpus(1000, seed=11)
    reports = []
    for s in studies:
        prior = studies[s.prior] if s.prior is not None else None
        text, s.labels = write_report(s, prior, np.random.default_rng(s.index))
        reports.append(text)
    return studies, reports


def _body(report: str) -> str:
    """FINDINGS and IMPRESSION text, the part labels are read from."""
    sections = re.split(r"\n (?:FINDINGS|IMPRESSION): \n", report)[1:]
    return "\n".join(" ".join(part.split()) for part in sections)


def test_labels_agree_with_truth_for_every_study(corpus):
    studies, _ = corpus
    for s in studies:
        assert check_labels(s, s.labels) == []


def test_positive_findings_are_named_and_never_negated(corpus):
    studies, reports = corpus
    for s, report in zip(studies, reports, strict=True):
        sentences = split_sentences(_body(report))
        for f in s.pathologies:
            keyword = re.compile(_KEYWORDS[f.observation], re.I)
            mentions = [x for x in sentences if keyword.search(x)]
            assert mentions, (f, report)
            for sentence in mentions:
                assert not _NEGATION.search(sentence), (f, sentence)


def test_negatives_only_for_absent_observations(corpus):
    studies, reports = corpus
    negated = re.compile(r"^(?:No|There is no) ([a-z ,]+?)(?: is seen)?\.$")
    for s, report in zip(studies, reports, strict=True):
        present = {f.observation for f in s.findings}
        for sentence in split_sentences(_body(report)):
            match = negated.match(sentence)
            if not match:
                continue
            for obs in present - {"Support Devices"}:
                words = _KEYWORDS[obs]
                if obs == "Cardiomegaly":  # "No acute cardiopulmonary process" is no heart word
                    words = "heart"
                assert not re.search(words, match.group(1), re.I), (obs, sentence)


def test_normal_share_and_template_imbalance(corpus):
    studies, reports = corpus
    normal = sum(s.normal for s in studies) / len(studies)
    assert 0.5 < normal < 0.7  # most studies normal, as in Table 1's set-up
    impressions = Counter(
        " ".join(r.split("IMPRESSION:")[1].split()) for r in reports if "IMPRESSION:" in r
    )
    (top, count), (_, second) = impressions.most_common(2)
    assert top == "No acute cardiopulmonary process."
    assert count > 0.25 * sum(s.normal for s in studies)
    assert count > 2 * second
    # whole reports repeat too: templated normal reports without FINDINGS
    assert Counter(map(_body, reports)).most_common(1)[0][1] > 50


def test_grammar_has_variety_uncertainty_and_temporal_phrases(corpus):
    studies, reports = corpus
    text = "\n".join(reports)
    for phrase in ("cannot be excluded", "Possible", "may represent", "unchanged", "new",
                   "increased", "No significant interval change.", "No pneumothorax.",
                   "No pleural effusion or pneumothorax."):
        assert phrase in text, phrase
    effusion = {re.sub(r"\b(left|right|bilateral|small|moderate|large)\b", "_", x)
                for s, r in zip(studies, reports, strict=True)
                for x in split_sentences(_body(r)) if "effusion" in x and "No" not in x}
    assert len(effusion) >= 8


def test_uncertain_truth_is_hedged():
    rng = np.random.default_rng(0)
    for obs in FINDINGS[:-1]:
        finding = Finding(obs, presence="uncertain", laterality="left", location="lingula",
                          kind="nodule", number=7)
        for _ in range(10):
            statement = finding_statement(finding, rng)
            assert dict(statement.labels) == {obs: -1}
            assert re.search(r"possib|cannot|may|borderline", statement.text, re.I)


def test_aggregation_follows_chexpert_rules():
    from clip2clinic.phantom.reports import Statement

    labels = aggregate([
        Statement("Possible effusion.", (("Pleural Effusion", -1),)),
        Statement("Left effusion.", (("Pleural Effusion", 1),)),
        Statement("No pneumothorax.", (("Pneumothorax", 0),)),
        Statement("ET tube in place.", (("Support Devices", 1),)),
    ])
    assert labels["Pleural Effusion"] == 1.0 and labels["Pneumothorax"] == 0.0
    assert labels["Edema"] is None and labels["No Finding"] is None
    devices_only = aggregate([Statement("ET tube in place.", (("Support Devices", 1),))])
    assert devices_only["No Finding"] == 1.0  # devices are not pathology


def test_findings_co_occur_as_in_the_clinic(corpus):
    studies, _ = corpus

    def rate(obs, given=None):
        pool = [s for s in studies if given is None or given(s)]
        return sum(any(f.observation == obs for f in s.findings) for s in pool) / len(pool)

    def has(obs):
        return lambda s: any(f.observation == obs for f in s.findings)

    assert rate("Cardiomegaly", has("Edema")) > 2 * rate("Cardiomegaly")
    assert rate("Pleural Effusion", has("Edema")) > 2 * rate("Pleural Effusion")
    icu = [s for s in studies if s.ward == "icu"]
    clinic = [s for s in studies if s.ward == "outpatient"]
    assert (np.mean([any(f.observation == "Support Devices" for f in s.findings) for s in icu])
            > 0.6 > 0.1 > np.mean([any(f.kind in ("et_tube", "ng_tube") for f in s.findings)
                                   for s in clinic]))
    assert rate("Consolidation", has("Pneumonia")) > 3 * rate("Consolidation")
    assert all(s.views[0] == "AP" for s in icu if s.views[0] != "PA") and any(
        s.views == ("AP",) for s in icu)


def test_patients_keep_their_chronic_findings_and_ids(corpus):
    studies, _ = corpus
    by_patient: dict[int, list] = {}
    for s in studies:
        by_patient.setdefault(s.subject_id, []).append(s)
    assert max(map(len, by_patient.values())) >= 3
    for visits in by_patient.values():
        assert len({v.split for v in visits}) == 1
        assert len({v.sex for v in visits}) == 1
        dates = [v.date for v in visits]
        assert dates == sorted(dates)
    assert len({s.study_id for s in studies}) == len(studies)


def test_extra_normal_report_is_the_papers():
    studies = sample_corpus(5, seed=1, extra_normal=4)
    texts = {write_report(s, None, np.random.default_rng(0))[0] for s in studies if s.extra_normal}
    assert len(texts) == 1 and EXTRA_NORMAL_IMPRESSION in texts.pop()
