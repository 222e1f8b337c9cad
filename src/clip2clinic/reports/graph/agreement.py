"""How well graphs agree with the CheXpert labeler's mentions of the same reports.

For every labeler mention (a phrase such as "pleural effusion" with status 1, 0 or -1), the
graph's observation entities over the same characters should carry the matching presence class
(OBS-DP, OBS-DA, OBS-U). Mentions that the graph covers with anatomy only ("heart size", whose
status the graph states as "normal"/"enlarged" located at the heart) are counted apart.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from clip2clinic.io import as_text
from clip2clinic.reports.graph.schema import ANATOMY, STATUS_LABEL, Graph
from clip2clinic.reports.graph.tokens import tokenize
from clip2clinic.reports.labeler import RuleLabeler


@dataclass
class Agreement:
    """Counts over labeler mentions; ``misses`` keeps up to 50 examples of disagreement."""

    mentions: int = 0
    agreeing: int = 0
    uncovered: int = 0
    anatomical: int = 0
    misses: list[tuple[str, int, list[str], str]] = field(default_factory=list)

    @property
    def coverage(self) -> float:
        """Share of mentions with an observation entity over them."""
        return 1 - self.uncovered / self.mentions if self.mentions else 1.0

    @property
    def rate(self) -> float:
        """Share of mentions whose observation entity has the labeler's presence class."""
        return self.agreeing / self.mentions if self.mentions else 1.0


def labeler_agreement(texts: Iterable[str], graphs: Iterable[Graph],
                      labeler: RuleLabeler | None = None) -> Agreement:
    """Agreement of ``graphs`` (RadGraph JSON of ``texts``, from our tokeniser) with the
    labeler's mentions of ``texts``."""
    labeler = labeler or RuleLabeler()
    result = Agreement()
    for text, graph in zip(texts, graphs, strict=True):
        text = as_text(text)
        tokens = tokenize(text)
        spans = [(tokens[e["start_ix"]].start, tokens[e["end_ix"]].end, e["label"])
                 for e in graph["entities"].values()]
        for mention in labeler.mentions(text):
            over = [label for start, end, label in spans
                    if start < mention.end and end > mention.start]
            observed = [label for label in over if label != ANATOMY]
            if over and not observed:
                result.anatomical += 1
                continue
            result.mentions += 1
            if not observed:
                result.uncovered += 1
            elif STATUS_LABEL[mention.status] in observed:
                result.agreeing += 1
                continue
            if len(result.misses) < 50:
                context = text[max(0, mention.start - 40):mention.end + 40]
                result.misses.append((mention.phrase, mention.status, observed, context))
    return result
