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
from bisect import bisect_left, bisect_right
from itertools import accumulate, groupby, islice
from typing import NamedTuple

from clip2clinic.observations import NEGATIVE, POSITIVE, UNCERTAIN
from clip2clinic.reports.labeler.lexicon import QUALIFIER_CLASSES, Lexicon

_PHASE_STATUS = {"first": UNCERTAIN, "negation": NEGATIVE, "uncertainty": UNCERTAIN}
_NEAR_WORDS = 3
#: Characters: no cue phrase is longer (bounds the search for cues that are mentions).
_LONGEST_CUE = 200
#: Characters before an anatomical name searched for an attributive qualifier ("normal-sized
#: heart"); only spaces and a few words may stand between them.
_ATTRIBUTIVE_WINDOW = 200
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


class _CueGroup(NamedTuple):
    """Cues of one phase, side and reach, sorted by start; ``reach[i]``: the furthest end of
    ``cues[:i + 1]``."""

    side: str
    near: bool
    starts: list[int]
    cues: list[Cue]
    reach: list[int]


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
        self._by_phase: dict[int, dict[str, list[_CueGroup]]] = {}
        self._qualifiers: dict[int, tuple[list[tuple[int, int, str]], list[tuple[int, int]]]] = {}

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
        if near:
            words = _WORD.finditer(self.text, gap_start, gap_end)
            if sum(1 for _ in islice(words, _NEAR_WORDS + 1)) > _NEAR_WORDS:
                return False
            if "," in self.text[gap_start:gap_end]:
                return False
        return self.lexicon.scope_break.search(self.text[gap_start:gap_end]) is None

    def _groups(self, index: int) -> dict[str, list[_CueGroup]]:
        """Clause ``index``'s cues per phase, grouped by (side, near), sorted by start."""
        if index not in self._by_phase:
            by_phase: dict[str, list[_CueGroup]] = {phase: [] for phase in _PHASE_STATUS}
            for (phase, side, near), group in groupby(
                    sorted(self.cues(index), key=lambda c: (c.phase, c.side, c.near, c.start)),
                    key=lambda c: (c.phase, c.side, c.near)):
                cues = list(group)
                reach = list(accumulate((c.end for c in cues), max))
                by_phase[phase].append(_CueGroup(side, near, [c.start for c in cues], cues,
                                                 reach))
            self._by_phase[index] = by_phase
        return self._by_phase[index]

    def _applies(self, group: _CueGroup, start: int, end: int) -> bool:
        """Whether a cue of ``group`` covers or reaches the span ``[start, end)``.

        Only the nearest cue needs checking: the gaps of the others contain its gap (they are
        all suffixes of the text before the span, or prefixes of the text after it), so they
        hold at least its words, commas and scope breaks. O(log n) per span.
        """
        if group.side == "self":
            first = bisect_left(group.starts, start - _LONGEST_CUE)
            last = bisect_right(group.starts, start)
            return any(end <= cue.end for cue in group.cues[first:last])
        if group.side == "after":
            index = bisect_left(group.starts, end)
            return index < len(group.cues) and self._reaches(end, group.starts[index],
                                                             group.near)
        count = bisect_left(group.starts, start)  # cues starting before the span
        if not count:
            return False
        nearest_end = group.reach[count - 1]
        return start < nearest_end or self._reaches(nearest_end, start, group.near)

    def status(self, start: int, end: int) -> int:
        """1 positive, 0 negative, -1 uncertain for the span ``[start, end)`` of the sentence:
        the first phase (pre-negation uncertainty, negation, uncertainty) with a cue that
        covers or reaches it."""
        for phase, groups in self._groups(self.clause_index(start)).items():
            if any(self._applies(group, start, end) for group in groups):
                return _PHASE_STATUS[phase]
        return POSITIVE

    def qualifier(self, start: int, end: int) -> str | None:
        """Size qualifier class of the anatomical name(s) spanning ``[start, end)``, or None.

        Qualifiers and anatomy breaks are found once per clause, so each call is O(log n) plus
        a window of :data:`_ATTRIBUTIVE_WINDOW` characters before the span.
        """
        index = self.clause_index(start)
        clause_start, clause_end = self.clauses[index]
        regex = self.lexicon.qualifier
        attributive = None
        window = max(clause_start, start - _ATTRIBUTIVE_WINDOW)
        for match in regex.finditer(self.text, window, start):
            if _ATTRIBUTIVE_GAP.fullmatch(self.text, match.end(), start):
                attributive = match.lastgroup
        if attributive is not None:
            return attributive
        qualifiers, breaks = self._qualifiers_and_breaks(index)
        after_break = bisect_left(breaks, (end, end))
        limit = breaks[after_break][1] if after_break < len(breaks) else clause_end
        stable = None
        for match_start, _, kind in qualifiers[bisect_left(qualifiers, (end, 0, "")):]:
            if match_start >= limit:  # a break lies between the name and the qualifier
                break
            if kind != "stable":
                return kind
            stable = stable or kind
        return stable

    def _qualifiers_and_breaks(self, index: int
                               ) -> tuple[list[tuple[int, int, str]], list[tuple[int, int]]]:
        """Clause ``index``'s qualifier matches (start, end, class) and anatomy breaks (start,
        end), in text order."""
        if index not in self._qualifiers:
            start, end = self.clauses[index]
            self._qualifiers[index] = (
                [(m.start(), m.end(), m.lastgroup or "")
                 for m in self.lexicon.qualifier.finditer(self.text, start, end)],
                [m.span() for m in self.lexicon.anatomy_break.finditer(self.text, start, end)],
            )  # fmt: skip
        return self._qualifiers[index]


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
