"""Normal case detection (paper Sec. 5.5, Table 3): a needle in a haystack.

Each normal image queries a pool of its own (normal) report and K abnormal reports; it is
right when its normal report scores highest. The paper uses K = 2,999 abnormal reports of
the test set; with fewer available, all of them are used.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from clip2clinic.evaluation.ranking import block_rows, embedding_matrix, expected_hits
from clip2clinic.evaluation.results import TaskResult, proportion_estimate
from clip2clinic.evaluation.tasks import Scored, Task, with_ids
from clip2clinic.io import InputError, as_text

if TYPE_CHECKING:
    from clip2clinic.evaluation.sources import Context, Corpus

log = logging.getLogger(__name__)

#: The paper's number of abnormal reports per query.
DEFAULT_K = 2999


def score_normal_detection(normal_image_emb: np.ndarray, normal_report_emb: np.ndarray,
                           abnormal_report_emb: np.ndarray, k: int = DEFAULT_K,
                           seed: int = 0, groups: np.ndarray | None = None) -> TaskResult:
    """``normal_detection_acc``: share of normal images whose own report (row i of
    ``normal_report_emb``) outscores all K abnormal reports.

    K = min(``k``, abnormal reports available); one set of K abnormal reports, drawn without
    replacement with ``seed``, is the haystack of every image. Pass each distinct abnormal
    report text once (duplicates only shrink the haystack). A tie with the best abnormal
    report counts as the chance of winning a random tie-break. The interval is Wilson's, by the
    effective number of patients where ``groups`` gives one patient id per image.

    The table has one row per image: the normal report's ``rank`` among the K + 1 candidates
    (1 + abnormal reports scoring strictly higher), ``tied`` (abnormal reports scoring the
    same), ``correct`` and ``candidates`` (K + 1); the per-case results are the same rows.
    """
    images = embedding_matrix("normal_image_emb", normal_image_emb)
    normal = embedding_matrix("normal_report_emb", normal_report_emb, images.shape[1])
    abnormal = embedding_matrix("abnormal_report_emb", abnormal_report_emb, images.shape[1])
    if len(normal) != len(images):
        raise ValueError(f"score_normal_detection: {len(images)} normal images but "
                         f"{len(normal)} normal reports (one per image)")
    if len(abnormal) == 0:
        raise ValueError("score_normal_detection: no abnormal reports to hide the normal one in")
    if k < 1:
        raise ValueError(f"score_normal_detection: k must be at least 1, got {k}")
    size = min(k, len(abnormal))
    if size < k:
        log.warning("normal detection: K = %d abnormal reports per query (only %d available; "
                    "the protocol asks for %d)", size, len(abnormal), k)
    drawn = np.sort(np.random.default_rng(seed).choice(len(abnormal), size, replace=False))
    haystack = abnormal[drawn]

    n = len(images)
    rank, tied, correct = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64), np.zeros(n)
    step = block_rows(size + 1)
    for start in range(0, n, step):
        block = slice(start, min(n, start + step))
        target = np.einsum("ij,ij->i", images[block], normal[block])
        others = images[block] @ haystack.T
        rank[block] = 1 + (others > target[:, None]).sum(axis=1)
        tied[block] = (others == target[:, None]).sum(axis=1)
        correct[block] = expected_hits(np.column_stack([target, others]), target, 1)
    table = pd.DataFrame({"image": np.arange(n), "rank": rank, "tied": tied,
                          "correct": correct, "candidates": size + 1})
    if n == 0:
        log.warning("normal detection: no normal images; reported as NaN")
    return TaskResult({"normal_detection_acc": proportion_estimate(correct, groups)}, table,
                      table.copy())


def normal_rows(corpus: Corpus) -> np.ndarray:
    """Rows whose report is normal: no chosen observation (prepare leaves it empty)."""
    return np.array([not as_text(c) for c in corpus.frame["chosen"]])


def run_normal_detection(corpus: Corpus, context: Context) -> Iterator[Scored]:
    """Normal case detection on a manifest's scored split: its normal images against its
    distinct abnormal reports."""
    normal = normal_rows(corpus)
    if not normal.any() or normal.all():
        raise InputError(f"{corpus.name}: normal case detection needs normal and abnormal studies")
    reports = [as_text(t) for t in corpus.frame["report"]]
    abnormal = sorted({t for t, n in zip(reports, normal, strict=True) if not n})
    normal_reports = [t for t, n in zip(reports, normal, strict=True) if n]
    embed = context.embed
    result = score_normal_detection(
        corpus.images[normal], embed(normal_reports), embed(abnormal), seed=context.seed,
        groups=corpus.patients[normal],
    )  # fmt: skip
    k = int(result.table["candidates"].iloc[0]) - 1 if len(result.table) else 0
    notes = {"k": k, "k_protocol": DEFAULT_K, "normal_images": int(normal.sum()),
             "abnormal_reports": len(abnormal)}  # fmt: skip
    yield Scored(corpus.name, with_ids(result, corpus.ids[normal]), notes=notes)


TASK = Task("normal_detection", on_corpus=run_normal_detection)
