"""Step 2 of the cleanup: remove comparison with earlier studies from one clause.

Pure comparison sentences are dropped ("No significant interval change."), comparison modifiers
are stripped ("slightly increased left effusion" -> "left effusion"), statements of resolution
become absence ("X has resolved" -> "No X."), every negation of a finding is kept, and sentences
that are not about the image (communication of results, follow-up recommendations) go.
"""

from __future__ import annotations

from clip2clinic.reports.cleanup import matching as lc
from clip2clinic.reports.cleanup.patterns import (
    CHANGE,
    CHANGE_QUALIFIERS,
    CONDITIONAL,
    DETERMINER,
    GONE_PREFIX,
    GONE_SUFFIX,
    HEDGES,
    NOT_ABOUT_IMAGE,
    PARTIAL_PREFIX,
    PARTIAL_SUFFIX,
    PASSIVE_END,
    REMOVALS,
    RESOLVING,
    SEVERITY,
    SPACES,
    SPATIAL_WORSE,
    TEMPORAL_GATE,
    UNPLACED_RESOLUTION,
    WORST,
)
from clip2clinic.reports.cleanup.tidy import has_content, lower_first, trim


def remove_temporal(sentence: str) -> list[str]:
    """Step 2 on one clause: the clause without comparison content (0, 1 or 2 clauses).

    Returns [] for a pure comparison, a communication of results or a follow-up
    recommendation; "X has resolved" gives ["No X"].
    """
    if "  " in sentence or "\t" in sentence:
        sentence = SPACES.sub(" ", sentence)
    text = _without_aside(sentence.strip().rstrip(".!;: "))
    lowered = text.lower()
    if not TEMPORAL_GATE.search(lowered):
        return [text] if text else []
    if CONDITIONAL.match(lowered):
        return []
    if "wors" in lowered:
        text = lc.sub(WORST, "most marked", lc.sub(SPATIAL_WORSE, r"\1\2greater\3", text))
    clauses = _resolution_to_absence(_strip_comparisons(text))
    return [c for c in clauses if has_content(c) and not lc.search(UNPLACED_RESOLUTION, c)]


def _without_aside(text: str) -> str:
    """``text`` cut before a recommendation or communication ("..., followup recommended")."""
    lowered = lc.lower(text)
    match = NOT_ABOUT_IMAGE.search(lowered)
    if not match:
        return text
    if PASSIVE_END.search(lowered, 0, match.start()):  # "A CT is recommended": all of it
        return ""
    comma = text.rfind(",", 0, match.start())
    return text[: comma if comma >= 0 else match.start()]


def _resolution_to_absence(text: str) -> list[str]:
    match = lc.match(PARTIAL_PREFIX, text) or lc.match(PARTIAL_SUFFIX, text)
    if match and _is_noun_phrase(match["x"]):
        return [lc.sub(RESOLVING, "", match["x"]), *_remainder(match.get("rest") or "")]
    match = lc.match(GONE_PREFIX, text)
    if match and _is_noun_phrase(match["x"]):
        gone, _, rest = match["x"].partition(" with ")
        return [_absent(gone), *_remainder(rest)]
    match = lc.match(GONE_SUFFIX, text)
    if match and _is_noun_phrase(match["x"]):
        return [_absent(match["x"]), *_remainder(match["rest"])]
    return [lc.sub(RESOLVING, "", text)]


def _absent(phrase: str) -> str:
    phrase = lc.sub(DETERMINER, "", _strip_comparisons(phrase).strip(" ,"))
    return "No " + lower_first(lc.sub(SEVERITY, "", phrase))


def _remainder(rest: str) -> list[str]:
    rest = _strip_comparisons(rest).strip(" ,;")
    rest = trim(rest)
    return [rest] if has_content(rest) else []


def _strip_comparisons(text: str) -> str:
    for rule in REMOVALS:
        text = rule.apply(text)
    if "chang" in text.lower():
        text = lc.sub(CHANGE, _keep_finding_change, text)
    return SPACES.sub(" ", text).strip()


def _keep_finding_change(match: lc.Found) -> str:
    word = (match["before"] or "").strip().lower().rsplit("/", 1)[-1]
    is_finding = bool(word) and word not in CHANGE_QUALIFIERS and "_" not in word
    noun = not match[0].lower().endswith(("changed", "changing"))
    if noun and (is_finding or match["finding_of"]):
        return match[0]
    return ""


def _is_noun_phrase(phrase: str) -> bool:
    words = phrase.lower().split()
    return bool(words) and not any(w.strip(",") in HEDGES for w in words)
