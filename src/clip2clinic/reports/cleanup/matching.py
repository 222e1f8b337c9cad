"""Case-insensitive regex matching that is fast: patterns in lower case, matched on a lower-cased
copy of the text, matches read back from the original text.

Python's ``re`` is several times slower with IGNORECASE, so every cleanup pattern is written in
lower case and compiled with :func:`compile`; use :func:`match`, :func:`search`, :func:`sub` and
:func:`split` from this module, never the pattern's own methods, on report text.
"""

from __future__ import annotations

import re
from collections.abc import Callable


def compile(pattern: str) -> re.Pattern[str]:
    """A cleanup pattern, written in lower case (see the module docstring)."""
    return re.compile(pattern)


def lower(text: str) -> str:
    """``text`` lower-cased, character for character (offsets stay valid)."""
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in text)


class Found:
    """A match made on the lower-cased text, read from the original text."""

    __slots__ = ("match", "text")

    def __init__(self, match: re.Match[str], text: str) -> None:
        self.match, self.text = match, text

    def __getitem__(self, group: int | str) -> str | None:
        start, end = self.match.span(group)
        return self.text[start:end] if start >= 0 else None

    def get(self, group: str) -> str | None:
        return self[group] if group in self.match.groupdict() else None

    def start(self, group: int | str = 0) -> int:
        return self.match.start(group)


def match(pattern: re.Pattern[str], text: str) -> Found | None:
    """``pattern.match`` on ``text``, case-insensitively."""
    match = pattern.match(lower(text))
    return Found(match, text) if match else None


def search(pattern: re.Pattern[str], text: str) -> Found | None:
    """``pattern.search`` on ``text``, case-insensitively."""
    match = pattern.search(lower(text))
    return Found(match, text) if match else None


def sub(
    pattern: re.Pattern[str], replacement: str | Callable[[Found], str], text: str
) -> str:
    """``pattern.sub`` matched case-insensitively; ``replacement`` is a string with \\N group
    references or a function of a :class:`Found`."""
    pieces: list[str] = []
    position = 0
    for match in pattern.finditer(lower(text)):
        found = Found(match, text)
        pieces.append(text[position : match.start()])
        if callable(replacement):
            pieces.append(replacement(found))
        else:
            pieces.append(_expand(replacement, found))
        position = match.end()
    if not pieces:
        return text
    pieces.append(text[position:])
    return "".join(pieces)


def _expand(replacement: str, found: Found) -> str:
    if "\\" not in replacement:
        return replacement
    return _GROUP_REFERENCE.sub(lambda ref: found[int(ref[1])] or "", replacement)


def split(pattern: re.Pattern[str], text: str) -> list[str]:
    """``pattern.split`` on ``text``, case-insensitively (no groups kept)."""
    pieces: list[str] = []
    position = 0
    for match in pattern.finditer(lower(text)):
        pieces.append(text[position : match.start()])
        position = match.end()
    pieces.append(text[position:])
    return pieces


_GROUP_REFERENCE = re.compile(r"\\(\d)")
