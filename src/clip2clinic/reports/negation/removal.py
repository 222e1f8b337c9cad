"""Removing every statement about one observation from a report (the paper's r^r).

The unit removed is the sentence: the paper's hard negatives are made after each sentence has
been split to hold one clinical entity. A sentence that still names other observations too
("Cardiomegaly and small pleural effusions.", "Consolidation concerning for pneumonia.") is cut
down to the clause or coordinated item that holds the chosen observation, when removing the
whole sentence would change another observation's label; each candidate cut is checked with the
labeler (the chosen observation gone, every other label of the sentence kept). When no cut
passes, the whole sentence goes.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from itertools import accumulate
from typing import NamedTuple

from clip2clinic.reports.labeler import Mention, RuleLabeler
from clip2clinic.reports.labeler.aggregate import NO_FINDING, aggregate
from clip2clinic.reports.sentences import Span, sentence_spans

Labels = Mapping[str, float]

# Where a sentence may be cut into clauses or coordinated items: punctuation, conjunctions and
# alternatives ("versus", "/"), "with"/"without", and (zero-width, before them) hedges that
# attach a diagnosis to a finding ("... concerning for pneumonia").
_DELIMITER = re.compile(
    r"\s*[,;:]\s*(?:(?:and|or)\s+)?"
    r"|(?<!compatible)(?<!consistent)(?<!keeping)"
    r"\s+(?:and/or|and|or|versus|vs\.?|with|without|plus|as well as|along with|which|that)\s+"
    r"|(?<=[a-z])/(?=[a-z])"
    r"|\s+(?=(?:consistent with|compatible with|concerning for|suspicious for|suggestive of"
    r"|suggesting|representing|likely|probably|possibly|may|could|might|due to|secondary to"
    r"|related to|in keeping with|reflecting|indicating)\b)",
    re.IGNORECASE,
)
# Delimiters that join alternatives ("atelectasis versus scarring"): cut with the alternative.
_ALTERNATIVE = re.compile(r"\s*(?:and/or|or|versus|vs\.?|/)\s*", re.IGNORECASE)
# A negation cue opening a list of findings applies to each: "No A, B or C."
_DISTRIBUTED_NEGATION = re.compile(
    r"\s*(?:there (?:is|are) )?(?:no evidence of|no|without|negative for|free of)\s+",
    re.IGNORECASE)
# A clause left first without its subject: "Concerning for pneumonia." -> "Findings concerning
# for pneumonia."
_SUBJECTLESS = re.compile(
    r"(?:consistent with|compatible with|concerning for|suspicious for|suggestive of|suggesting"
    r"|representing|may|could|might|due to|secondary to|related to|in keeping with|reflecting"
    r"|indicating|appear)\b", re.IGNORECASE)
# A leading item cut before "without" keeps the negation: "A without B." -> "No B."
_KEEP_NEGATION = re.compile(r"\s*without\s+$", re.IGNORECASE)


def belongs_to(mention: Mention, observation: str) -> bool:
    """Whether ``mention`` bears on ``observation``'s label (by the labeler's own aggregation:
    "CHF" is Edema and also makes Cardiomegaly uncertain)."""
    return not math.isnan(aggregate([mention])[observation])


def same_labels(a: Labels, b: Labels) -> bool:
    """Equal label dicts, NaN (not mentioned) equal to NaN."""
    return all((math.isnan(a[k]) and math.isnan(b[k])) or a[k] == b[k] for k in a)


class Omission(NamedTuple):
    """``text``: the report without the observation; ``clean``: every other label (No Finding
    included) is what it was with the observation's own mentions set aside."""

    text: str
    clean: bool


def split_own(mentions: Sequence[Mention], observation: str
              ) -> tuple[list[Mention], list[Mention]]:
    """``mentions`` split into the observation's own and the others. A mention of a finding
    outside the 13 classes that shares words with an own mention is own too ("interstitial
    markings" is Lung Opacity and also such a finding)."""
    is_own = [belongs_to(m, observation) for m in mentions]
    own = [m for m, flag in zip(mentions, is_own, strict=True) if flag]
    by_sentence: dict[int, list[Mention]] = {}
    for mention in own:
        by_sentence.setdefault(mention.sentence, []).append(mention)
    overlaps = {sentence: _overlap_index(group) for sentence, group in by_sentence.items()}
    others = []
    for mention, flag in zip(mentions, is_own, strict=True):
        if flag:
            continue
        index = overlaps.get(mention.sentence)
        if mention.observation == NO_FINDING and index is not None and index(mention):
            own.append(mention)
        else:
            others.append(mention)
    return own, others


def _overlap_index(spans: Sequence[Mention]) -> Callable[[Mention], bool]:
    """A test of whether a mention overlaps any of ``spans``, in O(log n) per call."""
    ordered = sorted(spans, key=lambda m: m.start)
    starts = [m.start for m in ordered]
    reach = list(accumulate((m.end for m in ordered), max))  # furthest end of the first i+1

    def overlaps(mention: Mention) -> bool:
        count = bisect_left(starts, mention.end)  # spans starting before the mention ends
        return count > 0 and reach[count - 1] > mention.start

    return overlaps


def omit_observation(text: str, observation: str, mentions: Sequence[Mention],
                     labeler: RuleLabeler) -> Omission:
    """``text`` without any statement (positive, negative or uncertain) about ``observation``.

    ``mentions`` are ``labeler.mentions(text)``. Sentences are deleted in place, so the rest of
    the report keeps its wording and layout.
    """
    spans = sentence_spans(text)
    own, others = split_own(mentions, observation)
    target = aggregate(others)
    edits = {m.sentence: "" for m in own}
    if not same_labels(aggregate(_kept(others, edits)), target):
        for index in edits:
            found = [m for m in mentions if m.sentence == index]
            if all(m in own for m in found):
                continue
            start, end = spans[index]
            shifted = [replace(m, start=m.start - start, end=m.end - start) for m in found]
            edits[index] = cut_sentence(text[start:end], observation, shifted, labeler)
    clean = same_labels(aggregate(_kept(others, edits)), target)
    return Omission(apply_edits(text, spans, edits), clean)


def _kept(others: Sequence[Mention], edits: Mapping[int, str]) -> list[Mention]:
    """The other mentions left after ``edits``: a cut sentence keeps them all
    (:func:`cut_sentence` checked it)."""
    return [m for m in others if edits.get(m.sentence, True)]


def cut_sentence(sentence: str, observation: str, mentions: Sequence[Mention],
                 labeler: RuleLabeler) -> str:
    """``sentence`` with the clauses or items about ``observation`` cut out, or "" (remove the
    whole sentence) when no cut keeps every other label of the sentence.

    ``mentions`` are the sentence's mentions with offsets into ``sentence``.
    """
    own, others = split_own(mentions, observation)
    target = aggregate(others)
    tried = set()
    for candidate in _candidates(sentence, own, others):
        if candidate in tried:
            continue
        tried.add(candidate)
        if any(ch.isalnum() for ch in candidate) and same_labels(
                labeler.label(candidate), target):
            return candidate
    return ""


def _candidates(sentence: str, own: Sequence[Mention],
                others: Sequence[Mention]) -> Iterator[str]:
    """Cut-down sentences to try, best first: the clause or item holding every own mention,
    with the delimiter before it, then with the one after it (first when that one joins an
    alternative: "A, [B versus ]C."); every clause or item holding one;
    the first item of a list after a negation cue that applies to each ("No [A, ]B or C.")."""
    delimiters = [m.span() for m in _DELIMITER.finditer(sentence)]
    low, high = min(m.start for m in own), max(m.end for m in own)
    before = [d for d in delimiters if d[1] <= low]
    after = [d for d in delimiters if d[0] >= high]
    cuts = []
    if before:
        cuts.append((before[-1][0], after[0][0] if after else len(sentence)))
    if after:
        clause_start = before[-1][1] if before else 0
        with_after = (clause_start, after[0][1])
        if _ALTERNATIVE.fullmatch(sentence, *after[0]):
            cuts.insert(0, with_after)
        else:
            cuts.append(with_after)
    for start, end in cuts:
        if not any(m.start < end and start < m.end for m in others):
            yield _cut(sentence, start, end)
    pieces = _drop_pieces(sentence, delimiters, own, others)
    if pieces is not None:
        yield pieces
    cue = _DISTRIBUTED_NEGATION.match(sentence, before[-1][1] if before else 0, low)
    if after and cue and not any(m.start < after[0][1] and cue.end() < m.end for m in others):
        yield _cut(sentence, cue.end(), after[0][1])


def _pieces_holding(pieces: Sequence[tuple[int, int]], group: Sequence[Mention]) -> set[int]:
    """Indices of the ``pieces`` (sorted, disjoint spans) that overlap a mention of
    ``group``."""
    starts = [start for start, _ in pieces]
    held = set()
    for mention in group:
        index = max(bisect_right(starts, mention.start) - 1, 0)
        while index < len(pieces) and pieces[index][0] < mention.end:
            if mention.start < pieces[index][1]:
                held.add(index)
            index += 1
    return held


def _drop_pieces(sentence: str, delimiters: Sequence[tuple[int, int]], own: Sequence[Mention],
                 others: Sequence[Mention]) -> str | None:
    """``sentence`` without every piece (from one delimiter to the next) that holds an own
    mention; None when such a piece also holds another mention or nothing would be left."""
    bounds = [0, *(start for start, _ in delimiters), len(sentence)]
    pieces = [(a, b) for a, b in zip(bounds, bounds[1:], strict=False) if b > a]

    own_pieces = _pieces_holding(pieces, own)
    kept = [p for i, p in enumerate(pieces) if i not in own_pieces]
    if not kept or own_pieces & _pieces_holding(pieces, others):
        return None
    if kept[0][0] > 0:  # the first piece left loses its leading delimiter
        delimiter_end = dict(delimiters)[kept[0][0]]
        kept[0] = (delimiter_end, kept[0][1])
    return _join(sentence, kept)


def _cut(sentence: str, start: int, end: int) -> str:
    """``sentence`` without ``[start, end)``."""
    return _join(sentence, [r for r in ((0, start), (end, len(sentence))) if r[1] > r[0]])


def _join(sentence: str, keep: Sequence[tuple[int, int]]) -> str:
    """The ranges ``keep`` of ``sentence`` as one sentence: capitalised ("without B" left first
    becomes "No B"), ending with the sentence's final punctuation."""
    if not keep:
        return ""
    text = "".join(sentence[a:b] for a, b in keep)
    if keep[0][0] > 0:
        text = text.lstrip()
        if _KEEP_NEGATION.search(sentence[:keep[0][0]]):
            text = "No " + text
        elif _SUBJECTLESS.match(text):
            text = "Findings " + text
        text = text[:1].upper() + text[1:]
    if keep[-1][1] < len(sentence):
        ending = sentence.rstrip()[-1:]
        text = text.rstrip(" ,;:") + (ending if ending in ".!?" else "")
    return text.strip()


def apply_edits(text: str, spans: Sequence[Span], edits: Mapping[int, str]) -> str:
    """``text`` with sentence ``i`` replaced by ``edits[i]``, or deleted where that is "".

    A deleted sentence takes what follows it up to the next sentence (its punctuation, the next
    list number) with it; trailing deleted sentences leave nothing behind the last kept one.
    """
    last_kept = max((i for i in range(len(spans)) if edits.get(i) != ""), default=-1)
    out = []
    position = 0
    for index, (start, end) in enumerate(spans):
        if index not in edits:
            continue
        if index > last_kept:
            stop = spans[last_kept].end if last_kept >= 0 else 0
            out.append(text[position:max(stop, position)])
            position = len(text)
            break
        out.append(text[position:start])
        if edits[index]:
            out.append(edits[index])
            position = end
        else:
            position = spans[index + 1].start
    out.append(text[position:])
    result = "".join(out).strip()
    return result if any(ch.isalnum() for ch in result) else ""
