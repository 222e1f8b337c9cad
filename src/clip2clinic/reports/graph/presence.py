"""Sentences, clauses and presence of spans of one report, by the CheXpert labeler's rules.

A thin adapter over the labeler's own analysis: :meth:`ReportScope.status` is
``RuleLabeler.status_of`` (same negation and uncertainty scope rules), but one report's
sentences and cues are found once and shared by all of its spans, where ``status_of`` would
find them again for every span.
"""

from __future__ import annotations

from clip2clinic.reports.labeler import RuleLabeler
from clip2clinic.reports.labeler.mentions import Analysis


class ReportScope:
    """One report as the labeler sees it: sentences, their clauses, the status of any span."""

    def __init__(self, text: str, labeler: RuleLabeler):
        self._analysis = Analysis(text, labeler.lexicon)

    @property
    def sentences(self) -> list[tuple[int, int]]:
        """Character spans of the sentences (``clip2clinic.reports.sentences``)."""
        return self._analysis.sentences

    def clauses(self, sentence: int) -> list[tuple[int, int]]:
        """Character spans of the clauses of sentence ``sentence`` (cut at "but", ";", ...)."""
        return self._analysis.scope(sentence).clauses

    def status(self, start: int, end: int) -> int:
        """1 positive, 0 negative, -1 uncertain for ``text[start:end]``, as ``status_of``."""
        sentence = self._analysis.sentence_of(start, end)
        if sentence is None:
            return 1
        return self._analysis.scope(sentence).status(start, end)
