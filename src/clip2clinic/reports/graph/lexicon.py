"""The graph extractor's word lists (``data/``), read once and looked up token by token.

Syntax and classes are described in ``data/README.md``. Each token is classified by its lower-cased
text, then by its singular forms, then by prefix entries; results are cached per word, so a corpus
costs one dictionary look-up per token once its vocabulary has been seen.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

DATA_DIR = Path(__file__).with_name("data")

#: Word-list classes and their files. Entity classes come first.
FILES: dict[str, str] = {
    "anatomy": "anatomy.txt",
    "part": "parts.txt",
    "attribute": "anatomy_attributes.txt",
    "position": "positions.txt",
    "observation": "observations.txt",
    "modifier": "modifiers.txt",
    "unit": "units.txt",
    "locative": "locatives.txt",
    "suggestive": "suggestive.txt",
}
#: Classes looked up by singular form and by prefix (the others match exactly).
INFLECTED = ("anatomy", "part", "attribute", "position", "observation", "modifier")
#: Tokens that join coordinated phrases, and determiners that may precede a phrase.
CONJUNCTIONS = frozenset({"and", "or", ",", "&", "/"})
DETERMINERS = frozenset({"the", "a", "an"})

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
#: "6th rib", "2nd and 3rd ribs": ordinals place an anatomy like a position word.
_ORDINAL = re.compile(r"\d+(?:st|nd|rd|th)")
_SIZE_JOINERS = frozenset({"x", "by", "-", "to"})
#: Longer words are never looked up (a 5,000-character token is no entity).
_MAX_WORD = 40


def singular_forms(word: str) -> list[str]:
    """``word`` and the singulars it may be the plural of ("apices" -> "apex", "apice")."""
    forms = [word]
    if word.endswith("ies") and len(word) > 4:
        forms.append(word[:-3] + "y")
    if word.endswith("ices"):
        forms.append(word[:-4] + "ex")
    if word.endswith("ae"):
        forms.append(word[:-1])
    if word.endswith("es"):
        forms.append(word[:-2])
    if word.endswith("s") and not word.endswith("ss"):
        forms.append(word[:-1])
    return forms


def read_entries(path: Path) -> list[str]:
    """Lower-cased, non-comment, non-empty lines of a word list."""
    entries = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip().lower()
        if line:
            entries.append(" ".join(line.split()))
    return entries


class Match(NamedTuple):
    """A run of tokens ``[first, last]`` (inclusive) that a word list names; role "size" for a
    number with a unit, "conjunction"/"determiner" for joiners, None for other words."""

    role: str | None
    first: int
    last: int


@dataclass
class GraphLexicon:
    """Compiled word lists; build with :func:`load_graph_lexicon`."""

    words: dict[str, str]
    phrases: dict[str, list[tuple[tuple[str, ...], str]]]
    prefixes: dict[str, re.Pattern[str]]
    _cache: dict[str, str | None] = field(default_factory=dict, repr=False)

    def role(self, word: str) -> str | None:
        """Class of one lower-cased word ("conjunction" and "determiner" for the joiners of
        phrases), or None."""
        if word in self._cache:
            return self._cache[word]
        role = None
        if _ORDINAL.fullmatch(word):
            role = "position"
        elif word in CONJUNCTIONS:
            role = "conjunction"
        elif word in DETERMINERS:
            role = "determiner"
        elif len(word) <= _MAX_WORD:
            role = self._lookup(word)
        if len(self._cache) > 200_000:
            self._cache.clear()
        self._cache[word] = role
        return role

    def _lookup(self, word: str) -> str | None:
        role = self.words.get(word)
        if role is not None:
            return role
        for form in singular_forms(word)[1:]:
            role = self.words.get(form)
            if role in INFLECTED:
                return role
        for role, pattern in self.prefixes.items():
            if pattern.match(word):
                return role
        return None

    def matches(self, lower: list[str], first: int, last: int) -> list[Match]:
        """Words ``first..last`` (inclusive) of ``lower`` (a report's lower-cased token texts)
        cut into matches, the longest phrase first; a run of words of no class is one match."""
        out: list[Match] = []
        new = tuple.__new__
        i = first
        while i <= last:
            word = lower[i]
            match = None
            if word in self.phrases:
                match = self._phrase_at(lower, i, last)
            if match is None and word[0].isdigit():
                match = self._size_at(lower, i, last)
            if match is None:
                match = (self._cache[word] if word in self._cache else self.role(word), i)
            if match[0] is None and out and out[-1].role is None:
                out[-1] = new(Match, (None, out[-1].first, match[1]))  # one run of other words
            else:
                out.append(new(Match, (match[0], i, match[1])))
            i = match[1] + 1
        return out

    def _phrase_at(self, lower: list[str], i: int, last: int) -> tuple[str, int] | None:
        for words, role in self.phrases[lower[i]]:
            end = i + len(words) - 1
            if end <= last and all(
                w == lower[i + k] or w in singular_forms(lower[i + k])
                for k, w in enumerate(words)
            ):
                return role, end
        return None

    def _size_at(self, lower: list[str], i: int, last: int) -> tuple[str, int] | None:
        """"1.5 cm", "2 x 3 mm", "1-2 cm": numbers joined by x/by/-/to, then a unit."""
        if not _NUMBER.fullmatch(lower[i]):
            return None
        j = i + 1
        while j + 1 <= last and lower[j] in _SIZE_JOINERS and _NUMBER.fullmatch(lower[j + 1]):
            j += 2
        if j <= last and self.words.get(lower[j]) == "unit":
            return "size", j
        return None


@lru_cache(maxsize=4)
def load_graph_lexicon(data_dir: str | Path = DATA_DIR) -> GraphLexicon:
    """Read the word lists of ``data_dir`` (cached). Raises ``ValueError`` naming both files when
    an entry appears in two of them."""
    data_dir = Path(data_dir)
    words: dict[str, str] = {}
    phrases: dict[str, list[tuple[tuple[str, ...], str]]] = {}
    stems: dict[str, list[str]] = {}
    seen: dict[str, str] = {}
    for role, name in FILES.items():
        for entry in read_entries(data_dir / name):
            if entry in seen and seen[entry] != role:
                raise ValueError(f"{data_dir / name}: {entry!r} is also in {FILES[seen[entry]]}")
            seen[entry] = role
            if entry.endswith("*"):
                if " " in entry or role not in INFLECTED:
                    raise ValueError(f"{data_dir / name}: prefix entry {entry!r} must be one "
                                     "word of an entity class")
                stems.setdefault(role, []).append(re.escape(entry[:-1]))
            elif " " in entry:
                parts = tuple(entry.split())
                phrases.setdefault(parts[0], []).append((parts, role))
            else:
                words[entry] = role
    for options in phrases.values():
        options.sort(key=lambda option: len(option[0]), reverse=True)
    prefixes = {role: re.compile("|".join(sorted(found, key=len, reverse=True)))
                for role, found in stems.items()}
    return GraphLexicon(words, phrases, prefixes)
