"""Negation and uncertainty of a span of one sentence, by clause scope (no parser).

A sentence is cut into clauses at terminators ("but", "however", "which", ";" ...). Inside a
clause, a cue before a mention ("no", "possible") reaches forward to it unless a scope break
(a verb such as "is", ", the", "and there") lies between them; a cue after a mention ("is not
seen", "cannot be excluded") reaches back over a gap that holds no verb. Cues marked *near*
reach three words at most. The CheXpert labeler's order decides: pre-negation uncertainty, then
negation, then uncertainty; no cue means positive. A few mentions are cues themselves
("vascular congestion" is uncertain edema unless negated).

Anatomical mentions ("heart size", "mediastinum") name no finding by themselves; their status
comes from a size qualifier ("normal", "enlarged", "borderline", "stable") placed right before
them or first after them in the clause. Coordinated names ("heart size and mediastinal contours
are normal") share one qualifier.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from typing import NamedTuple

from clip2clinic.observations import NEGATIVE, POSITIVE, UNCERTAIN
from clip2clinic.reports.labeler.lexicon import QUALIFIER_CLASSES, Lexicon

_PHASE_STATUS = {"first": UNCERTAIN, "negation": NEGATIVE, "uncertainty": UNCERTAIN}
_NEAR_WORDS = 3
_WORD = re.compile(r"[a-z0-9]+")
# What may stand between a qualifier and the anatomy it precedes: "normal-sized heart",
# "enlargement of the cardiac silhouette".
_ATTRIBUTIVE_GAP = re.compile(r"(?:[\s\-]+|sized?\b|appearing\b|in size\b|size\b|of\b|the\b)*")
# What may join coordinated anatomical names: "heart size and the mediastinal contours".
_COORDINATION_GAP = re.compile(r"[\s,]*(?:(?:and|or|&)[\s,]+)?(?:the\s+)?")


class Cue(NamedTuple):
    phase: str
    side: str
    near: bool
    start: int
    end: int


class SentenceScope:
    """Clauses and cues of one sentence of a lower-cased text; cues are found lazily per clause."""

    def __init__(self, text: str, start: int, end: int, lexicon: Lexicon):
        self.text = text
        self.lexicon = lexicon
        self.clauses: list[tuple[int, int]] = []
        clause_start = start
        for match in lexicon.terminator.finditer(text, start, end):
            self.clauses.append((clause_start, match.start()))
            clause_start = match.end()
        self.clauses.append((clause_start, end))
        self._starts = [s for s, _ in self.clauses]
        self._cues: dict[int, list[Cue]] = {}

    def clause_index(self, position: int) -> int:
        """Index of the clause holding ``position`` (terminators go to the clause after them)."""
        return max(bisect_right(self._starts, position) - 1, 0)

    def cues(self, index: int) -> list[Cue]:
        """Every non-pseudo cue of clause ``index``, found once."""
        if index not in self._cues:
            start, end = self.clauses[index]
            self._cues[index] = [
                Cue(phase, side, match.lastgroup == "near", match.start(), match.end())
                for (phase, side), match in self.lexicon.cues.scan(self.text, start, end)
                if match.lastgroup != "pseudo"
            ]
        return self._cues[index]

    def _reaches(self, gap_start: int, gap_end: int, near: bool) -> bool:
        gap = self.text[gap_start:gap_end]
        if near and (len(_WORD.findall(gap)) > _NEAR_WORDS or "," in gap):
            return False
        return self.lexicon.scope_break.search(gap) is None

    def status(self, start: int, end: int) -> int:
        """1 positive, 0 negative, -1 uncertain for the span ``[start, end)`` of the sentence."""
        cues = self.cues(self.clause_index(start))
        for phase in _PHASE_STATUS:
            for cue in cues:
                if cue.phase != phase:
                    continue
                if cue.side == "self":
                    if cue.start <= start and end <= cue.end:
                        return _PHASE_STATUS[phase]
                elif cue.side == "after":
                    if cue.start >= end and self._reaches(end, cue.start, cue.near):
                        return _PHASE_STATUS[phase]
                elif cue.start < start and (
                    start < cue.end or self._reaches(cue.end, start, cue.near)
                ):
                    return _PHASE_STATUS[phase]
        return POSITIVE

    def qualifier(self, start: int, end: int) -> str | None:
        """Size qualifier class of the anatomical name(s) spanning ``[start, end)``, or None."""
        clause_start, clause_end = self.clauses[self.clause_index(start)]
        regex = self.lexicon.qualifier
        attributive = None
        for match in regex.finditer(self.text, clause_start, start):
            if _ATTRIBUTIVE_GAP.fullmatch(self.text, match.end(), start):
                attributive = match.lastgroup
        if attributive is not None:
            return attributive
        stable = None
        for match in regex.finditer(self.text, end, clause_end):
            if self.lexicon.anatomy_break.search(self.text, end, match.start()):
                break
            if match.lastgroup != "stable":
                return match.lastgroup
            stable = stable or match.lastgroup
        return stable


def coordinated_groups(spans: list[tuple[int, int, int]], text: str) -> list[list[int]]:
    """Indices of ``spans`` ((start, end, sentence), sorted by start) grouped when they share a
    sentence and only "and", "or" or a comma joins them."""
    groups: list[list[int]] = []
    group_end, group_sentence = -1, -1
    for index, (start, end, sentence) in enumerate(spans):
        joined = start < group_end or _COORDINATION_GAP.fullmatch(text, group_end, start)
        if groups and sentence == group_sentence and joined:
            groups[-1].append(index)
            group_end = max(group_end, end)
        else:
            groups.append([index])
            group_end, group_sentence = end, sentence
    return groups


def qualifier_status(kind: str | None) -> int | None:
    """Status a qualifier class gives an anatomical mention (None: no mention)."""
    return None if kind is None else QUALIFIER_CLASSES[kind]
