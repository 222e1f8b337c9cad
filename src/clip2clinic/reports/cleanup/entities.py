"""Step 1 of the cleanup: one clinical entity per sentence.

"No A, B, or C." -> "No A. No B. No C."; "Left pleural effusion and right lower lobe
atelectasis." -> two sentences; "Heart size and mediastinal contours are normal." -> "Heart size
is normal. Mediastinal contours are normal.". It splits only where the coordination is plainly a
list of findings and leaves a sentence whole when in doubt (hedges, alternatives, shared heads
such as "right and left lower lobes", prepositional phrases).
"""

from __future__ import annotations

from clip2clinic.reports.cleanup import matching as lc
from clip2clinic.reports.cleanup.patterns import (
    ADJECTIVE_SUFFIX,
    ANATOMY_HEADS,
    CLAUSE_BREAK,
    CLAUSE_GATE,
    DETERMINER,
    EXISTENTIAL_HEAD,
    HEDGES,
    LAST_ITEM_TAIL,
    LIST_SEPARATOR,
    MODIFIERS,
    NEGATED_TAIL,
    NEGATION_HEAD,
    PLURAL_VERB,
    PLURAL_WORDS,
    PREPOSITION,
    SHARED_ADJECTIVES,
    SINGULAR_VERB,
    SUBJECT_PREDICATE,
    VERBLESS_PREDICATE,
    VERBS,
)
from clip2clinic.reports.cleanup.tidy import lower_first


def split_entities(sentence: str) -> list[str]:
    """Step 1 on one clause: one sentence per clinical entity, or the clause unchanged."""
    text = sentence.strip().rstrip(".")
    lowered = text.lower()
    if "," not in lowered and " and " not in lowered and " or " not in lowered:
        if lowered.startswith("without "):  # no list: only "without X" needs rewording
            return ["No " + text[len("without ") :]]
        return [text]
    negation = lc.match(NEGATION_HEAD, text)
    if negation:
        return _split_negated(negation["head"], negation["rest"])
    existential = lc.match(EXISTENTIAL_HEAD, text)
    if existential:
        items = _list_items(existential["rest"])
        if items:
            return [f"{existential['head']} {item}" for item in items]
        return [text]
    for pattern in (SUBJECT_PREDICATE, VERBLESS_PREDICATE):
        match = lc.match(pattern, text)
        if match:
            return _split_subjects(match)
    items = _list_items(text)
    return items or [text]


def clauses(sentence: str) -> list[str]:
    if not CLAUSE_GATE.search(sentence.lower()):
        return [sentence.strip()]
    parts = [p.strip() for p in lc.split(CLAUSE_BREAK, sentence)]
    return [p for p in parts if p]


def _split_negated(head: str, rest: str) -> list[str]:
    if head.lower().startswith("without"):
        head = "No" + head[len("without"):]
    last_match = lc.search(LAST_ITEM_TAIL, rest)
    last_tail = last_match[0] if last_match else ""
    body = rest[: last_match.start()] if last_match else rest
    tail_match = lc.search(NEGATED_TAIL, body)
    tail = tail_match[0] if tail_match else ""
    body = body[: tail_match.start()] if tail_match else body
    items = lc.split(LIST_SEPARATOR, body)
    if len(items) < 2 or not _plain_items(items, VERBS):
        return [f"{head} {rest}"]
    items[-1] += last_tail
    first_head = head
    other_head = head[0].upper() + head[1:]
    return [f"{first_head if i == 0 else other_head} {item}{tail}" for i, item in enumerate(items)]


def _list_items(text: str) -> list[str]:
    """Items of a verbless positive list ("A and B", "A, B, and C"), or [] if not one."""
    lowered = f" {text.lower()} "
    if " and " not in lowered or " or " in lowered or "and/or" in lowered:
        return []
    items = lc.split(LIST_SEPARATOR, text)
    if len(items) < 2 or not _plain_items(items):
        return []
    if any(_has_preposition(item) for item in items[:-1]):
        return []
    shared = items[0].split(maxsplit=1)[0]
    if shared.lower() in SHARED_ADJECTIVES:
        items = [items[0]] + [f"{shared} {lower_first(item)}" for item in items[1:]]
    return items


def _split_subjects(match: lc.Found) -> list[str]:
    subject = match["subject"]
    lowered = f" {subject.lower()} "
    if " and " not in lowered or " or " in lowered:
        return [match[0]]
    items = lc.split(LIST_SEPARATOR, subject)
    if len(items) < 2 or not _plain_items(items) or any(map(_has_preposition, items[:-1])):
        return [match[0]]
    verb = match.get("verb")
    predicate = match["predicate"]
    sentences = []
    for item in items:
        if verb:
            sentences.append(f"{item} {_agree(verb, item)} {predicate}")
        else:
            sentences.append(f"{item} {_agree_predicate(predicate, item)}")
    return sentences


def _plain_items(items: list[str], stop_words: frozenset[str] = HEDGES) -> bool:
    """True if every item looks like a noun phrase of its own (no verbs or hedges, no shared
    heads such as "right and left lower lobes")."""
    for index, item in enumerate(items):
        words = DETERMINER.sub("", item.lower()).split()
        if not words or len(words) > 8 or any(w in stop_words for w in words):
            return False
        if index < len(items) - 1:
            if len(words) == 1 and (words[0] in MODIFIERS or ADJECTIVE_SUFFIX.search(words[0])):
                return False
            if words[-1] in ANATOMY_HEADS:
                return False
    return True


def _has_preposition(item: str) -> bool:
    return bool(PREPOSITION.search(lc.lower(item)))


def _is_plural(phrase: str) -> bool:
    """Whether a noun phrase is plural, judged by its head ("changes of the spine": yes)."""
    head = PREPOSITION.split(lc.lower(phrase), maxsplit=1)[0].split() or phrase.lower().split()
    last = head[-1]
    return last in PLURAL_WORDS or (
        last.endswith("s") and not last.endswith(("ss", "us", "is", "xis"))
    )


def _agree(verb: str, subject: str) -> str:
    lower = verb.lower()
    if _is_plural(subject):
        return PLURAL_VERB.get(lower, lower)
    return SINGULAR_VERB.get(lower, lower)


def _agree_predicate(predicate: str, subject: str) -> str:
    words = predicate.split(maxsplit=1)
    if words[0].lower() in ("is", "are") and len(words) > 1:
        return f"{'are' if _is_plural(subject) else 'is'} {words[1]}"
    return predicate
