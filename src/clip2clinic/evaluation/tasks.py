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
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import pandas as pd

from clip2clinic.evaluation.results import TaskResult

if TYPE_CHECKING:
    from clip2clinic.evaluation.sources import Context, Corpus, ReaderData


class Scored(NamedTuple):
    """A task's result on one dataset (the name its metrics are keyed by) and, for zero-shot,
    its ROC points."""

    dataset: str
    result: TaskResult
    curves: pd.DataFrame | None = None


CorpusRunner = Callable[["Corpus", "Context"], Iterator[Scored]]
DatasetRunner = Callable[["ReaderData", "Context"], Iterator[Scored]]


@dataclass(frozen=True)
class Task:
    """A registered task: its ``--tasks`` name and its runners on a prepared manifest's
    scored split and on a reader dataset (None: it does not run there)."""

    name: str
    on_corpus: CorpusRunner | None = None
    on_dataset: DatasetRunner | None = None
