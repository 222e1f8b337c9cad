"""Prepare stage 1: the text side of the paper, once per study.

Pass A (per study): report text (findings + impression) → cleanup → CheXpert labels.
Pass B (per study, needs its split's single-positive reports): hard negative (chosen, negated
r^n, omitted r^r), the hard negative's labels, and the graphs of report and negative.

Normal studies draw their hard negative from the single-positive reports of their own split, so
no validation or test report reaches training as a hard negative (and the evaluation splits
draw from their own reports).
"""

from __future__ import annotations

import json
from functools import lru_cache, partial
from pathlib import Path

import numpy as np
import pandas as pd

from clip2clinic.data.prepare.parallel import fingerprint, run_chunks
from clip2clinic.io import as_text
from clip2clinic.observations import CHEXPERT_CLASSES
from clip2clinic.reports.cleanup import clean_report
from clip2clinic.reports.graph import extract_graph
from clip2clinic.reports.labeler import RuleLabeler
from clip2clinic.reports.negation.hard_negatives import (
    SinglePositive,
    make_hard_negative,
    single_positive_corpus,
)
from clip2clinic.reports.sections import mimic_report_text


@lru_cache(maxsize=1)
def _labeler() -> RuleLabeler:
    return RuleLabeler()


def _labels_list(labels: dict[str, float]) -> list[float]:
    return [float(labels[name]) for name in CHEXPERT_CLASSES]


def clean_and_label(studies: pd.DataFrame) -> pd.DataFrame:
    """Pass A on a chunk with columns ``study_id``, ``report_raw``."""
    texts = [mimic_report_text(as_text(raw)) for raw in studies["report_raw"]]
    cleaned = [clean_report(text) for text in texts]
    labels = [_labels_list(_labeler().label(text)) for text in cleaned]
    return pd.DataFrame({"study_id": studies["study_id"].to_numpy(), "report": cleaned,
                         "labels": labels})


def negate_and_graph(studies: pd.DataFrame, seed: int, pool: str,
                     singles: tuple[SinglePositive, ...]) -> pd.DataFrame:
    """Pass B on a chunk with columns ``study_id``, ``report``, ``labels``."""
    out = []
    for study_id, report, labels in studies[["study_id", "report", "labels"]].itertuples(
        index=False
    ):
        as_dict = dict(zip(CHEXPERT_CLASSES, np.asarray(labels, dtype=float), strict=True))
        negative = make_hard_negative(report, study_id, seed, pool, singles, labels=as_dict,
                                      labeler=_labeler())
        out.append({
            "study_id": study_id,
            "chosen": negative.chosen,
            "hard_negative": negative.hard_negative,
            "omitted": negative.omitted,
            "hard_negative_labels": _labels_list(_labeler().label(negative.hard_negative)),
            "graph": json.dumps(extract_graph(report)),
            "hard_negative_graph": json.dumps(extract_graph(negative.hard_negative)),
        })
    return pd.DataFrame(out)


def run_report_stage(studies: pd.DataFrame, cache: Path, seed: int, pool: str,
                     workers: int) -> pd.DataFrame:
    """Both passes over ``studies`` (``study_id``, ``split``, ``report_raw``), cached under
    ``cache``; pass B runs split by split, each with its own split's single-positive reports.

    Returns one row per study with ``report``, ``labels``, ``chosen``, ``hard_negative``,
    ``hard_negative_labels``, ``omitted``, ``graph``, ``hard_negative_graph``.
    """
    studies = studies.sort_values("study_id").reset_index(drop=True)
    cleaned = run_chunks(studies[["study_id", "report_raw"]], clean_and_label, cache,
                         "reports-a", None, workers, desc="cleaning and labelling reports")
    if cleaned.empty:
        return cleaned
    split_of = studies.set_index("study_id")["split"]
    negated = []
    for split in sorted(split_of.astype(str).unique()):
        rows = cleaned[cleaned["study_id"].map(split_of) == split].reset_index(drop=True)
        label_dicts = [dict(zip(CHEXPERT_CLASSES, row, strict=True)) for row in rows["labels"]]
        singles = tuple(single_positive_corpus(list(rows["report"]), label_dicts))
        work = partial(negate_and_graph, seed=seed, pool=pool, singles=singles)
        negated.append(run_chunks(rows, work, cache, f"reports-b-{split}",
                                  (seed, pool, fingerprint(singles)), workers,
                                  desc=f"hard negatives and graphs ({split})"))
    return cleaned.merge(pd.concat(negated, ignore_index=True), on="study_id", how="left",
                         validate="one_to_one")
