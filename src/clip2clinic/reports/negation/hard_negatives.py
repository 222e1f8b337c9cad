"""Negation-based hard negatives (paper Sec. 3 and 4.1, Fig. 2).

Abnormal report (at least one of the 13 findings positive; Support Devices counts, as the
paper's CheXbert step picks among "positive findings, diseases, or medical devices"): one
positive observation is chosen at random, every statement about it is removed (``omitted``,
r^r), and a negative statement about it from a phrasing pool is inserted at the beginning,
middle or end (``hard_negative``, r^n). A report whose findings are all uncertain ("possible
pneumonia") is abnormal too for training (``uncertain_as_abnormal``): one uncertain finding is
negated the same way. CXR-Align keeps the paper's positive findings only.

Normal report (no positive or uncertain finding): a report of the corpus with exactly one
positive finding is its hard negative (``hard_negative``), drawn among those whose finding the
normal
report does not mention at all (so "No pneumothorax." never draws "Small pneumothorax.");
``chosen`` is empty and ``omitted`` is the report itself. The corpus is the caller's: prepare
passes the single-positive reports of the row's own split, so no validation or test text
reaches training.

Every random draw comes from a generator seeded by (seed, row id), so a row's result does not
depend on the order of rows or on how a corpus is split across processes.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from clip2clinic.io import as_text
from clip2clinic.observations import FINDINGS, POSITIVE, UNCERTAIN
from clip2clinic.reports.labeler import Mention, RuleLabeler
from clip2clinic.reports.labeler.aggregate import aggregate
from clip2clinic.reports.negation.phrasings import negation_phrasings
from clip2clinic.reports.negation.removal import Labels, omit_observation
from clip2clinic.reports.sentences import sentence_spans

log = logging.getLogger(__name__)

POSITIONS: tuple[str, ...] = ("beginning", "middle", "end")
COLUMNS: tuple[str, ...] = ("chosen", "hard_negative", "omitted")


class SinglePositive(NamedTuple):
    """A report that normal reports may draw as their hard negative, with its positive
    finding(s) (one, except in the fallback of :func:`single_positive_corpus`)."""

    text: str
    findings: tuple[str, ...]


@dataclass(frozen=True)
class HardNegative:
    """``chosen``: the CheXpert class negated ("" for a normal report); ``hard_negative``: r^n;
    ``omitted``: the report without the chosen observation, r^r."""

    chosen: str
    hard_negative: str
    omitted: str


@lru_cache(maxsize=1)
def default_labeler() -> RuleLabeler:
    """The rule labeler with its bundled word lists (built once)."""
    return RuleLabeler()


def row_rng(seed: int, row_id: str) -> np.random.Generator:
    """A generator seeded by ``seed`` and a stable hash of ``row_id`` (not Python's ``hash``,
    which changes between processes)."""
    digest = hashlib.blake2b(row_id.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return np.random.default_rng([seed, int.from_bytes(digest, "little")])


def positive_findings(labels: Labels) -> list[str]:
    """The findings labelled positive, in CheXpert column order."""
    return [o for o in FINDINGS if labels.get(o) == POSITIVE]


def findings_to_negate(labels: Labels, uncertain_as_abnormal: bool = True) -> list[str]:
    """The findings one of which is negated: the positive ones or, when there are none and
    ``uncertain_as_abnormal``, the uncertain ones. Empty for a normal report."""
    positives = positive_findings(labels)
    if positives or not uncertain_as_abnormal:
        return positives
    return [o for o in FINDINGS if labels.get(o) == UNCERTAIN]


def mentioned_findings(labels: Labels) -> set[str]:
    """The findings a report mentions at all (labelled anything but blank)."""
    return {o for o in FINDINGS if not math.isnan(_as_float(labels.get(o)))}


def insert_statement(report: str, statement: str, position: str,
                     rng: np.random.Generator) -> str:
    """``report`` with ``statement`` (a whole sentence) before its first sentence, between two
    of its sentences (drawn from ``rng``; with fewer than two sentences, at the end), or after
    its last sentence."""
    spans = sentence_spans(report)
    if not spans:
        return statement
    if position == "beginning":
        return f"{statement} {report.lstrip()}"
    if position == "middle" and len(spans) >= 2:
        at = spans[int(rng.integers(1, len(spans)))].start
        return f"{report[:at]}{statement} {report[at:]}"
    base = report.rstrip()
    if base[-1].isalnum() or base[-1] in ")]\"'":
        base += "."  # keep the statement a sentence of its own
    return f"{base} {statement}"


def make_hard_negative(report: str, row_id: str, seed: int = 0, pool: str = "train",
                       corpus_single_positive: Sequence[SinglePositive] = (),
                       labels: Labels | None = None,
                       mentions: Sequence[Mention] | None = None,
                       labeler: RuleLabeler | None = None,
                       uncertain_as_abnormal: bool = True) -> HardNegative:
    """The hard negative of one (already cleaned) report.

    ``corpus_single_positive``: reports with exactly one positive finding, in a canonical order
    (see :func:`single_positive_corpus`); a normal report draws one whose finding it does not
    mention, and its ``hard_negative`` is "" when there is none. ``mentions``: the rule labeler's
    mentions of ``report`` when already computed. ``labels``: its labels, which let a normal
    report skip labelling; an abnormal one is decided by its mentions.
    ``uncertain_as_abnormal``: negate an uncertain finding of a report with no positive one.
    """
    report = as_text(report)
    labeler = labeler or default_labeler()
    rng = row_rng(seed, as_text(row_id))
    if labels is None or findings_to_negate(labels, uncertain_as_abnormal):
        mentions = labeler.mentions(report) if mentions is None else mentions
        labels = aggregate(mentions)  # the mentions that removal works on decide
    candidates = findings_to_negate(labels, uncertain_as_abnormal)
    if not candidates:
        mentioned = mentioned_findings(labels)
        eligible = [s.text for s in corpus_single_positive if not mentioned & set(s.findings)]
        if not eligible:
            return HardNegative("", "", report)
        return HardNegative("", eligible[int(rng.integers(len(eligible)))], report)
    chosen, omitted = _choose(report, candidates, mentions, labeler, rng)
    phrasings = negation_phrasings(chosen, pool)
    statement = phrasings[int(rng.integers(len(phrasings)))]
    position = POSITIONS[int(rng.integers(len(POSITIONS)))]
    return HardNegative(chosen, insert_statement(omitted, statement, position, rng), omitted)


def _choose(report: str, candidates: Sequence[str], mentions: Sequence[Mention],
            labeler: RuleLabeler, rng: np.random.Generator) -> tuple[str, str]:
    """The observation to negate and the report without it: the first, in a random order, whose
    removal leaves every other label as it was (when none does, the first drawn)."""
    order = [candidates[i] for i in rng.permutation(len(candidates))]
    first = None
    for observation in order:
        omission = omit_observation(report, observation, mentions, labeler)
        if omission.clean:
            return observation, omission.text
        first = first or (observation, omission.text)
    return first


def single_positive_corpus(reports: Sequence[str],
                           labels: Sequence[Labels]) -> list[SinglePositive]:
    """Reports to draw normal reports' hard negatives from, with their positive findings,
    sorted (so the draw does not depend on row order).

    Those with exactly one positive finding and no uncertain one. If there are none, the
    reports with the fewest positive findings (uncertain ones allowed) stand in, with a
    warning; if no report has a positive finding, the list is empty.
    """
    positives = [tuple(positive_findings(row)) for row in labels]
    single = [SinglePositive(text, found)
              for text, row, found in zip(reports, labels, positives, strict=True)
              if len(found) == 1 and not any(row.get(o) == UNCERTAIN for o in FINDINGS)]
    if single:
        return sorted(single)
    fewest = min((len(found) for found in positives if found), default=0)
    if fewest == 0:
        log.warning("no report has a positive finding: normal reports get no hard negative")
        return []
    log.warning("no report has exactly one positive finding and no uncertain one; normal "
                "reports draw from those with %d positive finding(s)", fewest)
    return sorted(SinglePositive(text, found)
                  for text, found in zip(reports, positives, strict=True) if len(found) == fewest)


def make_hard_negatives(reports: Sequence[str], row_ids: Sequence[str], seed: int = 0,
                        pool: str = "train",
                        corpus_single_positive: Sequence[SinglePositive] | None = None,
                        labels: pd.DataFrame | None = None,
                        labeler: RuleLabeler | None = None,
                        progress: bool = False) -> pd.DataFrame:
    """Hard negatives of many reports: columns ``chosen``, ``hard_negative``, ``omitted``, one row
    per report in input order.

    Each report is labelled once (``labels``, the rule labeler's labels of ``reports`` with
    the CheXpert column names, skips that). ``corpus_single_positive`` defaults to
    :func:`single_positive_corpus` of ``reports``; pass the whole corpus's when ``reports`` is
    one chunk of it.
    """
    if len(reports) != len(row_ids):
        raise ValueError(f"{len(reports)} reports but {len(row_ids)} row ids")
    if labels is not None and len(labels) != len(reports):
        raise ValueError(f"{len(reports)} reports but {len(labels)} rows of labels")
    labeler = labeler or default_labeler()
    texts = [as_text(r) for r in reports]
    all_mentions: list[Sequence[Mention] | None] = [None] * len(texts)
    if labels is None:
        all_mentions = [labeler.mentions(t)
                        for t in tqdm(texts, disable=not progress, unit="report",
                                      desc="labelling")]
        rows = [aggregate(m) for m in all_mentions]
    else:
        rows = [_labels_row(row) for row in labels.to_dict("records")]
    if corpus_single_positive is None:
        corpus_single_positive = single_positive_corpus(texts, rows)
    out = [make_hard_negative(text, as_text(row_id), seed, pool, corpus_single_positive,
                              labels=row, mentions=mentions, labeler=labeler)
           for text, row_id, row, mentions in tqdm(
               zip(texts, row_ids, rows, all_mentions, strict=True), total=len(texts),
               disable=not progress, unit="report", desc="negating")]
    return pd.DataFrame([[h.chosen, h.hard_negative, h.omitted] for h in out],
                        columns=list(COLUMNS))


def _labels_row(row: Mapping[str, object]) -> dict[str, float]:
    return {o: _as_float(row.get(o)) for o in FINDINGS}


def _as_float(value: object) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
    return number
