"""The offline rule-based CheXpert labeler."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from clip2clinic.io import as_text
from clip2clinic.observations import CHEXPERT_CLASSES
from clip2clinic.reports.labeler.aggregate import aggregate
from clip2clinic.reports.labeler.lexicon import DATA_DIR, load_lexicon
from clip2clinic.reports.labeler.mentions import Analysis, Mention


class RuleLabeler:
    """CheXpert labels from report text: mention lexicon, clause-scoped negation/uncertainty,
    CheXpert aggregation. ``data_dir`` swaps in other word lists (same file layout)."""

    def __init__(self, data_dir: str | Path = DATA_DIR):
        self.lexicon = load_lexicon(Path(data_dir))
        self._last: Analysis | None = None  # status_of asks many spans of one text in a row

    def mentions(self, text: str) -> list[Mention]:
        """Every mention in ``text`` with its status, in text order."""
        return Analysis(as_text(text), self.lexicon).mentions()

    def label(self, text: str) -> dict[str, float]:
        """All 14 classes: 1.0, 0.0, -1.0, or NaN (not mentioned), after CheXpert aggregation.

        As in the CheXpert labeler, a report that mentions nothing (also an empty one) is
        "No Finding"; ``clip2clinic label`` leaves blank reports blank instead (see
        :func:`clip2clinic.reports.sections.is_blank_report`).
        """
        return aggregate(self.mentions(text))

    def label_many(self, texts: Iterable[str], progress: bool = False) -> pd.DataFrame:
        """One row per text, the 14 columns in :data:`CHEXPERT_CLASSES` order."""
        rows = [self.label(t) for t in tqdm(texts, disable=not progress, unit="report")]
        return pd.DataFrame(rows, columns=list(CHEXPERT_CLASSES), dtype=float)

    def status_of(self, text: str, start: int, end: int) -> int:
        """Status (1, 0, -1) of the span ``text[start:end]`` under the same negation and
        uncertainty scope rules; a span outside every sentence is positive.

        For callers (the graph extractor) that find their own entities and need their presence;
        consecutive calls on the same text share its sentence and cue analysis.
        """
        text = as_text(text)
        if self._last is None or self._last.text != text:
            self._last = Analysis(text, self.lexicon)
        analysis = self._last
        sentence = analysis.sentence_of(start, end)
        if sentence is None:
            return 1
        return analysis.scope(sentence).status(start, end)
