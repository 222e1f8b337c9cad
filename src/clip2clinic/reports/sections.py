"""Section parsing for chest X-ray reports (MIMIC-CXR free text, IU/Open-i columns).

MIMIC-CXR reports are free text with upper-case headers ("FINDINGS:", "IMPRESSION:", and
about 400 rarer or misspelt ones), lines wrapped at about 80 characters and "___" where a
de-identified word was. IU/Open-i reports come as separate findings/impression columns with
"XXXX" for de-identified words. Both are reduced here to the text used for training:
findings followed by impression.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from functools import lru_cache

# "___" (MIMIC) and "XXXX" (IU) stand for de-identified words.
DEID_PATTERN = re.compile(r"_{2,}|\bX{3,}\b")

# A header is an upper-case phrase ending in ":" at the start of a line; the common ones
# (below) are also recognised inside a line ("... FINDINGS: ... IMPRESSION: ...").
_LINE_HEADER = re.compile(r"(?m)^[ \t]*([A-Z][A-Z0-9 ,/&()'-]{1,80}?)[ \t]*:")
_INLINE_HEADER = re.compile(
    r"(?<![A-Za-z])(FINDINGS AND IMPRESSION|FINDINGS|IMPRESSION|INDICATION|HISTORY|"
    r"COMPARISON|TECHNIQUE|EXAMINATION|CONCLUSION|RECOMMENDATIONS?|NOTIFICATION)[ \t]*:"
)
# The report title and the rule of underscores after a wet read end the section before them.
_SECTION_BREAK = re.compile(r"(?m)^[ \t]*(?:(?:FINAL|PRELIMINARY) REPORT|_{8,})[ \t]*$")
_BLANK_LINE = re.compile(r"\n[ \t]*\n\s*")
_SPACES = re.compile(r"[ \t\r\f\v]+")
_HTML_BREAK = re.compile(r"<br\s*/?>", re.I)
_HTML_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9]*(?:\s[^<>]*)?/?>")
_WRAP = re.compile(r"\n(?![ \t]*\d{1,2}[.)]\s)")

_LETTERS = re.compile(r"[^\W\d_]{3,}")


def is_blank_report(text: str) -> bool:
    """True when ``text`` holds no report: empty, white space, section headers or
    de-identification marks only (stray words of one or two letters, e.g. "No ___.", aside)."""
    rest = DEID_PATTERN.sub(" ", text)
    rest = _LINE_HEADER.sub(" ", _INLINE_HEADER.sub(" ", rest))
    return _LETTERS.search(rest) is None


#: Sections that describe the request or the exam, not the image: never used as report text.
NON_CLINICAL_SECTIONS = frozenset(
    {"indication", "history", "comparison", "technique", "examination", "notification"}
)

# Keyword → canonical section, tried in order on the upper-cased header.
_KEYWORDS: tuple[tuple[str, str], ...] = (
    ("FINDINGS AND IM", "findings"),
    ("IMPRESSION", "impression"),
    ("CONCLUSION", "impression"),
    ("OPINION", "impression"),
    ("FINDING", "findings"),
    ("INDICATION", "indication"),
    ("REASON FOR", "indication"),
    ("MEDICAL CONDITION", "indication"),
    ("CLINICAL INFORMATION", "indication"),
    ("HISTORY", "history"),
    ("ILLNESS", "history"),
    ("COMPAR", "comparison"),
    ("PRIOR ", "comparison"),
    ("REFERENCE EX", "comparison"),
    ("TECHNIQUE", "technique"),
    ("WET READ", "wet_read"),
    ("WETREAD", "wet_read"),
    ("ADDENDUM", "addendum"),
    ("AMENDMENT", "addendum"),
    ("RECOMMEND", "recommendation"),
    ("NOTIFICATION", "notification"),
    ("EXAMINATION", "examination"),
    ("TYPE OF EXAM", "examination"),
    ("PROCEDURE", "examination"),
)
# Words of headers that name the view taken ("PA AND LATERAL CHEST RADIOGRAPHS:"); in older
# reports the findings follow such a header directly.
_VIEW_WORDS = re.compile(
    r"\b(?:CHEST|VIEWS?|RADIOGRAPHS?|PORTABLE|FILMS?|SUPINE|UPRIGHT|ERECT|FRONTAL|LATERAL|"
    r"AP|PA|SEMI ?ERECT|SEMI ?UPRIGHT)\b"
)
# Misspellings seen in MIMIC ("FINDNGS", "IMPRESSON", "COMAPRISON") are matched by similarity.
_FUZZY_TARGETS = {
    "FINDINGS": "findings",
    "IMPRESSION": "impression",
    "INDICATION": "indication",
    "COMPARISON": "comparison",
    "TECHNIQUE": "technique",
    "CONCLUSION": "impression",
    "NOTIFICATIONS": "notification",
    "RECOMMENDATIONS": "recommendation",
}


@lru_cache(maxsize=4096)
def canonical_section(header: str) -> str:
    """The canonical name of a section header ("IMPRESSON:" → "impression").

    Unknown headers become a lower-case slug ("BONE WINDOWS" → "bone_windows"); headers that
    only name the view ("PORTABLE AP CHEST RADIOGRAPH") become "view".
    """
    name = " ".join(header.upper().replace(":", " ").split())
    for keyword, section in _KEYWORDS:
        if keyword in name:
            return section
    for word in name.split():
        close = difflib.get_close_matches(word, _FUZZY_TARGETS, n=1, cutoff=0.8)
        if close:
            return _FUZZY_TARGETS[close[0]]
    if _VIEW_WORDS.search(name):
        return "view"
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "body"


def split_sections(text: str) -> list[tuple[str, str]]:
    """The report as an ordered list of (canonical section, body) pairs.

    Text under no header is "body": before the first header, after the "FINAL REPORT" title
    or a rule of underscores, and after the first paragraph of a non-clinical section
    (MIMIC often writes "COMPARISON: ___." and then the findings without a header).
    Bodies are unwrapped: single line breaks become spaces, blank lines become one "\\n".
    """
    text = _strip_markup(text.replace("\r\n", "\n").replace("\r", "\n"))
    starts: dict[int, tuple[int, str]] = {}
    for match in _SECTION_BREAK.finditer(text):
        starts[match.start()] = (match.end(), "body")
    for pattern in (_LINE_HEADER, _INLINE_HEADER):
        for match in pattern.finditer(text):
            starts.setdefault(match.start(1), (match.end(), canonical_section(match.group(1))))
    parts: list[tuple[str, str]] = []
    position, name = 0, "body"
    for start in sorted(starts):
        if start >= position:
            parts.append((name, text[position:start]))
            position, name = starts[start]
    parts.append((name, text[position:]))
    sections: list[tuple[str, str]] = []
    for name, raw in parts:
        body = _unwrap(raw)
        if name in NON_CLINICAL_SECTIONS and "\n" in body:
            first, rest = body.split("\n", 1)
            sections += [(name, first), ("body", rest)]
        elif body or name != "body":
            sections.append((name, body))
    return sections


def parse_sections(text: str) -> dict[str, str]:
    """The sections of a free-text report as a dict (canonical name → body).

    A section that occurs more than once (two "IMPRESSION:" headers, an addendum) has its
    bodies joined in order with a line break.
    """
    sections: dict[str, str] = {}
    for name, body in split_sections(text):
        if name in sections:
            sections[name] = _join(sections[name], body)
        else:
            sections[name] = body
    return sections


def mimic_report_text(text: str) -> str:
    """Findings + impression of a MIMIC-CXR report, with the usual fallbacks.

    1. findings and impression, joined by a line break (either alone if the other is absent
       or empty). Without a FINDINGS section, the text of a view header ("PORTABLE CHEST:
       ...") or else the text under no header (see :func:`split_sections`) is the findings;
    2. otherwise the last paragraph of the last section that describes the image (not
       indication, history, comparison, technique, examination or notification).
    """
    parts = split_sections(text)
    sections = parse_sections(text)
    findings = sections.get("findings") or sections.get("view") or sections.get("body", "")
    impression = sections.get("impression", "")
    if findings or impression:
        return _join(findings, impression)
    for name, body in reversed(parts):
        if name not in NON_CLINICAL_SECTIONS and body:
            return body.rsplit("\n", 1)[-1]
    return ""


def iu_report_text(findings: str, impression: str) -> str:
    """Findings + impression of an IU/Open-i report (columns ``findings``, ``impression``).

    "x-XXXX" is restored to "x-ray" (the de-identifier masked that word throughout the
    collection); other "XXXX" marks are kept.
    """
    parts = (_unwrap(_IU_XRAY.sub("x-ray", part or "")) for part in (findings, impression))
    return _join(*parts)


def report_text(record: str | Mapping[str, str], fmt: str = "mimic") -> str:
    """The report text to train on, for ``fmt`` "mimic" (free text), "iu" (a mapping with
    ``findings`` and ``impression``) or "plain" (the text, whitespace tidied)."""
    if fmt == "iu":
        if isinstance(record, str):
            raise TypeError("format 'iu' needs a mapping with 'findings' and 'impression'")
        return iu_report_text(record.get("findings") or "", record.get("impression") or "")
    if not isinstance(record, str):
        raise TypeError(f"format {fmt!r} needs the report as a string")
    if fmt == "mimic":
        return mimic_report_text(record)
    if fmt == "plain":
        return _unwrap(record.replace("\r\n", "\n").replace("\r", "\n"))
    raise ValueError(f"unknown report format {fmt!r} (mimic, iu or plain)")


_IU_XRAY = re.compile(r"\bx-XXXX\b", re.I)


def _unwrap(body: str) -> str:
    """Join wrapped lines; keep one line per paragraph and per numbered item ("2. ...")."""
    body = _strip_markup(body)
    lines = (_SPACES.sub(" ", _WRAP.sub(" ", p)) for p in _BLANK_LINE.split(body))
    return "\n".join(line.strip() for p in lines for line in p.split("\n") if line.strip())


def _strip_markup(text: str) -> str:
    """HTML line breaks become line breaks, other tags spaces (some exports carry them)."""
    if "<" not in text:
        return text
    return _HTML_TAG.sub(" ", _HTML_BREAK.sub("\n", text))


def _join(*parts: str) -> str:
    return "\n".join(p for p in parts if p)
