"""Sentence splitting for radiology reports.

Reports end sentences with periods, but also with line breaks, list numbers ("1. ... 2. ...")
and nothing at all; periods also occur inside numbers ("1.5 cm") and abbreviations ("approx.").
Spans are returned as character offsets so callers can map findings back to the text.
"""

from __future__ import annotations

import re
from typing import NamedTuple

_ABBREVIATIONS = ("approx", "dr", "e.g", "i.e", "vs", "cf", "no", "fig", "st", "mr", "mrs")

# A boundary is: sentence punctuation followed by space/end, a blank or broken line, or the
# start of a list item ("2." / "2)") after whitespace.
_BOUNDARY = re.compile(r"[.!?;]+(?=\s|$)|\n|(?<=\s)(?=\d{1,2}[.)]\s)")
_ABBREV_ALTERNATION = "|".join(re.escape(a) for a in _ABBREVIATIONS)
_ENDING_ABBREV = re.compile(rf"\b(?:{_ABBREV_ALTERNATION})\.$", re.I)
_LIST_NUMBER_ONLY = re.compile(r"\s*\d{1,2}[.)]")
_LIST_NUMBER = re.compile(r"^\s*\d{1,2}[.)]\s+")


class Span(NamedTuple):
    start: int
    end: int


def sentence_spans(text: str) -> list[Span]:
    """Character spans of the sentences of ``text`` (stripped, list numbers removed, non-empty).

    "No" is only an abbreviation before a number ("No. 3"), so "No effusion." still ends a
    sentence.
    """
    spans: list[Span] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        end = match.end()
        piece = text[start:end]
        if _LIST_NUMBER_ONLY.fullmatch(piece):
            continue
        tail = piece[-9:]  # the longest abbreviation, its period and a line break
        if _ENDING_ABBREV.search(tail) and not tail.lower().rstrip().endswith("no."):
            continue
        if piece.lower().rstrip().endswith(" no.") and re.match(r"\s*\d", text[end:]):
            continue
        _append(spans, text, start, end)
        start = end
    _append(spans, text, start, len(text))
    return spans


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text`` as strings (see :func:`sentence_spans`)."""
    return [text[s:e] for s, e in sentence_spans(text)]


def _append(spans: list[Span], text: str, start: int, end: int) -> None:
    piece = text[start:end]
    number = _LIST_NUMBER.match(piece)
    if number:
        start += number.end()
        piece = text[start:end]
    stripped = piece.strip(" \t\r\n;")
    if not stripped or not any(ch.isalnum() for ch in stripped):
        return
    lead = len(piece) - len(piece.lstrip(" \t\r\n;"))
    spans.append(Span(start + lead, start + lead + len(stripped)))
