"""Checking hard negatives with the labeler: does ``hard_negative`` differ from the report at
exactly the chosen observation, and does ``omitted`` no longer mention it?

Used by benchmarks/score_negation_iu.py and the tests; not part of the library.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from clip2clinic.io import as_text, read_table
from clip2clinic.observations import FINDINGS, NEGATIVE, POSITIVE, UNCERTAIN
from clip2clinic.reports.labeler import Mention, RuleLabeler
from clip2clinic.reports.labeler.aggregate import aggregate
from clip2clinic.reports.negation.removal import belongs_to


def iu_texts(path: str | Path) -> pd.DataFrame:
    """The IU X-ray reports (``indiana_reports.csv``): columns ``uid`` and ``text`` (findings +
    " " + impression)."""
    reports = read_table(path, required=["uid", "findings", "impression"])
    text = [f"{as_text(f)} {as_text(i)}".strip()
            for f, i in zip(reports["findings"], reports["impression"], strict=True)]
    return pd.DataFrame({"uid": reports["uid"].astype(str), "text": text})


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def score_hard_negatives(reports: Sequence[str], negatives: pd.DataFrame,
                         labeler: RuleLabeler) -> pd.DataFrame:
    """One row per report: the report, the hard negative's columns and, for abnormal rows,
    ``ok`` (the criterion), its parts ``chosen_negated`` (positive or, for an uncertain-only
report, uncertain before; negative after), ``others_kept``, ``omitted_clean``,
    ``changed`` (the other findings whose label changed), ``failure`` (a category) and
    ``no_finding_on``; for normal rows ``single_positive`` (the drawn report has exactly one
    positive finding). Every text is labelled from scratch."""
    report_mentions = [labeler.mentions(r) for r in reports]
    report_labels = pd.DataFrame([aggregate(m) for m in report_mentions])
    negated_labels = labeler.label_many(negatives["hard_negative"])
    omitted_labels = labeler.label_many(negatives["omitted"])
    rows = []
    for i, (report, chosen) in enumerate(zip(reports, negatives["chosen"], strict=True)):
        before, after, omitted = (report_labels.iloc[i], negated_labels.iloc[i],
                                  omitted_labels.iloc[i])
        row = {"report": report, "chosen": chosen,
               "hard_negative": negatives["hard_negative"].iloc[i],
               "omitted": negatives["omitted"].iloc[i]}
        if chosen:
            changed = [o for o in FINDINGS if o != chosen and not _same(before[o], after[o])]
            row.update(
                chosen_negated=before[chosen] in (POSITIVE, UNCERTAIN)
                and after[chosen] == NEGATIVE,
                others_kept=not changed,
                omitted_clean=math.isnan(omitted[chosen]),
                changed=", ".join(changed),
                no_finding_on=math.isnan(before["No Finding"]) and after["No Finding"] == 1,
            )
            row["ok"] = row["chosen_negated"] and row["others_kept"] and row["omitted_clean"]
            row["failure"] = _failure(row, changed, report_mentions[i])
        else:
            row["single_positive"] = sum(after[o] == POSITIVE for o in FINDINGS) == 1
        rows.append(row)
    return pd.DataFrame(rows)


def _failure(row: dict, changed: Sequence[str], mentions: Sequence[Mention]) -> str:
    """Why a row fails: which part, and for a changed finding how it was tied to the chosen
    one: the same words name both ("nodular opacity"), or one sentence that no cut could
    separate ("opacity, atelectasis versus infiltrate"), or neither."""
    if row["ok"]:
        return ""
    parts = []
    if not row["omitted_clean"]:
        parts.append("chosen still mentioned in omitted")
    if not row["chosen_negated"]:
        parts.append("chosen not negative in negated")
    if changed:
        own = [m for m in mentions if belongs_to(m, row["chosen"])]
        tied = [m for m in mentions if m.observation in changed]
        if any(o.start < t.end and t.start < o.end for o in own for t in tied):
            parts.append("another finding changed: named by the same words")
        elif {o.sentence for o in own} & {t.sentence for t in tied}:
            parts.append("another finding changed: in a sentence no cut could separate")
        else:
            parts.append("another finding changed: other")
    return "; ".join(parts)
