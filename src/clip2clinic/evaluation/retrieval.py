"""Image → report retrieval (paper Sec. 5.7, Table 5).

Every image queries the pool of candidate reports by dot-product similarity of L2-normalised
embeddings. Two families of metrics:

- ``retrieval_r1``, ``retrieval_r5``, ``retrieval_r10`` (Recall@k): share of images whose paired
  report is among the top k; ``retrieval_top5`` is the paper's "@5", the same quantity as
  ``retrieval_r5`` under its summary name. Tied scores are broken at random in expectation
  (:func:`clip2clinic.evaluation.ranking.expected_hits`).
- ``retrieval_precision``, ``retrieval_recall``, ``retrieval_f1``: the CheXpert positives of the
  top-1 retrieved report (the report a retrieval system would answer with) against those of
  the query's own report, per image, then averaged over images (example-based, as CheXbert
  scores of generated reports are). Only 1 is positive: 0 (negative), -1 (uncertain) and NaN
  (not mentioned) are not. An empty set is right only about an empty set: with no retrieved
  positives precision is 1 if the query has none too, else 0; likewise recall; F1 is
  2·TP / (|query| + |retrieved|), and 1 when both are empty.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from clip2clinic.evaluation.ranking import block_rows, embedding_matrix, expected_hits
from clip2clinic.evaluation.results import TaskResult, mean_estimate, proportion_estimate
from clip2clinic.evaluation.tasks import Scored, Task, with_ids
from clip2clinic.io import as_text
from clip2clinic.observations import CHEXPERT_CLASSES

if TYPE_CHECKING:
    from clip2clinic.evaluation.sources import Context, Corpus

log = logging.getLogger(__name__)

POSITIVE = 1.0


def distinct_reports(report_texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """``(keep, index)``: ``keep`` the first row of each distinct text (whitespace runs and
    outer spaces ignored), ``index`` maps every row to its position in ``keep``."""
    canonical = [" ".join(as_text(t).split()) for t in report_texts]
    _, keep, index = np.unique(np.array(canonical, dtype=object), return_index=True,
                               return_inverse=True)
    order = np.argsort(keep)  # keep the candidates in their original order
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return keep[order], rank[index.reshape(-1)]


def score_retrieval(image_emb: np.ndarray, report_emb: np.ndarray, labels_query: np.ndarray,
                    labels_reports: np.ndarray, k: Sequence[int] = (1, 5, 10),
                    pair_index: Sequence[int] | None = None,
                    report_texts: Sequence[str] | None = None, seed: int = 0,
                    groups: Sequence | np.ndarray | None = None) -> TaskResult:
    """Retrieval metrics of images (N×D) against candidate reports (M×D).

    ``pair_index[i]`` is the report row of image i (default: row i, so M = N); several images
    of a study share one report row. ``labels_query`` (N×14) are the labels of each image's
    own report, ``labels_reports`` (M×14) those of the candidates, in CHEXPERT_CLASSES order.
    With ``report_texts`` (M), candidates with identical text become one candidate, so
    retrieving any copy of a templated report ("No acute cardiopulmonary process.") counts as
    retrieving the paired one; without it every row is its own candidate. ``groups`` (a patient
    id per image) make the intervals count patients: Wilson intervals for the hit rates, a
    patient bootstrap for the label scores.

    The table has one row per image: its paired report and retrieved top-1 report (rows of
    the input), the paired report's rank (1 + candidates scoring strictly higher), the hits
    and the label precision/recall/F1; the per-case results are the same rows.
    """
    image = embedding_matrix("image_emb", image_emb)
    reports = embedding_matrix("report_emb", report_emb, image.shape[1])
    n, m = len(image), len(reports)
    if m == 0:
        raise ValueError("score_retrieval: no candidate reports")
    pairs = np.arange(n) if pair_index is None else np.asarray(pair_index, dtype=np.int64)
    if len(pairs) != n or (n and (pairs.min() < 0 or pairs.max() >= m)):
        raise ValueError(f"score_retrieval: pair_index needs {n} rows within [0, {m})")
    query_pos = _positives("labels_query", labels_query, n)
    report_pos = _positives("labels_reports", labels_reports, m)
    rows = np.arange(m)
    if report_texts is not None:
        if len(report_texts) != m:
            raise ValueError(f"score_retrieval: {len(report_texts)} report texts for {m} reports")
        rows, index = distinct_reports(report_texts)
        reports, report_pos, pairs = reports[rows], report_pos[rows], index[pairs]
        log.info("retrieval: %d candidate reports, %d distinct texts", m, len(rows))
    requested = {int(x) for x in k}
    if any(x < 1 for x in requested):
        raise ValueError(f"score_retrieval: k must be at least 1, got {sorted(requested)}")
    ks = sorted(requested | {5})
    hits, ranks, top1 = _rank(image, reports, pairs, ks)
    precision, recall, f1 = _label_scores(query_pos, report_pos[top1])

    metrics = {f"retrieval_r{x}": proportion_estimate(hits[x], groups)
               for x in ks if x in requested}  # fmt: skip
    metrics["retrieval_top5"] = proportion_estimate(hits[5], groups)
    for name, values in (("precision", precision), ("recall", recall), ("f1", f1)):
        metrics[f"retrieval_{name}"] = mean_estimate(values, seed=seed, groups=groups)
    table = pd.DataFrame({
        "image": np.arange(n), "paired_report": rows[pairs], "retrieved_report": rows[top1],
        "rank": ranks, **{f"hit_at_{x}": hits[x] for x in ks},
        "precision": precision, "recall": recall, "f1": f1,
    })
    return TaskResult(metrics, table, table.copy())


def _positives(name: str, labels: np.ndarray, rows: int) -> np.ndarray:
    values = np.asarray(labels, dtype=np.float32)
    if values.shape != (rows, len(CHEXPERT_CLASSES)):
        raise ValueError(f"{name}: expected shape ({rows}, {len(CHEXPERT_CLASSES)}), "
                         f"got {values.shape}")
    return values == POSITIVE


def _rank(image: np.ndarray, reports: np.ndarray, pairs: np.ndarray,
          ks: Sequence[int]) -> tuple[dict[int, np.ndarray], np.ndarray, np.ndarray]:
    """Expected top-k hits per k, the paired report's rank and the top-1 report per image."""
    n = len(image)
    hits = {x: np.zeros(n) for x in ks}
    ranks = np.zeros(n, dtype=np.int64)
    top1 = np.zeros(n, dtype=np.int64)
    step = block_rows(len(reports))
    for start in range(0, n, step):
        block = slice(start, min(n, start + step))
        scores = image[block] @ reports.T
        target = scores[np.arange(len(scores)), pairs[block]]
        for x in ks:
            hits[x][block] = expected_hits(scores, target, x)
        ranks[block] = 1 + (scores > target[:, None]).sum(axis=1)
        top1[block] = scores.argmax(axis=1)
    return hits, ranks, top1


def _label_scores(query: np.ndarray, retrieved: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per-row precision, recall and F1 of ``retrieved`` positives against ``query``'s."""
    tp = (query & retrieved).sum(axis=1).astype(float)
    n_query = query.sum(axis=1).astype(float)
    n_retrieved = retrieved.sum(axis=1).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(n_retrieved > 0, tp / n_retrieved, (n_query == 0).astype(float))
        recall = np.where(n_query > 0, tp / n_query, (n_retrieved == 0).astype(float))
        total = n_query + n_retrieved
        f1 = np.where(total > 0, 2 * tp / total, 1.0)
    return precision, recall, f1


def report_labels(texts: Sequence[str], corpus_labels: np.ndarray, context: Context,
                  ) -> tuple[np.ndarray, str]:  # fmt: skip
    """The CheXpert labels of the candidate reports ``texts`` under the protocol's
    ``labeler``: the manifest's (``corpus_labels``, one row per text) or CheXbert's, and a
    note of which."""
    protocol = context.protocol
    if protocol.labeler == "manifest":
        return corpus_labels, "manifest"
    from clip2clinic.reports.labeler import get_labeler  # torch/transformers only when asked

    labeler = get_labeler("chexbert", protocol.chexbert_checkpoint)
    labels = labeler.label_many(texts).to_numpy(dtype=np.float32)
    return labels, f"chexbert {protocol.chexbert_checkpoint}"


def run_retrieval(corpus: Corpus, context: Context) -> Iterator[Scored]:
    """Retrieval on a manifest's scored split: every image queries the split's reports, one
    candidate per study; an image's labels are those of its own study's report, from the
    protocol's labeler."""
    first = ~corpus.frame["study_id"].duplicated().to_numpy()
    studies = corpus.frame[first].reset_index(drop=True)
    pair_index = corpus.frame["study_id"].map({s: i for i, s in enumerate(studies["study_id"])})
    pair_index = pair_index.to_numpy()
    texts = [as_text(t) for t in studies["report"]]
    labels, labeler = report_labels(texts, corpus.labels[first], context)
    result = with_ids(score_retrieval(
        corpus.images, context.embed(texts), labels[pair_index], labels,
        pair_index=pair_index, report_texts=texts, seed=context.seed, groups=corpus.patients,
    ), corpus.ids)  # fmt: skip
    study = studies["study_id"].map(as_text).to_numpy()
    at = result.cases.columns.get_loc("retrieved_report") + 1
    result.cases.insert(at, "retrieved_study_id", study[result.cases["retrieved_report"]])
    yield Scored(corpus.name, result, notes={"labeler": labeler})


TASK = Task("retrieval", on_corpus=run_retrieval)
