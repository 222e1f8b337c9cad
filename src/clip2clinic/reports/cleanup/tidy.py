"""Tidying a cleaned sentence: spacing, dangling words, capitalisation, and whether anything
clinical is left in it.
"""

from __future__ import annotations

from clip2clinic.reports.cleanup.patterns import (
    AN_BEFORE_CONSONANT,
    EDGE_PUNCTUATION,
    EMPTY_PARENS,
    LEADING_WORDS,
    NON_CONTENT,
    REPEATED_COMMAS,
    SPACE_BEFORE_PUNCT,
    SPACES,
    TRAILING_WORDS,
    WORD,
)


def has_content(text: str) -> bool:
    """True if ``text`` names something beyond comparison, anatomy and function words.

    "findings" counts only when negated ("No acute findings." is a statement, "Findings."
    after removing "are unchanged" is not).
    """
    words = [word.lower() for word in WORD.findall(text)]
    if any(word not in NON_CONTENT for word in words):
        return True
    return "findings" in words and ("no" in words or "without" in words)


def finish(sentence: str) -> str:
    text = EMPTY_PARENS.sub("", sentence) if "(" in sentence else sentence
    if text.count(",") > 1:
        text = REPEATED_COMMAS.sub(",", text)
    if "  " in text:
        text = SPACES.sub(" ", text)
    text = SPACE_BEFORE_PUNCT.sub(r"\1", text)
    if "n " in text:
        text = AN_BEFORE_CONSONANT.sub(r"\1 ", text)
    text = trim(text)
    if not has_content(text):
        return ""
    return text[0].upper() + text[1:] + ("" if text.endswith(("?", "!")) else ".")


def trim(text: str) -> str:
    """``text`` without dangling punctuation and function words at either end."""
    words = text.strip(EDGE_PUNCTUATION).split(" ")
    while words and (words[0].lower() in LEADING_WORDS or not words[0].strip(EDGE_PUNCTUATION)):
        words.pop(0)
    while words and (words[-1].lower().strip(EDGE_PUNCTUATION) in TRAILING_WORDS
                     or not words[-1].strip(EDGE_PUNCTUATION)):
        words.pop()
    return " ".join(words).strip(EDGE_PUNCTUATION)


def lower_first(phrase: str) -> str:
    """Lower-case a capitalised first word, leaving acronyms ("PICC") alone."""
    if phrase[:1].isupper() and phrase[1:2].islower():
        return phrase[0].lower() + phrase[1:]
    return phrase
