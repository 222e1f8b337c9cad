"""Finding the mentions of the 14 observations in a report, with their status."""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

from clip2clinic.reports.labeler.lexicon import Lexicon
from clip2clinic.reports.labeler.scope import (
    SentenceScope,
    coordinated_groups,
    qualifier_status,
)
from clip2clinic.reports.sentences import sentence_spans


@dataclass(frozen=True)
class Mention:
    """One mention of an observation in a report.

    ``observation`` is a CheXpert class name; "No Finding" marks a finding outside the 13
    classes (emphysema, granuloma, scoliosis...), whose presence switches "No Finding" off.
    ``start``/``end`` are character offsets into the text given to the labeler; ``sentence``
    indexes :func:`clip2clinic.reports.sentences.sentence_spans` of that text; ``status`` is
    1 positive, 0 negative, -1 uncertain.
    """

    observation: str
    phrase: str
    start: int
    end: int
    sentence: int
    status: int


def lower_same_length(text: str) -> str:
    """``text.lower()`` with every character kept one character long (offsets stay valid)."""
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    return "".join(c if len(c.lower()) != 1 else c.lower() for c in text)


class Analysis:
    """Sentences and scopes of one report, shared by mention finding and span queries."""

    def __init__(self, text: str, lexicon: Lexicon):
        self.text = text
        self.lower = lower_same_length(text)
        self.lexicon = lexicon
        self.sentences = sentence_spans(text)
        self._starts = [s for s, _ in self.sentences]
        self._scopes: dict[int, SentenceScope] = {}

    def sentence_of(self, start: int, end: int) -> int | None:
        """Index of the sentence holding ``[start, end)``, or None."""
        index = bisect_right(self._starts, start) - 1
        if index >= 0 and end <= self.sentences[index][1]:
            return index
        return None

    def scope(self, index: int) -> SentenceScope:
        if index not in self._scopes:
            start, end = self.sentences[index]
            self._scopes[index] = SentenceScope(self.lower, start, end, self.lexicon)
        return self._scopes[index]

    def _matches(self) -> dict[str, list[tuple[str, int, int, int]]]:
        """Mention and anatomy matches by kind: (observation, start, end, sentence)."""
        found: dict[str, list[tuple[str, int, int, int]]] = {"mention": [], "anatomy": []}
        blocked: dict[tuple[str, int], list[tuple[int, int]]] = {}
        for (kind, observation), match in self.lexicon.mentions.scan(self.lower):
            start, end = match.span()
            sentence = self.sentence_of(start, end)
            if sentence is None or start == end:
                continue
            key = (observation, sentence)
            if key not in blocked:
                unmention = self.lexicon.unmentions.get(observation)
                blocked[key] = ([m.span() for m in unmention.finditer(
                    self.lower, *self.sentences[sentence])] if unmention else [])
            if any(start < b_end and end > b_start for b_start, b_end in blocked[key]):
                continue
            found[kind].append((observation, start, end, sentence))
        return found

    def mentions(self) -> list[Mention]:
        """Every mention with its status, in text order."""
        matches = self._matches()
        out = []
        for observation, start, end, sentence in matches["mention"]:
            status = self.scope(sentence).status(start, end)
            out.append(Mention(observation, self.text[start:end], start, end, sentence, status))
        out.extend(self._anatomy_mentions(matches["anatomy"]))
        out.sort(key=lambda m: (m.start, m.end, m.observation))
        return out

    def _anatomy_mentions(self, found: list[tuple[str, int, int, int]]) -> list[Mention]:
        found = sorted(found, key=lambda f: (f[1], f[2]))
        out = []
        for group in coordinated_groups([(s, e, n) for _, s, e, n in found], self.lower):
            members = [found[i] for i in group]
            sentence = members[0][3]
            scope = self.scope(sentence)
            kind = scope.qualifier(members[0][1], max(m[2] for m in members))
            if qualifier_status(kind) is None:
                continue
            for observation, start, end, _ in members:
                status = qualifier_status(kind)
                if kind == "positive":
                    status = scope.status(start, end)
                out.append(Mention(observation, self.text[start:end], start, end, sentence,
                                   status))
        return out
