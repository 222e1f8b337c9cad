"""What a task is to ``clip2clinic evaluate``: a :class:`Task` entry names the task and its
runners, and a runner yields what it scored.

Every task module (:mod:`~clip2clinic.evaluation.cxr_align`,
:mod:`~clip2clinic.evaluation.retrieval`, :mod:`~clip2clinic.evaluation.adversarial`,
:mod:`~clip2clinic.evaluation.normal_detection`, :mod:`~clip2clinic.evaluation.zeroshot`,
:mod:`~clip2clinic.evaluation.probes`) keeps its scorer (a pure function of embeddings) and
beside it its runners and its ``TASK`` entry; :mod:`clip2clinic.evaluation.evaluate` lists the
entries (its registry) and runs them on every source. A runner takes the loaded data (a
manifest's :class:`~clip2clinic.evaluation.sources.Corpus` or a
:class:`~clip2clinic.evaluation.sources.ReaderData`) and the run's
:class:`~clip2clinic.evaluation.sources.Context` (the embedder and settings), and yields one
:class:`Scored` per dataset it scored: none when the task does not apply, two for RSNA's
zero-shot (``rsna`` and ``rsna_ab``). Data flows one way: sources → task modules → evaluate.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, NamedTuple

import pandas as pd

from clip2clinic.evaluation.results import TaskResult

if TYPE_CHECKING:
    from clip2clinic.evaluation.sources import Context, Corpus, ReaderData


class Scored(NamedTuple):
    """A task's result on one dataset (the name its metrics are keyed by), for zero-shot its
    ROC points, and the protocol choices it used (written into metrics.json)."""

    dataset: str
    result: TaskResult
    curves: pd.DataFrame | None = None
    notes: dict[str, Any] | None = None


#: The id columns that lead every per-case table (``""`` where a dataset has none).
ID_COLUMNS: tuple[str, ...] = ("patient_id", "study_id", "image_id")


def with_ids(result: TaskResult, ids: pd.DataFrame) -> TaskResult:
    """``result`` with its per-case rows led by the ids of the input row each scores: ``ids``
    has one row per scored input row, the cases' ``image`` column indexes it."""
    if result.cases is None:
        return result
    rows = result.cases["image"].to_numpy(dtype=int)
    front = ids.iloc[rows].reset_index(drop=True)
    cases = pd.concat([front, result.cases.drop(columns="image").reset_index(drop=True)], axis=1)
    return replace(result, cases=cases)


CorpusRunner = Callable[["Corpus", "Context"], Iterator[Scored]]
DatasetRunner = Callable[["ReaderData", "Context"], Iterator[Scored]]


@dataclass(frozen=True)
class Task:
    """A registered task: its ``--tasks`` name and its runners on a prepared manifest's
    scored split and on a reader dataset (None: it does not run there)."""

    name: str
    on_corpus: CorpusRunner | None = None
    on_dataset: DatasetRunner | None = None
