"""The cleanup's patterns: word lists read from ``data/*.txt`` and the regexes built on them.

Every regex is written in lower case and compiled with :func:`matching.compile` (see
:mod:`clip2clinic.reports.cleanup.matching`). The algorithms live in :mod:`.temporal` (step 2),
:mod:`.entities` (step 1) and :mod:`.tidy`; this module only holds what they match.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

from clip2clinic.reports.cleanup import matching as lc
from clip2clinic.reports.wordlists import read_lines

DATA_DIR = Path(__file__).with_name("data")


def _words(name: str) -> frozenset[str]:
    """The entries of ``data/<name>.txt``, lower case."""
    entries = read_lines(DATA_DIR / f"{name}.txt")
    if not entries:
        raise FileNotFoundError(f"cleanup word list {DATA_DIR / name}.txt is missing or empty")
    return frozenset(entry.lower() for entry in entries)


# ---------------------------------------------------------------------------------------------
# Vocabulary (data/*.txt)
# ---------------------------------------------------------------------------------------------

TEMPORAL_STEMS = _words("temporal_stems")
VERBS = _words("verbs")
HEDGES = VERBS | _words("hedges")
MODIFIERS = _words("modifiers")
ANATOMY_HEADS = _words("anatomy_heads")
NON_CONTENT = _words("non_content")
CHANGE_QUALIFIERS = _words("change_qualifiers")
LEADING_WORDS = _words("leading_words")
TRAILING_WORDS = _words("trailing_words")

TEMPORAL_GATE = re.compile("|".join(map(re.escape, sorted(TEMPORAL_STEMS))))

ADJECTIVE_SUFFIX = re.compile(r"(?:al|ic|ac|ar|ous|ive|ed|ile|ary|ory|ing)$")

WORD = re.compile(r"[^\W\d_][\w'-]*")

# ---------------------------------------------------------------------------------------------
# Step 3 (small): sentences that are not about the image
# ---------------------------------------------------------------------------------------------

NOT_ABOUT_IMAGE = lc.compile(
    r"\b(?:notified|discussed\s+with|communicated|telephoned?|paged|by\s+phone|called\s+to|"
    r"d/w|were\s+(?:conveyed|reported)\s+to|follow[- ]?up|short[- ]interval|until\s+cleared|"
    r"document\s+(?:complete\s+)?(?:resolution|clearing|stability)|to\s+ensure\s+(?:complete\s+)?"
    r"resolution|recommend\w*|would\s+be\s+(?:reasonable|helpful|useful)|advised|"
    r"clinical(?:ly)?\s+correlat\w*|correlate\s+clinically)\b"
)

PASSIVE_END = lc.compile(r"\b(?:is|are|be|was|were)\s*$")

CONDITIONAL = lc.compile(r"^\s*if\b")

# ---------------------------------------------------------------------------------------------
# Step 2: temporal / comparison content
# ---------------------------------------------------------------------------------------------

STUDY = (
    r"(?:radiographs?|radiography|x-?rays?|films?|exams?|examinations?|studies|study|images?|"
    r"imaging|ct|cts|scans?|cxrs?|mri|pet|ultrasound|one|ones)"
)

REF_WORD = (
    rf"(?:{STUDY}|prior|previous|preceding|earlier|recent|most|last|outside|initial|old|the|a|"
    r"an|same|day|day's|days|yesterday|yesterday's|today|today's|morning|evening|afternoon|"
    r"night|weeks?|months?|years?|ago|chest|portable|pa|ap|lateral|frontal|upright|supine|"
    r"views?|from|of|on|dated|obtained|performed|done|taken|at|and|___+|xxxx|\d[\d:/.-]*|"
    r"am|pm|a\.m\.|p\.m\.|hours?|hrs?|earlier|through)"
)

REF_CORE = rf"(?:{STUDY}|prior|previous|preceding|earlier|recent|last|outside|___+|xxxx)"

TEMPORAL_ADJ = r"(?:prior|previous|preceding|earlier|recent|last|outside)"

DEGREE = (
    r"(?:slightly|mildly|minimally|somewhat|markedly|significantly|substantially|much|further|"
    r"newly|increasingly|progressively|interval|again|continued|persistently|previously|"
    r"slight|mild|marked|significant|moderate|minimal|substantial|little|overall|essentially|"
    r"grossly|largely|relatively|also|now|otherwise|not\s+significantly)"
)

PARTIAL = (
    r"(?:partial|partially|near|nearly|near-complete|near\s+complete|almost|incomplete|"
    r"incompletely|largely|mostly|partly|some|slight|gradual|ongoing|continued|continuing|"
    r"further|improving|minimal|mild|not\s+completely|not\s+entirely)"
)

GONE = r"(?:resolution|clearing|clearance|removal|resolved|cleared|removed|withdrawal)"

# Spatial comparisons that are findings, rewritten without the temporal word.
SPATIAL_WORSE = lc.compile(
    r"\b(left|right|bases?|apices|upper|lower|medial|lateral|central|peripheral)"
    r"(\s+(?:is\s+)?(?:slightly\s+|much\s+)?)worse(\s+(?:than\s+)?(?:the\s+)?)"
    r"(?=left|right|bases?|apices|upper|lower|medial|lateral|central|peripheral)"
)

WORST = lc.compile(r"\bworst\b")

# Sentence-level rewrites of resolution into absence (or presence for partial resolution).
LEAD_IN = r"^(?:there\s+(?:has|have)\s+been\s+|there\s+(?:is|are)\s+|with\s+)?"

PARTIAL_PREFIX = lc.compile(
    rf"{LEAD_IN}(?:interval\s+)?{PARTIAL}[\s-]+(?:complete\s+)?"
    rf"(?:{GONE}|resolving|improvement)\s+(?:of\s+|in\s+)?(?P<x>.+)$"
)

GONE_PREFIX = lc.compile(
    rf"{LEAD_IN}(?:(?:interval|complete|completely|total|full|essentially|now|subsequent|"
    rf"interim|xxxx)\s+)*{GONE}\s+(?:of\s+)?(?P<x>.+)$"
)

PARTIAL_SUFFIX = lc.compile(
    r"^(?P<x>.+?)\s+(?:(?:has|have|had|is|are)\s+)?(?:been\s+)?(?:now\s+)?"
    rf"{PARTIAL}\s+(?:resolved|cleared|resolving|clearing)\b(?P<rest>.*)$"
)

GONE_SUFFIX = lc.compile(
    r"^(?P<x>.+?)\s+(?:(?:has|have|had|is|are)\s+)?(?:(?:now|since|subsequently|completely|"
    r"essentially|entirely|also|been|interval)\s+)*(?:resolved|cleared|removed|withdrawn|"
    r"discontinued|no\s+longer\s+(?:seen|visualized|visible|present|evident|identified|"
    r"appreciated|demonstrated|apparent|noted))\b(?P<rest>.*)$"
)

RESOLVING = lc.compile(r"\bresolving\s+")

# Resolution words the rewrites could not place ("may be due to XXXX having resolved"): the
# clause is speculation about change and is dropped. "high-resolution" is a technique.
UNPLACED_RESOLUTION = lc.compile(
    r"(?<!high[- ])\b(?:resol(?:ve|ved|ves|ution)|clear(?:ed|ing|ance)|remov(?:e|ed|al))\b")

class Rule(NamedTuple):
    """A phrase removal, tried only on text that contains one of ``needles`` (lower case)."""

    needles: tuple[str, ...]
    pattern: str | re.Pattern[str]
    replacement: str

    def compiled(self) -> Rule:
        return self._replace(pattern=lc.compile(self.pattern))

    def apply(self, text: str) -> str:
        lowered = text.lower()
        if any(needle in lowered for needle in self.needles):
            return lc.sub(self.pattern, self.replacement, text)  # type: ignore[arg-type]
        return text

# Phrase removals, applied in order.
REMOVALS: tuple[Rule, ...] = tuple(
    rule.compiled()
    for rule in (
        # Findings written with comparison words (kept, reworded).
        Rule(
            ("lung volume",),
            r"\b(?:decreased|reduced|diminished|diminishing)\s+(lung\s+volumes?)\b",
            r"low \1",
        ),
        Rule(
            ("lung volume",),
            r"\b(lung\s+volumes?\s+)(?:is|are|remains?)\s+(?:\w+\s+)?(?:decreased|reduced|"
            r"diminished)\b",
            r"\1are low",
        ),
        Rule(("elevat",), r"\b(?:more|less|further|newly|increasingly)\s+(?=elevat)", ""),
        Rule(
            ("size",),
            r",?\s*(?:with\s+|(?:has|have|had|is|are)\s+(?:been\s+)?)?(?:interval\s+)?"
            r"(?:increased|decreased|increasing|decreasing)\s+(?:in\s+)?size\b",
            "",
        ),
        # Comparison with an earlier study: "compared to the prior radiograph of ___".
        Rule(
            ("compar",),
            rf",?\s*\b(?:(?:as|when|in|on)\s+)?(?:compared|comparison|comparing)\s+"
            rf"(?:to|with|against)(?:\s+{REF_WORD})*?\s+{REF_CORE}\b(?:\s+{REF_WORD}\b)*",
            "",
        ),
        Rule(
            ("prior", "previous", "preceding", "earlier", "recent", "last", "outside"),
            rf",?\s*\b(?:from|since|than|over|to|on|in|relative\s+to|versus|vs\.?|with)\s+"
            rf"(?:the\s+|a\s+|an\s+)?(?:most\s+|multiple\s+|several\s+|numerous\s+)?"
            rf"{TEMPORAL_ADJ}\b"
            rf"(?:(?:\s+{REF_WORD}\b)*?\s+{STUDY}\b(?:\s+{REF_WORD}\b)*|(?=\s*(?:[,.;:]|$)))",
            "",
        ),
        Rule(
            ("___", "xxxx"),
            r",?\s*\b(?:since|from|dated)\s+(?:the\s+)?(?:___+|xxxx)"
            r"(?:\s*(?:,|at|and)?\s*(?:___+|xxxx|\d[\d:]*(?:\s*[ap]\.?m\.?)?))*",
            "",
        ),
        Rule(
            ("the interval", "the interim", "the meantime"),
            r",?\s*\b(?:in|over|during)\s+the\s+(?:interval|interim|meantime)\b",
            "",
        ),
        Rule(
            ("removal",),
            r",?\s+(?:following|after|since|status\s+post)\s+(?:interval\s+)?removal\s+of\b.*$",
            "",
        ),
        Rule(
            ("resolved",),
            r",?\s*\b(?:suggesting|consistent\s+with|compatible\s+with)\s+(?:a\s+)?resolved\b.*$",
            "",
        ),
        Rule(
            ("before", "previously", "prior"),
            r",?\s*\b(?:as|than)\s+(?:before|previously|prior)\b",
            "",
        ),
        # Nominal comparisons: "interval increase in size of X" → "X".
        Rule(
            ("chang", "increase", "decrease", "improvement", "worsening", "reduction",
             "progression", "expansion", "persistence", "redemonstration", "interval"),
            rf"\b(?:no\s+)?(?:{DEGREE}\s+)*(?:(?:interval\s+)?(?:change|increase|decrease|"
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
        Rule(
            ("unchanged", "stab", "similar", "constant", "persist", "increas", "decreas", "improv",
             "worse", "better", "reduced", "progressed", "diminished", "new", "chang",
             "demonstrated", "again", "expand"),
            r"(?:,?\s*(?:and|but|which)\s+|,\s*|\s+)(?:(?:is|are|was|were|has|have|had|"
            r"appears?|remains?|seems?)\s+)?(?:been\s+)?(?:(?:"
            rf"{DEGREE})\s+)*(?:unchanged|stable|stably|similar|constant|persistent|persisting|"
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
        Rule(
            ("new", "stab", "unchanged", "persist", "increas", "decreas", "improv", "worse",
             "reduced", "constant", "enlarging", "continued", "prior", "previous", "diminished",
             "demonstrated", "expand", "interval"),
            rf"\b(?:{DEGREE}\s+)*(?:new|newly|stable|unchanged|persistent|persisting|"
            r"persistently|increased(?!(?:\s+[\w-]+){0,2}?\s+(?:markings?|diameter)\b)|"
            r"increasing|decreased|decreasing|improved|improving|worsened|worsening|worse|"
            r"reduced|constant|constantly|enlarging|continued|prior|previous|diminished|"
            r"redemonstrated|re-demonstrated|(?:re-?)?expanding|re-?expanded|"
            r"previously\s+(?:seen|noted|described|demonstrated|identified|visualized|present|"
            r"mentioned|reported|placed)|previously|interval)(?:\s*[,/]\s*|\s+)(?=[\w(])",
            "",
        ),
        # What is left of comparison verbs and adverbs.
        Rule(
            ("increased", "decreased", "improved", "worsened", "progressed"),
            r"\b(?:has|have)\s+(?:increased|decreased|improved|worsened|progressed)\b",
            "",
        ),
        Rule(("persist",), r"\bpersist(?:s|ed)?\b", ""),
        Rule(("again",), r"\bagain\s+", ""),
        Rule(("now",), r"\s*\bnow\b", ""),
        Rule(("previously",), r"\s+previously\b", ""),
        Rule(("remain",), r"\bremains\b", "is"),
        Rule(("remain",), r"\bremain\b", "are"),
    )
)

# "change(s)" names a finding after a descriptive adjective ("degenerative changes"),
# otherwise it is a comparison ("no change", "interval change").
CHANGE = lc.compile(
    r"(?P<before>\b[\w/-]+\s+)?\bchang(?:e|es|ed|ing)\b(?P<finding_of>\s+(?:of|related\s+to|"
    r"due\s+to|consistent\s+with|compatible\s+with)\b)?"
)

# ---------------------------------------------------------------------------------------------
# Step 1: one clinical entity per sentence
# ---------------------------------------------------------------------------------------------

CLAUSE_BREAK = lc.compile(
    # Every break starts at a space, comma or semicolon; the lookahead says so first, which
    # makes the search about ten times faster.
    r"(?=[\s,;])(?:\s*;\s*|,?\s+but\s+|,\s*however,?\s+|,?\s+whereas\s+|,?\s+while\s+|"
    r",\s+with\s+|(?<!\bare)(?<!\bis)(?<!\bwere)(?<!\bwas),?\s+(?=without\s)|"
    r"\s+with\s+(?=no\s)|,\s*(?:and\s+)?(?=(?:no|there\s+(?:is|are))\s)|"
    r"\s+and\s+(?=(?:no|there\s+(?:is|are))\s)|"
    rf"\s+with\s+(?=(?:interval\s+|{PARTIAL}[\s-]+)?(?:complete\s+)?(?:resolution|clearing|"
    r"removal)\s+of\b))"
)

CLAUSE_GATE = re.compile(r"[;,]| but | whereas | while | with| and ")

NEGATION_HEAD = lc.compile(
    r"^(?P<head>(?:there\s+(?:is|are|was|were)\s+)?(?:no|without|negative\s+for)"
    r"(?:\s+(?:radiographic\s+|definite\s+|convincing\s+)?(?:evidence|signs?|findings?)\s+"
    r"(?:of|for|to\s+suggest))?)\s+(?P<rest>.+)$"
)

EXISTENTIAL_HEAD = lc.compile(r"^(?P<head>there\s+(?:is|are))\s+(?P<rest>.+)$")

LIST_SEPARATOR = lc.compile(r"\s*,\s*(?:and\s+|or\s+|nor\s+)?|\s+(?:and|or|nor)\s+(?!/)")

# A verb phrase closing a negated list applies to every item ("No A or B is seen").
NEGATED_TAIL = lc.compile(
    r"\s+(?:(?:is|are|was|were)\s+(?:\w+\s+)?|has\s+been\s+|have\s+been\s+)?(?:seen|"
    r"identified|noted|present|demonstrated|appreciated|evident|visualized|detected|visible)"
    r"(?:\s+(?:on|in|at|within)\s+[^,]*)?$"
)

# "... to suggest pneumonia" qualifies the last item only.
LAST_ITEM_TAIL = lc.compile(r"\s+to\s+suggest\b.*$")

SUBJECT_PREDICATE = lc.compile(
    r"^(?P<subject>.+?)\s+(?P<verb>is|are|appear|appears|remain|remains|seem|seems|was|were)"
    r"\s+(?P<predicate>.+)$"
)

VERBLESS_PREDICATE = lc.compile(
    r"^(?P<subject>.+?)\s+(?P<predicate>(?:(?:are|is)\s+)?(?:within\s+normal\s+limits|normal|"
    r"unremarkable|clear|intact))$"
)

SINGULAR_VERB = {"are": "is", "appear": "appears", "remain": "remains", "seem": "seems",
                  "were": "was"}

PLURAL_VERB = {v: k for k, v in SINGULAR_VERB.items()}

PLURAL_WORDS = frozenset("hila apices bases lungs media".split())

PREPOSITION = lc.compile(r"\b(?:in|at|of|within|along|on|involving|near|from|to|over)\b")

# "Normal cardiac size, mediastinum, and vasculature": the adjective applies to every item.
SHARED_ADJECTIVES = frozenset({"normal", "unremarkable"})

SEVERITY = lc.compile(
    r"^(?:(?:mild|moderate|small|large|minimal|trace|tiny|severe|slight)\s+)+")

DETERMINER = lc.compile(r"^(?:the|a|an|this|these|those|that)\s+")

# ---------------------------------------------------------------------------------------------
# Tidying
# ---------------------------------------------------------------------------------------------

SPACES = re.compile(r"\s+")

SPACE_BEFORE_PUNCT = re.compile(r"(?=\s)\s+([,;:.)])")

EMPTY_PARENS = re.compile(r"\(\s*\)")

AN_BEFORE_CONSONANT = re.compile(r"\b([Aa])n\s+(?=[b-df-hj-np-tv-z])")

REPEATED_COMMAS = re.compile(r"(?:\s*,){2,}")

EDGE_PUNCTUATION = " \t\n,;:.-"

