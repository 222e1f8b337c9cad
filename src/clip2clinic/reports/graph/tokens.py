"""Word tokens of a report, with character offsets, joined by single spaces as RadGraph does.

RadGraph's JSON gives each report as ``text``, its tokens joined by single spaces, and entity
spans as inclusive token indices into ``text.split()``. Punctuation is its own token; decimals
("1.5"), hyphenated words ("ground-glass") and de-identification marks ("XXXX", "___") stay
whole.
"""

from __future__ import annotations

import re
from typing import NamedTuple

_TOKEN = re.compile(r"\d+(?:[.,]\d+)+|\w+(?:[-'’]\w+)*|[^\w\s]")


class Token(NamedTuple):
    text: str
    start: int
    end: int


def tokenize(text: str) -> list[Token]:
    """The tokens of ``text`` in order; none is empty or holds whitespace."""
    words, starts = token_table(text)
    return [Token(w, s, s + len(w)) for w, s in zip(words, starts, strict=True)]


def token_table(text: str) -> tuple[list[str], list[int]]:
    """The tokens of ``text`` as two lists, their texts and their start offsets (faster than
    :func:`tokenize` for the extractor, which needs little else)."""
    return _TOKEN.findall(text), [m.start() for m in _TOKEN.finditer(text)]


def joined(tokens: list[Token]) -> str:
    """RadGraph's ``text``: the tokens joined by single spaces."""
    return " ".join(t.text for t in tokens)
