"""Prepare stage 1: the text side of the paper, once per study.

Pass A (per study): report text (findings + impression) → cleanup → CheXpert labels.
Pass B (per study, needs the whole corpus's single-positive reports): hard negative (chosen,
negated r^n, omitted r^r), the hard negative's labels, and the graphs of report and negative.
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
from clip2clinic.reports.negation.hard_negatives import make_hard_negative, single_positive_corpus
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
                     singles: tuple[str, ...]) -> pd.DataFrame:
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
            "hard_negative": negative.negated,
            "omitted": negative.omitted,
            "hard_negative_labels": _labels_list(_labeler().label(negative.negated)),
            "graph": json.dumps(extract_graph(report)),
            "hard_negative_graph": json.dumps(extract_graph(negative.negated)),
        })
    return pd.DataFrame(out)


def run_report_stage(studies: pd.DataFrame, cache: Path, seed: int, pool: str,
                     workers: int) -> pd.DataFrame:
    """Both passes over ``studies`` (``study_id``, ``report_raw``), cached under ``cache``.

    Returns one row per study with ``report``, ``labels``, ``chosen``, ``hard_negative``,
    ``hard_negative_labels``, ``omitted``, ``graph``, ``hard_negative_graph``.
    """
    studies = studies.sort_values("study_id").reset_index(drop=True)
    cleaned = run_chunks(studies, clean_and_label, cache, "reports-a", None, workers,
                         desc="cleaning and labelling reports")
    if cleaned.empty:
        return cleaned
    label_dicts = [dict(zip(CHEXPERT_CLASSES, row, strict=True)) for row in cleaned["labels"]]
    singles = tuple(single_positive_corpus(list(cleaned["report"]), label_dicts))
    work = partial(negate_and_graph, seed=seed, pool=pool, singles=singles)
    negated = run_chunks(cleaned, work, cache, "reports-b", (seed, pool, fingerprint(singles)),
                         workers,
                         desc="hard negatives and graphs")
    return cleaned.merge(negated, on="study_id", how="left", validate="one_to_one")
