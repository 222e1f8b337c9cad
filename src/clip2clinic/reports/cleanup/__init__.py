"""Rule-based report cleanup: the paper's two LLM steps done with deterministic rules.

- Step 1, :func:`split_entities` (:mod:`.entities`): one clinical entity per sentence.
- Step 2, :func:`remove_temporal` (:mod:`.temporal`): no comparison with earlier studies, as
  CXR-Align's step 2 asks; with it, a small third rule drops sentences that are not about the
  image (communication of results, follow-up recommendations).
- :mod:`.tidy` finishes each sentence; :mod:`.patterns` holds the regexes, built on the word
  lists in ``data/*.txt``; :mod:`.matching` matches them case-insensitively and fast.

Words that look temporal but name a finding are kept on purpose; see ``docs/clean.md``
("elevated hemidiaphragm", "degenerative changes", "well-expanded lungs", "increased
interstitial markings", "left worse than right" written as "left greater than right", a
comparison with the other side such as "compared to the left").
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from functools import lru_cache

from clip2clinic.reports.cleanup.entities import clauses, split_entities
from clip2clinic.reports.cleanup.temporal import remove_temporal
from clip2clinic.reports.cleanup.tidy import finish, has_content
from clip2clinic.reports.sentences import split_sentences

__all__ = [
    "clean_many",
    "clean_report",
    "clean_sentence",
    "clean_sentences",
    "has_content",
    "remove_temporal",
    "split_entities",
]

log = logging.getLogger(__name__)


def clean_report(text: str) -> str:
    """The cleaned report: one clinical entity per sentence, no comparison with prior studies.

    Sentences are joined with single spaces and each ends with a period.
    """
    return " ".join(clean_sentences(text))


def clean_sentences(text: str) -> list[str]:
    """The cleaned sentences of ``text`` (see :func:`clean_report`)."""
    cleaned: list[str] = []
    for sentence in split_sentences(text):
        cleaned.extend(clean_sentence(sentence))
    return cleaned


@lru_cache(maxsize=1 << 16)
def clean_sentence(sentence: str) -> tuple[str, ...]:
    """One sentence of a report, cleaned: zero or more sentences.

    Cached: reports repeat sentences a lot (63% of the IU reports' sentences are repeats).
    """
    cleaned: list[str] = []
    for clause in clauses(sentence):
        for part in remove_temporal(clause):
            cleaned.extend(finish(s) for s in split_entities(part))
    return tuple(s for s in cleaned if s)


def clean_many(texts: Iterable[str]) -> tuple[list[str], list[str]]:
    """Clean many reports; returns (cleaned, errors) with one entry per input.

    A report that makes the rules fail keeps its text unchanged and gets an error message,
    so one odd report never stops a corpus.
    """
    cleaned: list[str] = []
    errors: list[str] = []
    for text in texts:
        try:
            cleaned.append(clean_report(text))
            errors.append("")
        except Exception as exc:  # noqa: BLE001 - one bad row must not stop a corpus
            log.warning("cleanup failed on a report (%s); kept it unchanged", exc)
            cleaned.append(" ".join(split_sentences(text)))
            errors.append(f"cleanup failed: {type(exc).__name__}: {exc}")
    return cleaned, errors
