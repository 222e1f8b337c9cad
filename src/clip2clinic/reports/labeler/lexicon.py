"""The labeler's word lists, read from the data files beside this module and compiled once.

Every list becomes one alternation regex per need (one per observation for mentions, one per
phase and direction for cues), so labelling a report scans it a fixed number of times. The file
syntax is described in ``data/README.md``.
"""

from __future__ import annotations

import re
from collections.abc import Hashable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from clip2clinic.observations import CHEXPERT_CLASSES, slug
from clip2clinic.reports.wordlists import read_lines

DATA_DIR = Path(__file__).with_name("data")

PHASES: tuple[str, ...] = ("first", "negation", "uncertainty")
_DIRECTIONS = {"<": ("before", False), "<<": ("before", True), ">": ("after", False),
               ">>": ("after", True), "=": ("self", False)}
#: Status an anatomical mention gets from its qualifier; None: not a mention after all.
QUALIFIER_CLASSES: dict[str, int | None] = {
    "negative": 0, "uncertain": -1, "positive": 1, "stable": None,
}


def phrase_regex(phrase: str) -> str:
    """A data-file phrase as regex source: spaces match runs of spaces or hyphens."""
    return phrase.replace(" ", r"[\s\-]+")


def _alternation(sources: list[str]) -> str:
    """``sources`` as one alternation, longer first (at one position the fuller phrase wins).

    Sources that start with a plain letter are grouped under it ("n(?:o\\b|ot\\b)"), so the
    regex engine tests the first letter once instead of once per source.
    """
    ordered = sorted(sources, key=len, reverse=True)
    by_letter: dict[str, list[str]] = {}
    rest = []
    for source in ordered:
        if re.match(r"[a-z0-9](?![?*+{])", source):
            by_letter.setdefault(source[0], []).append(source[1:])
        else:
            rest.append(source)
    groups = [f"{letter}(?:{'|'.join(tails)})" for letter, tails in by_letter.items()]
    return "|".join([*groups, *(f"(?:{s})" for s in rest)])


def _word_sources(phrases: list[str]) -> list[str]:
    """Phrases run to the end of their last word unless they end in \\b."""
    sources = [phrase_regex(p) for p in phrases]
    return [s if s.endswith(r"\b") else s + r"\w*" for s in sources]


def _split_sources(sources: list[str]) -> tuple[list[str], list[str]]:
    # Sources start at a word start unless they are punctuation or bring their own look-behind.
    others = [s for s in sources if s.startswith(("(?<=", "/", "[", ","))]
    return [s for s in sources if s not in others], others


def _starts_alternation(sources: list[str], lookahead: bool = False) -> str:
    """One regex for all ``sources``; the word-start test is factored out so that scans skip
    the inside of words quickly. ``lookahead``: match only where some source starts."""
    words, others = _split_sources(sources)
    wrap = "(?={})" if lookahead else "(?:{})"
    parts = [r"(?<!\w)" + wrap.format(_alternation(words))] if words else []
    return "|".join(parts + ([wrap.format(_alternation(others))] if others else []))


class PatternSet:
    """Several patterns scanned in one pass: a union look-ahead finds the positions where any
    of them may start, then each is tried there. Gives, per pattern, the matches its own
    ``finditer`` would give (leftmost, non-overlapping), at a fraction of the cost."""

    def __init__(self, patterns: dict[Hashable, re.Pattern[str]], sources: list[str]):
        self.patterns = patterns
        self.starts = re.compile(_starts_alternation(sources, lookahead=True)) if patterns else None

    def scan(self, text: str, pos: int = 0, endpos: int | None = None
             ) -> list[tuple[Hashable, re.Match[str]]]:
        """(key, match) for every match of every pattern in ``text[pos:endpos]``."""
        if self.starts is None:
            return []
        endpos = len(text) if endpos is None else endpos
        candidates = [m.start() for m in self.starts.finditer(text, pos, endpos)]
        found = []
        if not candidates:
            return found
        for key, pattern in self.patterns.items():
            last_end = -1
            for candidate in candidates:
                if candidate < last_end:
                    continue
                match = pattern.match(text, candidate, endpos)
                if match:
                    found.append((key, match))
                    last_end = match.end()
        return found


@dataclass(frozen=True)
class Lexicon:
    """Compiled word lists; build with :func:`load_lexicon`.

    ``mentions`` is keyed by (kind, observation), kind "mention" or "anatomy"; ``cues`` by
    (phase, side) with side "before", "after" (the mention) or "self"; a cue match's
    ``lastgroup`` is "near" (reaches three words), "far" or "pseudo" (not a cue).
    """

    mentions: PatternSet
    unmentions: dict[str, re.Pattern[str]]
    cues: PatternSet
    terminator: re.Pattern[str]
    scope_break: re.Pattern[str]
    anatomy_break: re.Pattern[str]
    qualifier: re.Pattern[str]


def _load_cues(path: Path) -> PatternSet:
    table: dict[tuple[str, str, bool], list[str]] = {}
    pseudo: list[str] = []
    for number, line in enumerate(read_lines(path), 1):
        try:
            phase, direction, source = line.split(maxsplit=2)
        except ValueError:
            raise ValueError(f"{path}:{number}: expected 'PHASE DIRECTION REGEX'") from None
        if phase == "pseudo":
            pseudo.append(phrase_regex(source))
            continue
        if phase not in PHASES or direction not in _DIRECTIONS:
            raise ValueError(f"{path}:{number}: unknown phase or direction in {line!r}")
        side, near = _DIRECTIONS[direction]
        table.setdefault((phase, side, near), []).append(phrase_regex(source))
    cues = {}
    for phase in PHASES:
        for side in ("before", "after", "self"):
            groups = [f"(?P<pseudo>{_starts_alternation(pseudo)})"] if pseudo else []
            for near, name in ((True, "near"), (False, "far")):
                sources = table.get((phase, side, near))
                if sources:
                    groups.append(f"(?P<{name}>{_starts_alternation(sources)})")
            if len(groups) > (1 if pseudo else 0):
                cues[(phase, side)] = re.compile("|".join(groups))
    every = [s for sources in table.values() for s in sources] + pseudo
    return PatternSet(cues, every)


def _load_scope(path: Path) -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    kinds: dict[str, list[str]] = {"terminator": [], "break": [], "comma_break": []}
    for number, line in enumerate(read_lines(path), 1):
        kind, _, source = line.partition(" ")
        if kind not in kinds:
            raise ValueError(f"{path}:{number}: unknown scope rule kind {kind!r}")
        kinds[kind].append(phrase_regex(source.strip()))
    comma = rf",\s*(?:{_alternation(kinds['comma_break'])})"
    terminator = re.compile(_starts_alternation(kinds["terminator"]))
    scope_break = re.compile(_alternation([*kinds["break"], comma]))
    anatomy_break = re.compile(_alternation([r"\band[\s\-]+(?:the|there|a|an)\b", comma]))
    return terminator, scope_break, anatomy_break


def _load_qualifiers(path: Path) -> re.Pattern[str]:
    table: dict[str, list[str]] = {name: [] for name in QUALIFIER_CLASSES}
    for number, line in enumerate(read_lines(path), 1):
        kind, _, source = line.partition(" ")
        if kind not in table:
            raise ValueError(f"{path}:{number}: unknown qualifier class {kind!r}")
        table[kind].append(phrase_regex(source.strip()))
    groups = [f"(?P<{kind}>{_alternation(sources)})" for kind, sources in table.items() if sources]
    return re.compile(r"(?<!\w)(?:" + "|".join(groups) + ")")


@lru_cache(maxsize=4)
def load_lexicon(data_dir: str | Path = DATA_DIR) -> Lexicon:
    """Read and compile the data files of ``data_dir`` (cached)."""
    data_dir = Path(data_dir)
    mentions, unmentions, every = {}, {}, []
    for observation in CHEXPERT_CLASSES:
        name = f"{slug(observation)}.txt"
        for kind in ("mention", "anatomy"):
            sources = _word_sources(read_lines(data_dir / kind / name))
            if sources:
                mentions[(kind, observation)] = re.compile(_starts_alternation(sources))
                every.extend(sources)
        sources = _word_sources(read_lines(data_dir / "unmention" / name))
        if sources:
            unmentions[observation] = re.compile(_starts_alternation(sources))
    terminator, scope_break, anatomy_break = _load_scope(data_dir / "scope.txt")
    return Lexicon(
        mentions=PatternSet(mentions, every),
        unmentions=unmentions,
        cues=_load_cues(data_dir / "triggers.txt"),
        terminator=terminator,
        scope_break=scope_break,
        anatomy_break=anatomy_break,
        qualifier=_load_qualifiers(data_dir / "qualifiers.txt"),
    )
