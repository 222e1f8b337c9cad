"""Rule-based report cleanup: the paper's two LLM steps done with deterministic rules.

Step 1 (:func:`split_entities`) rewrites a sentence so that each sentence holds one clinical
entity: "No A, B, or C." → "No A. No B. No C."; "Left pleural effusion and right lower lobe
atelectasis." → two sentences; "Heart size and mediastinal contours are normal." → "Heart size
is normal. Mediastinal contours are normal.". It splits only where the coordination is plainly
a list of findings and leaves a sentence whole when in doubt (hedges, alternatives, shared
heads such as "right and left lower lobes", prepositional phrases).

Step 2 (:func:`remove_temporal`) removes comparison with earlier studies, as CXR-Align's
step 2 asks: pure comparison sentences are dropped ("No significant interval change."),
comparison modifiers are stripped ("slightly increased left effusion" → "left effusion"),
statements of resolution become absence ("X has resolved" → "No X."), and every negation
of a finding is kept. Words that look temporal but name a finding are kept on purpose; see
``docs/clean.md`` ("elevated hemidiaphragm", "degenerative changes", "well-expanded lungs",
"increased interstitial markings", "left worse than right" written as "left greater than
right", a comparison with the other side such as "compared to the left").

A third small rule drops sentences that are not about the image: communication of results
("Dr. ___ was notified ...") and follow-up recommendations, which are temporal by nature.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from functools import lru_cache
from typing import NamedTuple

from clip2clinic.reports.sentences import split_sentences

log = logging.getLogger(__name__)



# Python's re is several times slower with IGNORECASE, so every pattern below is written in
# lower case and matched against a lower-cased copy of the text of the same length; matches
# are read back from the original text (see _sub, _match, _split).
def _lc(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _lower(text: str) -> str:
    """``text`` lower-cased, character for character (offsets stay valid)."""
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in text)


class _Found:
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


def _match(pattern: re.Pattern[str], text: str) -> _Found | None:
    match = pattern.match(_lower(text))
    return _Found(match, text) if match else None


def _search(pattern: re.Pattern[str], text: str) -> _Found | None:
    match = pattern.search(_lower(text))
    return _Found(match, text) if match else None


def _sub(pattern: re.Pattern[str], replacement, text: str) -> str:
    """``pattern.sub`` matched case-insensitively; ``replacement`` is a string with \\N group
    references or a function of a :class:`_Found`."""
    pieces: list[str] = []
    position = 0
    for match in pattern.finditer(_lower(text)):
        found = _Found(match, text)
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


def _expand(replacement: str, found: _Found) -> str:
    if "\\" not in replacement:
        return replacement
    return _GROUP_REFERENCE.sub(lambda ref: found[int(ref[1])] or "", replacement)


def _split(pattern: re.Pattern[str], text: str) -> list[str]:
    pieces: list[str] = []
    position = 0
    for match in pattern.finditer(_lower(text)):
        pieces.append(text[position : match.start()])
        position = match.end()
    pieces.append(text[position:])
    return pieces


_GROUP_REFERENCE = re.compile(r"\\(\d)")

# ---------------------------------------------------------------------------------------------
# Vocabulary
# ---------------------------------------------------------------------------------------------

# Words that trigger the temporal rules (CXR-Align's list, inflected, plus a few synonyms).
_TEMPORAL_STEMS = (
    "compar", "chang", "clear", "constant", "decreas", "elevat", "expan", "improv", "increas",
    "persist", "reduc", "remov", "resol", "stab", "wors", "new", "interval", "prior", "previous",
    "again", "demonstrat", "no longer", "remain", "since", "continu", "better", "similar",
    "diminish", "enlarging", "progress", "withdraw", "follow", "worst", "now",
)
_TEMPORAL_GATE = re.compile("|".join(map(re.escape, _TEMPORAL_STEMS)))
_VERBS = frozenset(
    "is are was were be been being has have had having appear appears appeared seem seems "
    "remain remains represent represents representing suggest suggests suggesting may might "
    "could can would should will demonstrate demonstrates show shows reflect reflects which "
    "that if cannot".split()
)
# Words that make a coordination an alternative or a relation rather than a list of findings.
_HEDGES = _VERBS | frozenset(
    "likely possibly probably possible probable consistent compatible concerning suspicious "
    "suspected versus vs differential question questionable either due secondary related "
    "excluded exclude favor favored worrisome".split()
)
_MODIFIERS = frozenset(
    "left right upper lower mid middle large small moderate mild minimal acute focal definite "
    "pa ap frontal portable upright supine erect "
    "significant bilateral new old chronic both trace tiny severe marked subtle apical basal "
    "basilar lateral medial anterior posterior central peripheral diffuse patchy".split()
)
_ADJECTIVE_SUFFIX = re.compile(r"(?:al|ic|ac|ar|ous|ive|ed|ile|ary|ory|ing)$")
_ANATOMY_HEADS = frozenset(
    "lobe lobes lung lungs base bases apex apices hilum hila zone zones field fields segment "
    "segments side sides hemithorax hemithoraces region regions margin aspect portion border "
    "borders lingula angle angles midlung midlungs".split()
)
# Words that carry no finding on their own; a sentence made only of these is dropped.
_NON_CONTENT = frozenset(
    "the a an of in on at to from with and or is are was were be been being has have had there "
    "this that these those it its as by for since than which no not also again otherwise "
    "overall appearance appear appears appeared seen noted made available significant "
    "significantly substantial appreciable relevant interval change changes changed comparison "
    "comparisons compared prior previous previously study studies exam exams examination "
    "examinations radiograph radiographs radiographic radiographically film films image images "
    "x-ray chest ct view views today current recent similar stable unchanged little definite "
    "acute apparent heart cardiac cardiomediastinal mediastinal mediastinum hilar silhouette "
    "silhouettes contour contours size position lung lungs lobe lobes left right bilateral upper "
    "lower middle mid base bases volumes aeration vasculature pulmonary vascular findings "
    "patient xxxx am pm all both very mildly slightly minimally markedly essentially grossly "
    "relatively remains remain otherwise improvement improved increase increased decrease "
    "decreased persistent persistence worsening worse new resolution interim specifically "
    "however additionally further dr doctor consider please without".split()
)
_WORD = re.compile(r"[^\W\d_][\w'-]*")

# ---------------------------------------------------------------------------------------------
# Step 3 (small): sentences that are not about the image
# ---------------------------------------------------------------------------------------------

_NOT_ABOUT_IMAGE = _lc(
    r"\b(?:notified|discussed\s+with|communicated|telephoned?|paged|by\s+phone|called\s+to|"
    r"d/w|were\s+(?:conveyed|reported)\s+to|follow[- ]?up|short[- ]interval|until\s+cleared|"
    r"document\s+(?:complete\s+)?(?:resolution|clearing|stability)|to\s+ensure\s+(?:complete\s+)?"
    r"resolution|recommend\w*|would\s+be\s+(?:reasonable|helpful|useful)|advised|"
    r"clinical(?:ly)?\s+correlat\w*|correlate\s+clinically)\b"
)
_PASSIVE_END = _lc(r"\b(?:is|are|be|was|were)\s*$")
_CONDITIONAL = _lc(r"^\s*if\b")

# ---------------------------------------------------------------------------------------------
# Step 2: temporal / comparison content
# ---------------------------------------------------------------------------------------------

_STUDY = (
    r"(?:radiographs?|radiography|x-?rays?|films?|exams?|examinations?|studies|study|images?|"
    r"imaging|ct|cts|scans?|cxrs?|mri|pet|ultrasound|one|ones)"
)
_REF_WORD = (
    rf"(?:{_STUDY}|prior|previous|preceding|earlier|recent|most|last|outside|initial|old|the|a|"
    r"an|same|day|day's|days|yesterday|yesterday's|today|today's|morning|evening|afternoon|"
    r"night|weeks?|months?|years?|ago|chest|portable|pa|ap|lateral|frontal|upright|supine|"
    r"views?|from|of|on|dated|obtained|performed|done|taken|at|and|___+|xxxx|\d[\d:/.-]*|"
    r"am|pm|a\.m\.|p\.m\.|hours?|hrs?|earlier|through)"
)
_REF_CORE = rf"(?:{_STUDY}|prior|previous|preceding|earlier|recent|last|outside|___+|xxxx)"
_TEMPORAL_ADJ = r"(?:prior|previous|preceding|earlier|recent|last|outside)"
_DEGREE = (
    r"(?:slightly|mildly|minimally|somewhat|markedly|significantly|substantially|much|further|"
    r"newly|increasingly|progressively|interval|again|continued|persistently|previously|"
    r"slight|mild|marked|significant|moderate|minimal|substantial|little|overall|essentially|"
    r"grossly|largely|relatively|also|now|otherwise|not\s+significantly)"
)
_PARTIAL = (
    r"(?:partial|partially|near|nearly|near-complete|near\s+complete|almost|incomplete|"
    r"incompletely|largely|mostly|partly|some|slight|gradual|ongoing|continued|continuing|"
    r"further|improving|minimal|mild|not\s+completely|not\s+entirely)"
)
_GONE = r"(?:resolution|clearing|clearance|removal|resolved|cleared|removed|withdrawal)"

# Spatial comparisons that are findings, rewritten without the temporal word.
_SPATIAL_WORSE = _lc(
    r"\b(left|right|bases?|apices|upper|lower|medial|lateral|central|peripheral)"
    r"(\s+(?:is\s+)?(?:slightly\s+|much\s+)?)worse(\s+(?:than\s+)?(?:the\s+)?)"
    r"(?=left|right|bases?|apices|upper|lower|medial|lateral|central|peripheral)"
)
_WORST = _lc(r"\bworst\b")

# Sentence-level rewrites of resolution into absence (or presence for partial resolution).
_LEAD_IN = r"^(?:there\s+(?:has|have)\s+been\s+|there\s+(?:is|are)\s+|with\s+)?"
_PARTIAL_PREFIX = _lc(
    rf"{_LEAD_IN}(?:interval\s+)?{_PARTIAL}[\s-]+(?:complete\s+)?"
    rf"(?:{_GONE}|resolving|improvement)\s+(?:of\s+|in\s+)?(?P<x>.+)$"
)
_GONE_PREFIX = _lc(
    rf"{_LEAD_IN}(?:(?:interval|complete|completely|total|full|essentially|now|subsequent|"
    rf"interim|xxxx)\s+)*{_GONE}\s+(?:of\s+)?(?P<x>.+)$"
)
_PARTIAL_SUFFIX = _lc(
    r"^(?P<x>.+?)\s+(?:(?:has|have|had|is|are)\s+)?(?:been\s+)?(?:now\s+)?"
    rf"{_PARTIAL}\s+(?:resolved|cleared|resolving|clearing)\b(?P<rest>.*)$"
)
_GONE_SUFFIX = _lc(
    r"^(?P<x>.+?)\s+(?:(?:has|have|had|is|are)\s+)?(?:(?:now|since|subsequently|completely|"
    r"essentially|entirely|also|been|interval)\s+)*(?:resolved|cleared|removed|withdrawn|"
    r"discontinued|no\s+longer\s+(?:seen|visualized|visible|present|evident|identified|"
    r"appreciated|demonstrated|apparent|noted))\b(?P<rest>.*)$"
)
_RESOLVING = _lc(r"\bresolving\s+")
# Resolution words the rewrites could not place ("may be due to XXXX having resolved"): the
# clause is speculation about change and is dropped. "high-resolution" is a technique.
_UNPLACED_RESOLUTION = _lc(
    r"(?<!high[- ])\b(?:resol(?:ve|ved|ves|ution)|clear(?:ed|ing|ance)|remov(?:e|ed|al))\b")

class _Rule(NamedTuple):
    """A phrase removal, tried only on text that contains one of ``needles`` (lower case)."""

    needles: tuple[str, ...]
    pattern: str | re.Pattern[str]
    replacement: str

    def compiled(self) -> _Rule:
        return self._replace(pattern=_lc(self.pattern))

    def apply(self, text: str) -> str:
        lowered = text.lower()
        if any(needle in lowered for needle in self.needles):
            return _sub(self.pattern, self.replacement, text)  # type: ignore[arg-type]
        return text


# Phrase removals, applied in order.
_REMOVALS: tuple[_Rule, ...] = tuple(
    rule.compiled()
    for rule in (
        # Findings written with comparison words (kept, reworded).
        _Rule(
            ("lung volume",),
            r"\b(?:decreased|reduced|diminished|diminishing)\s+(lung\s+volumes?)\b",
            r"low \1",
        ),
        _Rule(
            ("lung volume",),
            r"\b(lung\s+volumes?\s+)(?:is|are|remains?)\s+(?:\w+\s+)?(?:decreased|reduced|"
            r"diminished)\b",
            r"\1are low",
        ),
        _Rule(("elevat",), r"\b(?:more|less|further|newly|increasingly)\s+(?=elevat)", ""),
        _Rule(
            ("size",),
            r",?\s*(?:with\s+|(?:has|have|had|is|are)\s+(?:been\s+)?)?(?:interval\s+)?"
            r"(?:increased|decreased|increasing|decreasing)\s+(?:in\s+)?size\b",
            "",
        ),
        # Comparison with an earlier study: "compared to the prior radiograph of ___".
        _Rule(
            ("compar",),
            rf",?\s*\b(?:(?:as|when|in|on)\s+)?(?:compared|comparison|comparing)\s+"
            rf"(?:to|with|against)(?:\s+{_REF_WORD})*?\s+{_REF_CORE}\b(?:\s+{_REF_WORD}\b)*",
            "",
        ),
        _Rule(
            ("prior", "previous", "preceding", "earlier", "recent", "last", "outside"),
            rf",?\s*\b(?:from|since|than|over|to|on|in|relative\s+to|versus|vs\.?|with)\s+"
            rf"(?:the\s+|a\s+|an\s+)?(?:most\s+|multiple\s+|several\s+|numerous\s+)?"
            rf"{_TEMPORAL_ADJ}\b"
            rf"(?:(?:\s+{_REF_WORD}\b)*?\s+{_STUDY}\b(?:\s+{_REF_WORD}\b)*|(?=\s*(?:[,.;:]|$)))",
            "",
        ),
        _Rule(
            ("___", "xxxx"),
            r",?\s*\b(?:since|from|dated)\s+(?:the\s+)?(?:___+|xxxx)"
            r"(?:\s*(?:,|at|and)?\s*(?:___+|xxxx|\d[\d:]*(?:\s*[ap]\.?m\.?)?))*",
            "",
        ),
        _Rule(
            ("the interval", "the interim", "the meantime"),
            r",?\s*\b(?:in|over|during)\s+the\s+(?:interval|interim|meantime)\b",
            "",
        ),
        _Rule(
            ("removal",),
            r",?\s+(?:following|after|since|status\s+post)\s+(?:interval\s+)?removal\s+of\b.*$",
            "",
        ),
        _Rule(
            ("resolved",),
            r",?\s*\b(?:suggesting|consistent\s+with|compatible\s+with)\s+(?:a\s+)?resolved\b.*$",
            "",
        ),
        _Rule(
            ("before", "previously", "prior"),
            r",?\s*\b(?:as|than)\s+(?:before|previously|prior)\b",
            "",
        ),
        # Nominal comparisons: "interval increase in size of X" → "X".
        _Rule(
            ("chang", "increase", "decrease", "improvement", "worsening", "reduction",
             "progression", "expansion", "persistence", "redemonstration", "interval"),
            rf"\b(?:no\s+)?(?:{_DEGREE}\s+)*(?:(?:interval\s+)?(?:change|increase|decrease|"
            r"improvement|worsening|reduction|progression|re-?expansion|persistence|"
            r"redemonstration)|interval\s+(?:enlargement|development|appearance|placement|"
            r"insertion|advancement|withdrawal|retraction|repositioning))(?:/\w+)?"
            r"(?:\s+(?:in|of))?\s+(?:the\s+)?"
            r"(?:(?:size|extent|degree|number|amount|severity|conspicuity|prominence|appearance|"
            r"position)"
            r"(?:\s+and\s+(?:size|number|extent))?\s+(?:of\s+)?(?:the\s+)?)?",
            "",
        ),
        # Predicates at the end of a clause: "..., unchanged." / "is stable in size".
        _Rule(
            ("unchanged", "stab", "similar", "constant", "persist", "increas", "decreas", "improv",
             "worse", "better", "reduced", "progressed", "diminished", "new", "chang",
             "demonstrated", "again", "expand"),
            r"(?:,?\s*(?:and|but|which)\s+|,\s*|\s+)(?:(?:is|are|was|were|has|have|had|"
            r"appears?|remains?|seems?)\s+)?(?:been\s+)?(?:(?:"
            rf"{_DEGREE})\s+)*(?:unchanged|stable|stably|similar|constant|persistent|persisting|"
            r"persists?|increased|decreased|improved|improving|worsened|worsening|worse|better|"
            r"reduced|progressed|increasing|decreasing|diminished|new|changed|redemonstrated|"
            r"re-?expanded|"
            r"re-demonstrated|again\s+(?:seen|noted|demonstrated|identified|visualized)|"
            r"(?:not\s+)?significantly\s+changed)"
            r"(?:\s+in\s+(?:size|appearance|extent|position|configuration|degree|severity|"
            r"number|conspicuity|prominence|caliber)(?:\s+and\s+\w+)?)?(?=\s*(?:[,.;:]|$))",
            "",
        ),
        # Modifiers before a noun: "slightly increased", "persistent", "new", "previously seen".
        _Rule(
            ("new", "stab", "unchanged", "persist", "increas", "decreas", "improv", "worse",
             "reduced", "constant", "enlarging", "continued", "prior", "previous", "diminished",
             "demonstrated", "expand", "interval"),
            rf"\b(?:{_DEGREE}\s+)*(?:new|newly|stable|unchanged|persistent|persisting|"
            r"persistently|increased(?!(?:\s+[\w-]+){0,2}?\s+(?:markings?|diameter)\b)|"
            r"increasing|decreased|decreasing|improved|improving|worsened|worsening|worse|"
            r"reduced|constant|constantly|enlarging|continued|prior|previous|diminished|"
            r"redemonstrated|re-demonstrated|(?:re-?)?expanding|re-?expanded|"
            r"previously\s+(?:seen|noted|described|demonstrated|identified|visualized|present|"
            r"mentioned|reported|placed)|previously|interval)(?:\s*[,/]\s*|\s+)(?=[\w(])",
            "",
        ),
        # What is left of comparison verbs and adverbs.
        _Rule(
            ("increased", "decreased", "improved", "worsened", "progressed"),
            r"\b(?:has|have)\s+(?:increased|decreased|improved|worsened|progressed)\b",
            "",
        ),
        _Rule(("persist",), r"\bpersist(?:s|ed)?\b", ""),
        _Rule(("again",), r"\bagain\s+", ""),
        _Rule(("now",), r"\s*\bnow\b", ""),
        _Rule(("previously",), r"\s+previously\b", ""),
        _Rule(("remain",), r"\bremains\b", "is"),
        _Rule(("remain",), r"\bremain\b", "are"),
    )
)

# "change(s)" names a finding after a descriptive adjective ("degenerative changes"),
# otherwise it is a comparison ("no change", "interval change").
_CHANGE = _lc(
    r"(?P<before>\b[\w/-]+\s+)?\bchang(?:e|es|ed|ing)\b(?P<finding_of>\s+(?:of|related\s+to|"
    r"due\s+to|consistent\s+with|compatible\s+with)\b)?"
)
# Words before "change(s)" that make it a comparison ("no significant change"); after any
# other word it names a finding ("degenerative changes", "severe changes").
_CHANGE_QUALIFIERS = frozenset(
    "no interval significant substantial appreciable apparent definite radiographic visible "
    "gross overall notable marked dramatic little minimal slight mild major minor any some "
    "further rapid considerable subtle much great the a an of in without significantly "
    "relevant important short-term recent xxxx is are was were has have been there this that "
    "these with and or to for on at by not any other".split()
)

# ---------------------------------------------------------------------------------------------
# Step 1: one clinical entity per sentence
# ---------------------------------------------------------------------------------------------

_CLAUSE_BREAK = _lc(
    # Every break starts at a space, comma or semicolon; the lookahead says so first, which
    # makes the search about ten times faster.
    r"(?=[\s,;])(?:\s*;\s*|,?\s+but\s+|,\s*however,?\s+|,?\s+whereas\s+|,?\s+while\s+|"
    r",\s+with\s+|(?<!\bare)(?<!\bis)(?<!\bwere)(?<!\bwas),?\s+(?=without\s)|"
    r"\s+with\s+(?=no\s)|,\s*(?:and\s+)?(?=(?:no|there\s+(?:is|are))\s)|"
    r"\s+and\s+(?=(?:no|there\s+(?:is|are))\s)|"
    rf"\s+with\s+(?=(?:interval\s+|{_PARTIAL}[\s-]+)?(?:complete\s+)?(?:resolution|clearing|"
    r"removal)\s+of\b))"
)
_CLAUSE_GATE = re.compile(r"[;,]| but | whereas | while | with| and ")
_NEGATION_HEAD = _lc(
    r"^(?P<head>(?:there\s+(?:is|are|was|were)\s+)?(?:no|without|negative\s+for)"
    r"(?:\s+(?:radiographic\s+|definite\s+|convincing\s+)?(?:evidence|signs?|findings?)\s+"
    r"(?:of|for|to\s+suggest))?)\s+(?P<rest>.+)$"
)
_EXISTENTIAL_HEAD = _lc(r"^(?P<head>there\s+(?:is|are))\s+(?P<rest>.+)$")
_LIST_SEPARATOR = _lc(r"\s*,\s*(?:and\s+|or\s+|nor\s+)?|\s+(?:and|or|nor)\s+(?!/)")
# A verb phrase closing a negated list applies to every item ("No A or B is seen").
_NEGATED_TAIL = _lc(
    r"\s+(?:(?:is|are|was|were)\s+(?:\w+\s+)?|has\s+been\s+|have\s+been\s+)?(?:seen|"
    r"identified|noted|present|demonstrated|appreciated|evident|visualized|detected|visible)"
    r"(?:\s+(?:on|in|at|within)\s+[^,]*)?$"
)
# "... to suggest pneumonia" qualifies the last item only.
_LAST_ITEM_TAIL = _lc(r"\s+to\s+suggest\b.*$")
_SUBJECT_PREDICATE = _lc(
    r"^(?P<subject>.+?)\s+(?P<verb>is|are|appear|appears|remain|remains|seem|seems|was|were)"
    r"\s+(?P<predicate>.+)$"
)
_VERBLESS_PREDICATE = _lc(
    r"^(?P<subject>.+?)\s+(?P<predicate>(?:(?:are|is)\s+)?(?:within\s+normal\s+limits|normal|"
    r"unremarkable|clear|intact))$"
)
_SINGULAR_VERB = {"are": "is", "appear": "appears", "remain": "remains", "seem": "seems",
                  "were": "was"}
_PLURAL_VERB = {v: k for k, v in _SINGULAR_VERB.items()}
_PLURAL_WORDS = frozenset("hila apices bases lungs media".split())
_PREPOSITION = _lc(r"\b(?:in|at|of|within|along|on|involving|near|from|to|over)\b")
# "Normal cardiac size, mediastinum, and vasculature": the adjective applies to every item.
_SHARED_ADJECTIVES = frozenset({"normal", "unremarkable"})
_SEVERITY = _lc(
    r"^(?:(?:mild|moderate|small|large|minimal|trace|tiny|severe|slight)\s+)+")
_DETERMINER = _lc(r"^(?:the|a|an|this|these|those|that)\s+")

# ---------------------------------------------------------------------------------------------
# Tidying
# ---------------------------------------------------------------------------------------------

_SPACES = re.compile(r"\s+")
_SPACE_BEFORE_PUNCT = re.compile(r"(?=\s)\s+([,;:.)])")
_EMPTY_PARENS = re.compile(r"\(\s*\)")
_AN_BEFORE_CONSONANT = re.compile(r"\b([Aa])n\s+(?=[b-df-hj-np-tv-z])")
_REPEATED_COMMAS = re.compile(r"(?:\s*,){2,}")
_EDGE_PUNCTUATION = " \t\n,;:.-"
_LEADING_WORDS = frozenset("and but or with which also then".split())
_TRAILING_WORDS = frozenset(
    "and or with of in to from than which the a an is are was were has have been at on as by "
    "for since but also that please would should could will may".split()
)


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
    for clause in _clauses(sentence):
        for part in remove_temporal(clause):
            cleaned.extend(_finish(s) for s in split_entities(part))
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


def remove_temporal(sentence: str) -> list[str]:
    """Step 2 on one clause: the clause without comparison content (0, 1 or 2 clauses).

    Returns [] for a pure comparison, a communication of results or a follow-up
    recommendation; "X has resolved" gives ["No X"].
    """
    if "  " in sentence or "\t" in sentence:
        sentence = _SPACES.sub(" ", sentence)
    text = _without_aside(sentence.strip().rstrip(".!;: "))
    lowered = text.lower()
    if not _TEMPORAL_GATE.search(lowered):
        return [text] if text else []
    if _CONDITIONAL.match(lowered):
        return []
    if "wors" in lowered:
        text = _sub(_WORST, "most marked", _sub(_SPATIAL_WORSE, r"\1\2greater\3", text))
    clauses = _resolution_to_absence(_strip_comparisons(text))
    return [c for c in clauses if has_content(c) and not _search(_UNPLACED_RESOLUTION, c)]


def split_entities(sentence: str) -> list[str]:
    """Step 1 on one clause: one sentence per clinical entity, or the clause unchanged."""
    text = sentence.strip().rstrip(".")
    lowered = text.lower()
    if "," not in lowered and " and " not in lowered and " or " not in lowered:
        if lowered.startswith("without "):  # no list: only "without X" needs rewording
            return ["No " + text[len("without ") :]]
        return [text]
    negation = _match(_NEGATION_HEAD, text)
    if negation:
        return _split_negated(negation["head"], negation["rest"])
    existential = _match(_EXISTENTIAL_HEAD, text)
    if existential:
        items = _list_items(existential["rest"])
        if items:
            return [f"{existential['head']} {item}" for item in items]
        return [text]
    for pattern in (_SUBJECT_PREDICATE, _VERBLESS_PREDICATE):
        match = _match(pattern, text)
        if match:
            return _split_subjects(match)
    items = _list_items(text)
    return items or [text]


def has_content(text: str) -> bool:
    """True if ``text`` names something beyond comparison, anatomy and function words.

    "findings" counts only when negated ("No acute findings." is a statement, "Findings."
    after removing "are unchanged" is not).
    """
    words = [word.lower() for word in _WORD.findall(text)]
    if any(word not in _NON_CONTENT for word in words):
        return True
    return "findings" in words and ("no" in words or "without" in words)


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def _without_aside(text: str) -> str:
    """``text`` cut before a recommendation or communication ("..., followup recommended")."""
    lowered = _lower(text)
    match = _NOT_ABOUT_IMAGE.search(lowered)
    if not match:
        return text
    if _PASSIVE_END.search(lowered, 0, match.start()):  # "A CT is recommended": all of it
        return ""
    comma = text.rfind(",", 0, match.start())
    return text[: comma if comma >= 0 else match.start()]


def _clauses(sentence: str) -> list[str]:
    if not _CLAUSE_GATE.search(sentence.lower()):
        return [sentence.strip()]
    parts = [p.strip() for p in _split(_CLAUSE_BREAK, sentence)]
    return [p for p in parts if p]


def _resolution_to_absence(text: str) -> list[str]:
    match = _match(_PARTIAL_PREFIX, text) or _match(_PARTIAL_SUFFIX, text)
    if match and _is_noun_phrase(match["x"]):
        return [_sub(_RESOLVING, "", match["x"]), *_remainder(match.get("rest") or "")]
    match = _match(_GONE_PREFIX, text)
    if match and _is_noun_phrase(match["x"]):
        gone, _, rest = match["x"].partition(" with ")
        return [_absent(gone), *_remainder(rest)]
    match = _match(_GONE_SUFFIX, text)
    if match and _is_noun_phrase(match["x"]):
        return [_absent(match["x"]), *_remainder(match["rest"])]
    return [_sub(_RESOLVING, "", text)]


def _absent(phrase: str) -> str:
    phrase = _sub(_DETERMINER, "", _strip_comparisons(phrase).strip(" ,"))
    return "No " + _lower_first(_sub(_SEVERITY, "", phrase))


def _lower_first(phrase: str) -> str:
    """Lower-case a capitalised first word, leaving acronyms ("PICC") alone."""
    if phrase[:1].isupper() and phrase[1:2].islower():
        return phrase[0].lower() + phrase[1:]
    return phrase


def _remainder(rest: str) -> list[str]:
    rest = _strip_comparisons(rest).strip(" ,;")
    rest = _trim(rest)
    return [rest] if has_content(rest) else []


def _strip_comparisons(text: str) -> str:
    for rule in _REMOVALS:
        text = rule.apply(text)
    if "chang" in text.lower():
        text = _sub(_CHANGE, _keep_finding_change, text)
    return _SPACES.sub(" ", text).strip()


def _keep_finding_change(match: _Found) -> str:
    word = (match["before"] or "").strip().lower().rsplit("/", 1)[-1]
    is_finding = bool(word) and word not in _CHANGE_QUALIFIERS and "_" not in word
    noun = not match[0].lower().endswith(("changed", "changing"))
    if noun and (is_finding or match["finding_of"]):
        return match[0]
    return ""


def _is_noun_phrase(phrase: str) -> bool:
    words = phrase.lower().split()
    return bool(words) and not any(w.strip(",") in _HEDGES for w in words)


def _split_negated(head: str, rest: str) -> list[str]:
    if head.lower().startswith("without"):
        head = "No" + head[len("without"):]
    last_match = _search(_LAST_ITEM_TAIL, rest)
    last_tail = last_match[0] if last_match else ""
    body = rest[: last_match.start()] if last_match else rest
    tail_match = _search(_NEGATED_TAIL, body)
    tail = tail_match[0] if tail_match else ""
    body = body[: tail_match.start()] if tail_match else body
    items = _split(_LIST_SEPARATOR, body)
    if len(items) < 2 or not _plain_items(items, _VERBS):
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
    items = _split(_LIST_SEPARATOR, text)
    if len(items) < 2 or not _plain_items(items):
        return []
    if any(_has_preposition(item) for item in items[:-1]):
        return []
    shared = items[0].split(maxsplit=1)[0]
    if shared.lower() in _SHARED_ADJECTIVES:
        items = [items[0]] + [f"{shared} {_lower_first(item)}" for item in items[1:]]
    return items


def _split_subjects(match: _Found) -> list[str]:
    subject = match["subject"]
    lowered = f" {subject.lower()} "
    if " and " not in lowered or " or " in lowered:
        return [match[0]]
    items = _split(_LIST_SEPARATOR, subject)
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


def _plain_items(items: list[str], stop_words: frozenset[str] = _HEDGES) -> bool:
    """True if every item looks like a noun phrase of its own (no verbs or hedges, no shared
    heads such as "right and left lower lobes")."""
    for index, item in enumerate(items):
        words = _DETERMINER.sub("", item.lower()).split()
        if not words or len(words) > 8 or any(w in stop_words for w in words):
            return False
        if index < len(items) - 1:
            if len(words) == 1 and (words[0] in _MODIFIERS or _ADJECTIVE_SUFFIX.search(words[0])):
                return False
            if words[-1] in _ANATOMY_HEADS:
                return False
    return True


def _has_preposition(item: str) -> bool:
    return bool(_PREPOSITION.search(_lower(item)))


def _is_plural(phrase: str) -> bool:
    """Whether a noun phrase is plural, judged by its head ("changes of the spine": yes)."""
    head = _PREPOSITION.split(_lower(phrase), maxsplit=1)[0].split() or phrase.lower().split()
    last = head[-1]
    return last in _PLURAL_WORDS or (
        last.endswith("s") and not last.endswith(("ss", "us", "is", "xis"))
    )


def _agree(verb: str, subject: str) -> str:
    lower = verb.lower()
    if _is_plural(subject):
        return _PLURAL_VERB.get(lower, lower)
    return _SINGULAR_VERB.get(lower, lower)


def _agree_predicate(predicate: str, subject: str) -> str:
    words = predicate.split(maxsplit=1)
    if words[0].lower() in ("is", "are") and len(words) > 1:
        return f"{'are' if _is_plural(subject) else 'is'} {words[1]}"
    return predicate


def _finish(sentence: str) -> str:
    text = _EMPTY_PARENS.sub("", sentence) if "(" in sentence else sentence
    if text.count(",") > 1:
        text = _REPEATED_COMMAS.sub(",", text)
    if "  " in text:
        text = _SPACES.sub(" ", text)
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
    if "n " in text:
        text = _AN_BEFORE_CONSONANT.sub(r"\1 ", text)
    text = _trim(text)
    if not has_content(text):
        return ""
    return text[0].upper() + text[1:] + ("" if text.endswith(("?", "!")) else ".")


def _trim(text: str) -> str:
    """``text`` without dangling punctuation and function words at either end."""
    words = text.strip(_EDGE_PUNCTUATION).split(" ")
    while words and (words[0].lower() in _LEADING_WORDS or not words[0].strip(_EDGE_PUNCTUATION)):
        words.pop(0)
    while words and (words[-1].lower().strip(_EDGE_PUNCTUATION) in _TRAILING_WORDS
                     or not words[-1].strip(_EDGE_PUNCTUATION)):
        words.pop()
    return " ".join(words).strip(_EDGE_PUNCTUATION)
