"""The negation phrasing pools: coverage, disjoint wording and templates, and every phrasing
labelled negative for its observation (and nothing else) by the rule labeler."""

from __future__ import annotations

import math
import re

import pytest

from clip2clinic.observations import FINDINGS, NEGATIVE
from clip2clinic.reports.labeler import RuleLabeler
from clip2clinic.reports.negation import POOLS, negation_phrasings
from clip2clinic.reports.negation.phrasings import read_pool

# The syntactic templates of each pool (docs/negate.md). Every phrasing fits one template of its
# own pool and none of the other's, so evaluation wording is never seen in training.
TEMPLATES = {
    "train": [
        r"No (?!evidence of|signs? of)(?!.* (?:is|are) identified\.$)[^.]+\.",
        r"There (?:is|are) no [^.]+\.",
        r"No evidence of [^.]+\.",
        r"[^.]+ (?:is|are) not seen\.",
        r"Negative for [^.]+\.",
        r"No [^.]+ (?:is|are) identified\.",
    ],
    "eval": [
        r"Without [^.]+\.",
        r"[^.]+ (?:is|are) absent\.",
        r"No signs of [^.]+\.",
        r"[^.]+ (?:is|are) not present\.",
        r"[^.]+ was not detected\.",
        r"The [^.]+ (?:is|are) free of [^.]+\.",
        r"The (?:heart|mediastinum) is not (?:enlarged|widened)\.",
        r"(?:Heart size is|The mediastinal contours are) normal\.",
    ],
}
ALL = [(pool, observation, phrasing) for pool in POOLS for observation in FINDINGS
       for phrasing in negation_phrasings(observation, pool)]


@pytest.mark.parametrize("pool", POOLS)
def test_every_finding_has_at_least_six_distinct_phrasings_per_pool(pool: str) -> None:
    for observation in FINDINGS:
        phrasings = negation_phrasings(observation, pool)
        assert len(set(phrasings)) == len(phrasings) >= 6, observation


def test_pools_share_no_phrasing() -> None:
    train = {p.lower() for o in FINDINGS for p in negation_phrasings(o, "train")}
    evaluation = {p.lower() for o in FINDINGS for p in negation_phrasings(o, "eval")}
    assert train and evaluation and not train & evaluation


@pytest.mark.parametrize(("pool", "observation", "phrasing"), ALL)
def test_phrasing_fits_a_template_of_its_own_pool_only(pool: str, observation: str,
                                                       phrasing: str) -> None:
    other = next(p for p in POOLS if p != pool)
    assert any(re.fullmatch(t, phrasing) for t in TEMPLATES[pool]), phrasing
    assert not any(re.fullmatch(t, phrasing) for t in TEMPLATES[other]), phrasing


@pytest.fixture(scope="module")
def labeler() -> RuleLabeler:
    return RuleLabeler()


@pytest.mark.parametrize(("pool", "observation", "phrasing"), ALL)
def test_phrasing_is_negative_for_its_observation_only(labeler: RuleLabeler, pool: str,
                                                      observation: str, phrasing: str) -> None:
    labels = labeler.label(phrasing)
    assert labels[observation] == NEGATIVE
    assert labels["No Finding"] == 1
    assert all(math.isnan(labels[o]) for o in FINDINGS if o != observation), labels


def test_unknown_pool_or_observation_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown phrasing pool 'test'"):
        negation_phrasings("Edema", "test")
    with pytest.raises(KeyError, match="No Finding"):
        negation_phrasings("No Finding")


def test_pool_file_errors_name_the_line(tmp_path) -> None:
    path = tmp_path / "pool.txt"
    path.write_text("# comment\nNo edema.\n")
    with pytest.raises(ValueError, match=r"pool.txt:2: phrasing before any"):
        read_pool(path)
    path.write_text("[Edema]\nNo edema.\n[Oedema]\n")
    with pytest.raises(ValueError, match=r"pool.txt:3: unknown observation 'Oedema'"):
        read_pool(path)
    path.write_text("[Edema]\nNo edema.\n\n[Fracture]\nNo fracture.\n")
    assert read_pool(path) == {"Edema": ("No edema.",), "Fracture": ("No fracture.",)}
