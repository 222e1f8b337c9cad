"""The labeler's word lists, read from the data files beside this module and compiled once.

Every list becomes one alternation regex per need (one per observation for mentions, one per
phase and direction for cues), so labelling a report scans it a fixed number of times. The file
syntax is described in ``data/README.md``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from clip2clinic.observations import CHEXPERT_CLASSES, slug

DATA_DIR = Path(__file__).with_name("data")

PHASES: tuple[str, ...] = ("first", "negation", "uncertainty")
_DIRECTIONS = {"<": ("before", False), "<<": ("before", True), ">": ("after", False),
               ">>": ("after", True), "=": ("self", False)}
#: Status an anatomical mention gets from its qualifier; None: not a mention after all.
QUALIFIER_CLASSES: dict[str, int | None] = {
    "negative": 0, "uncertain": -1, "positive": 1, "stable": None,
}


def read_lines(path: Path) -> list[str]:
    """Non-empty, non-comment lines of a data file (missing file: no lines)."""
    if not path.is_file():
        return []
    lines = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            lines.append(line)
    return lines


def phrase_regex(phrase: str) -> str:
    """A data-file phrase as regex source: spaces match runs of spaces or hyphens."""
    return phrase.replace(" ", r"[\s\-]+")


def _alternation(sources: list[str]) -> str:
    # Longer sources first, so that at one position the fuller phrase wins.
    return "|".join(f"(?:{s})" for s in sorted(sources, key=len, reverse=True))


def _word_pattern(phrases: list[str]) -> re.Pattern[str] | None:
    """Phrases start at a word boundary and run to the end of their word unless they end in \\b."""
    if not phrases:
        return None
    sources = []
    for phrase in phrases:
        source = phrase_regex(phrase)
        sources.append(source if source.endswith(r"\b") else source + r"\w*")
    return re.compile(rf"(?<!\w)(?:{_alternation(sources)})")


@dataclass(frozen=True)
class CuePattern:
    """Cues of one phase and side ("before", "after" the mention, or the mention "self"):
    groups ``near`` (within three words), ``far`` and ``pseudo``."""

    phase: str
    side: str
    regex: re.Pattern[str]


@dataclass(frozen=True)
class Lexicon:
    """Compiled word lists; build with :func:`load_lexicon`."""

    mentions: dict[str, re.Pattern[str]]
    unmentions: dict[str, re.Pattern[str]]
    anatomy: dict[str, re.Pattern[str]]
    cues: tuple[CuePattern, ...]
    terminator: re.Pattern[str]
    scope_break: re.Pattern[str]
    anatomy_break: re.Pattern[str]
    qualifier: re.Pattern[str]


def _cue_source(source: str) -> str:
    # A cue starts at a word start unless it is punctuation or brings its own look-behind.
    source = phrase_regex(source)
    return source if source.startswith(("(?<", "/")) else r"(?<!\w)" + source


def _load_cues(path: Path) -> tuple[CuePattern, ...]:
    table: dict[tuple[str, str, bool], list[str]] = {}
    pseudo: list[str] = []
    for number, line in enumerate(read_lines(path), 1):
        try:
            phase, direction, source = line.split(maxsplit=2)
        except ValueError:
            raise ValueError(f"{path}:{number}: expected 'PHASE DIRECTION REGEX'") from None
        if phase == "pseudo":
            pseudo.append(_cue_source(source))
            continue
        if phase not in PHASES or direction not in _DIRECTIONS:
            raise ValueError(f"{path}:{number}: unknown phase or direction in {line!r}")
        side, near = _DIRECTIONS[direction]
        table.setdefault((phase, side, near), []).append(_cue_source(source))
    cues = []
    for phase in PHASES:
        for side in ("before", "after", "self"):
            groups = [f"(?P<pseudo>{_alternation(pseudo)})"] if pseudo else []
            for near, name in ((True, "near"), (False, "far")):
                sources = table.get((phase, side, near))
                if sources:
                    groups.append(f"(?P<{name}>{_alternation(sources)})")
            if len(groups) > (1 if pseudo else 0):
                regex = re.compile("|".join(groups))
                cues.append(CuePattern(phase, side, regex))
    return tuple(cues)


def _load_scope(path: Path) -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    kinds: dict[str, list[str]] = {"terminator": [], "break": [], "comma_break": []}
    for number, line in enumerate(read_lines(path), 1):
        kind, _, source = line.partition(" ")
        if kind not in kinds:
            raise ValueError(f"{path}:{number}: unknown scope rule kind {kind!r}")
        kinds[kind].append(phrase_regex(source.strip()))
    comma = rf",\s*(?:{_alternation(kinds['comma_break'])})"
    terminator = re.compile(_alternation(kinds["terminator"]))
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
    mentions, unmentions, anatomy = {}, {}, {}
    for observation in CHEXPERT_CLASSES:
        name = f"{slug(observation)}.txt"
        for table, folder in ((mentions, "mention"), (unmentions, "unmention"),
                              (anatomy, "anatomy")):
            pattern = _word_pattern(read_lines(data_dir / folder / name))
            if pattern is not None:
                table[observation] = pattern
    terminator, scope_break, anatomy_break = _load_scope(data_dir / "scope.txt")
    return Lexicon(
        mentions=mentions,
        unmentions=unmentions,
        anatomy=anatomy,
        cues=_load_cues(data_dir / "triggers.txt"),
        terminator=terminator,
        scope_break=scope_break,
        anatomy_break=anatomy_break,
        qualifier=_load_qualifiers(data_dir / "qualifiers.txt"),
    )
