"""The CheXpert labeler's rules for turning a report's mentions into one label per class."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

from clip2clinic.observations import CHEXPERT_CLASSES, NEGATIVE, POSITIVE, UNCERTAIN
from clip2clinic.reports.labeler.mentions import Mention

NO_FINDING = "No Finding"
SUPPORT_DEVICES = "Support Devices"
CARDIOMEGALY = "Cardiomegaly"
_HEART_FAILURE = re.compile(r"chf|heart[\s\-]+failure")


def merge_statuses(statuses: Iterable[int]) -> int:
    """One label from several mentions: positive beats uncertain beats negative."""
    statuses = set(statuses)
    for status in (POSITIVE, UNCERTAIN, NEGATIVE):
        if status in statuses:
            return status
    raise ValueError("no statuses to merge")


def aggregate(mentions: Iterable[Mention]) -> dict[str, float]:
    """All 14 classes (1.0, 0.0, -1.0, NaN when not mentioned) by the CheXpert labeler's rules.

    - Mentions whose observation is "No Finding" are findings outside the 13 classes; they are
      not labels themselves.
    - "No Finding" is 1 when no mention other than Support Devices is positive or uncertain,
      else not mentioned (never 0).
    - A positive or uncertain "heart failure"/"CHF" also makes Cardiomegaly uncertain.
    """
    found: dict[str, list[int]] = {}
    no_finding = True
    for mention in mentions:
        present = mention.status in (POSITIVE, UNCERTAIN)
        if present and mention.observation != SUPPORT_DEVICES:
            no_finding = False
        if mention.observation == NO_FINDING:
            continue
        if present and _HEART_FAILURE.fullmatch(mention.phrase.lower()):
            found.setdefault(CARDIOMEGALY, []).append(UNCERTAIN)
        found.setdefault(mention.observation, []).append(mention.status)
    labels = {c: float(merge_statuses(found[c])) if c in found else math.nan
              for c in CHEXPERT_CLASSES}
    if no_finding:
        labels[NO_FINDING] = float(POSITIVE)
    return labels
