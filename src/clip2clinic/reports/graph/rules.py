"""The offline rule-based graph extractor: word lists, phrase chunks and clause-scoped links.

Within the labeler's sentences and clauses (see :mod:`.presence`):

1. Tokens are matched against the word lists (:mod:`.lexicon`); runs of entity words form
   chunks ("small left pleural effusion").
2. Anatomy phrases: a run of anatomy, part, attribute and position words has one root (the
   last organ word, else the last part word); the others ``modify`` it ("left lower lobe":
   left, lower modify lobe; "heart size": size modifies heart). An attribute standing alone
   ("normal in size") modifies the anatomy named earlier in the clause.
3. Observations: the last observation word of a chunk heads it; observation words before it
   modify it ("calcified granuloma"). Modifiers, sizes and positions outside an anatomy phrase
   modify the head of their chunk, else the nearest observation of their clause.
4. ``located_at``, first rule that applies: the anatomy phrase right before the observation in
   its chunk ("pleural effusion"), right after it ("enlarged cardiac silhouette"), after a
   locative preposition in the clause ("opacity in the left lower lobe"), or the free anatomy
   phrase before it in the clause, its subject ("the lungs are clear"). Coordinated phrases
   ("hilar and mediastinal") are all targets.
5. ``suggestive_of``: the observation before a cue ("may represent", "consistent with") to
   the observation(s) after it, in the same sentence.
6. Presence: the labeler's negation and uncertainty scope of each observation head
   (OBS-DP/OBS-U/OBS-DA); modifiers take their head's class; anatomy is ANAT-DP.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from clip2clinic.io import as_text
from clip2clinic.reports.graph.lexicon import DATA_DIR, Match, load_graph_lexicon
from clip2clinic.reports.graph.presence import ReportScope
from clip2clinic.reports.graph.schema import ANATOMY, STATUS_LABEL, Graph
from clip2clinic.reports.graph.tokens import token_table
from clip2clinic.reports.labeler import RuleLabeler

_ENTITY = frozenset({"anatomy", "part", "attribute", "position", "observation", "modifier",
                     "size"})
_ANATOMY = frozenset({"anatomy", "part", "attribute", "position"})
#: Root preference inside an anatomy phrase: an organ, else a part, else an attribute.
_ROOT_RANK = {"anatomy": 2, "part": 1, "attribute": 0}
_MODIFIER = frozenset({"modifier", "size", "position"})
#: Most phrases one coordination joins ("heart, mediastinum and hila" is 3); real reports
#: list a dozen at most.
MAX_COORDINATED = 16
_JOINER = frozenset({"conjunction", "determiner"})
#: How far (in matches) a link may reach: bounds the work on run-on text.
_REACH = 16


@dataclass(eq=False)
class _Node:
    first: int
    last: int
    label: str = ANATOMY
    relations: list[tuple[str, _Node]] = field(default_factory=list)

    def link(self, name: str, target: _Node) -> None:
        if target is not self and (name, target) not in self.relations:
            self.relations.append((name, target))


@dataclass
class _Phrase:
    """An anatomy phrase: match indices (sentence-local), its root, the root it modifies when
    it is a lone attribute, and whether an observation bound it tightly."""

    members: list[int]
    root: int
    attached_to: int | None = None
    bound: bool = False
    shared_with: list[int] = field(default_factory=list)  # more roots its attributes modify


class _Links:
    """Links of one report; indices are positions in its list of matches, whose clauses
    (numbered across the report) and sentences are given."""

    def __init__(self, matches: list[Match], clause_ids: list[int], sentence_ids: list[int]):
        self.m = matches
        self.roles = [match.role for match in matches]
        self.clause_ids = clause_ids
        self.sentence_ids = sentence_ids
        self.chunk_ids = self._chunks()
        self.clause_ranges = self._clause_ranges()
        self.phrases: list[_Phrase] = []
        self.phrase_of: dict[int, int] = {}
        self.last_free: dict[int, int] = {}  # clause -> root of its latest phrase
        self.heads: list[int] = []  # ascending
        self.head_set: set[int] = set()
        self.modifies: dict[int, int] = {}   # modifier -> observation head
        self.located: dict[int, list[int]] = {}  # head -> anatomy roots
        self.by_subject: set[int] = set()
        self.suggests: list[tuple[int, int]] = []

    def _chunks(self) -> list[int | None]:
        ids: list[int | None] = []
        chunk = -1
        for i, match in enumerate(self.m):
            if match.role in _ENTITY:
                if not ids or ids[-1] is None or self.clause_ids[i] != self.clause_ids[i - 1]:
                    chunk += 1
                ids.append(chunk)
            else:
                ids.append(None)
        return ids

    def _same(self, i: int, j: int) -> bool:
        return self.chunk_ids[i] is not None and self.chunk_ids[i] == self.chunk_ids[j]

    def _clause_ranges(self) -> dict[int, tuple[int, int]]:
        ranges: dict[int, tuple[int, int]] = {}
        for i, clause in enumerate(self.clause_ids):
            ranges[clause] = (ranges.get(clause, (i, i))[0], i)
        return ranges

    def clause_range(self, i: int) -> tuple[int, int]:
        """First and last match of the clause holding match ``i``."""
        return self.clause_ranges[self.clause_ids[i]]

    # -- anatomy phrases ------------------------------------------------------------------
    def find_phrases(self) -> None:
        i = 0
        while i < len(self.m):
            if self.roles[i] not in _ANATOMY:
                i += 1
                continue
            j = i
            while j + 1 < len(self.m) and self.roles[j + 1] in _ANATOMY and self._same(i, j + 1):
                j += 1
            members = list(range(i, j + 1))
            named = [k for k in members if self.roles[k] in _ROOT_RANK]
            if named:
                root = max(named, key=lambda k: (_ROOT_RANK[self.roles[k]], k))
                self._add_phrase(members, root)
            i = j + 1
        self._join_coordinated_positions()
        self._share_attributes()

    def _add_phrase(self, members: list[int], root: int) -> None:
        phrase = _Phrase(members, root)
        clause = self.clause_ids[root]
        if all(self.roles[k] in ("attribute", "position") for k in members) \
                and clause in self.last_free:
            phrase.attached_to = self.last_free[clause]
        else:
            self.last_free[clause] = root
        for k in members:
            self.phrase_of[k] = len(self.phrases)
        self.phrases.append(phrase)

    def _join_coordinated_positions(self) -> None:
        """"right and left lower lobes": lone positions joined to the phrase after them."""
        if "position" not in self.roles:
            return
        for i in range(len(self.m)):
            if self.roles[i] != "position" or i in self.phrase_of:
                continue
            j = i + 1
            while j < len(self.m) and j not in self.phrase_of and (
                    self.roles[j] == "position" or self.roles[j] in _JOINER):
                j += 1
            if j < len(self.m) and j in self.phrase_of \
                    and self.clause_ids[j] == self.clause_ids[i] and any(
                    self.roles[k] == "conjunction" for k in range(i + 1, j)):
                phrase = self.phrases[self.phrase_of[j]]
                if phrase.members[0] == j and phrase.attached_to is None:
                    phrase.members.append(i)
                    self.phrase_of[i] = self.phrase_of[j]

    def _share_attributes(self) -> None:
        """"cardiomediastinal and hilar contours": the attribute of the last of coordinated
        phrases also modifies the roots of the bare phrases before it."""
        if "attribute" not in self.roles:
            return
        for phrase in self.phrases:
            if phrase.attached_to is not None or not any(
                    self.roles[k] == "attribute" for k in phrase.members):
                continue
            for root in self.group(phrase, forward=False):
                other = self.phrases[self.phrase_of[root]]
                if other is not phrase and all(self.roles[k] in ("anatomy", "position")
                                               for k in other.members):
                    phrase.shared_with.append(root)

    def free_phrase(self, i: int) -> _Phrase | None:
        """The phrase holding match ``i`` unless it is a lone attribute of another phrase."""
        index = self.phrase_of.get(i)
        if index is None or self.phrases[index].attached_to is not None:
            return None
        return self.phrases[index]

    def group(self, phrase: _Phrase, forward: bool) -> list[int]:
        """Roots of ``phrase`` and the phrases coordinated with it, before or after it (at most
        :data:`MAX_COORDINATED` in all, so a list of thousands stays linear)."""
        roots = [phrase.root]
        edge = max(phrase.members) if forward else min(phrase.members)
        step = 1 if forward else -1
        k = edge + step
        while 0 <= k < len(self.m) and len(roots) < MAX_COORDINATED:
            if self.roles[k] in _JOINER:
                k += step
                continue
            other = self.free_phrase(k)
            if other is None or other is phrase or self.clause_ids[k] != self.clause_ids[edge]:
                break
            if not any(self.roles[g] == "conjunction" for g in range(min(edge, k) + 1,
                                                                   max(edge, k))):
                break
            roots.append(other.root)
            phrase = other
            edge = max(other.members) if forward else min(other.members)
            k = edge + step
        return sorted(roots)

    # -- observations ---------------------------------------------------------------------
    def find_heads(self) -> None:
        observations = [i for i in range(len(self.m)) if self.roles[i] == "observation"]
        for i in observations:
            j = i + 1
            while j < len(self.m) and self._same(i, j) and self.roles[j] in _MODIFIER \
                    and j not in self.phrase_of:
                j += 1
            if j < len(self.m) and self._same(i, j) and self.roles[j] == "observation":
                continue  # modifies the observation after it; linked in attach_modifiers
            self.heads.append(i)
        self.head_set = set(self.heads)

    def attach_modifiers(self) -> None:
        """Each modifier to the head of its chunk, else the nearest head of its clause,
        preferring the one before it."""
        heads = self.heads
        for i in range(len(self.m)):
            role = self.roles[i]
            if i in self.phrase_of or i in self.head_set \
                    or not (role in _MODIFIER or role == "observation"):
                continue
            at = bisect_right(heads, i)
            after = heads[at] if at < len(heads) else None
            before = heads[at - 1] if at > 0 else None
            clause = self.clause_ids[i]
            if after is not None and self._same(i, after):
                self.modifies[i] = after
            elif before is not None and self.clause_ids[before] == clause:
                self.modifies[i] = before
            elif after is not None and self.clause_ids[after] == clause:
                self.modifies[i] = after

    def locate(self) -> None:
        for head in self.heads:
            roots = (self._tight(head, -1) or self._tight(head, 1) or self._locative(head)
                     or self._subject(head))
            if roots:
                self.located[head] = roots

    def _tight(self, head: int, step: int) -> list[int]:
        """The anatomy phrase right before (step -1) or after (+1) ``head`` in its chunk."""
        k = head + step
        while 0 <= k < len(self.m) and self._same(head, k) and abs(k - head) <= _REACH:
            phrase = self.free_phrase(k)
            if phrase is not None:
                phrase.bound = True
                return self.group(phrase, forward=step > 0)
            if self.roles[k] not in _MODIFIER and self.modifies.get(k) != head:
                return []
            k += step
        return []

    def _locative(self, head: int) -> list[int]:
        """The anatomy phrase after a preposition following ``head`` in its clause."""
        _, end = self.clause_range(head)
        seen_locative = False
        only_joiners = True
        for k in range(head + 1, min(end, head + _REACH) + 1):
            if k in self.phrase_of:
                phrase = self.free_phrase(k)
                if phrase is None or not seen_locative:
                    return []
                phrase.bound = True
                return self.group(phrase, forward=True)
            role = self.roles[k]
            if role == "locative":
                seen_locative = True
            elif k in self.head_set:
                if not only_joiners:
                    return []
            elif role not in _JOINER and role not in _MODIFIER and k not in self.modifies:
                only_joiners = False
        return []

    def _subject(self, head: int) -> list[int]:
        """The free anatomy phrase before ``head`` in its clause, with no other observation
        between them unless that one was placed the same way ("lungs are large and clear")."""
        start, _ = self.clause_range(head)
        for k in range(head - 1, max(start, head - _REACH) - 1, -1):
            if k in self.phrase_of:
                phrase = self.free_phrase(k)
                if phrase is None:
                    continue
                if phrase.bound:
                    return []
                self.by_subject.add(head)
                return self.group(phrase, forward=False)
            if k in self.head_set:
                coordinated = all(self.roles[g] in _JOINER or g in self.modifies
                                  for g in range(k + 1, head))
                if k in self.by_subject and coordinated:
                    self.by_subject.add(head)
                    return self.located[k]
                return []
        return []

    def find_suggestions(self) -> None:
        if "suggestive" not in self.roles:
            return
        for cue in (i for i in range(len(self.m)) if self.roles[i] == "suggestive"):
            at = bisect_right(self.heads, cue)
            sentence = self.sentence_ids[cue]
            if at == 0 or at == len(self.heads) or sentence != self.sentence_ids[
                    self.heads[at - 1]] or sentence != self.sentence_ids[self.heads[at]]:
                continue
            targets = [self.heads[at]]
            for h in self.heads[at + 1:at + _REACH]:
                gap = range(targets[-1] + 1, h)
                if self.sentence_ids[h] == sentence and all(
                        self.roles[g] in _JOINER or self.roles[g] in _ENTITY for g in gap):
                    targets.append(h)
                else:
                    break
            self.suggests.extend((self.heads[at - 1], t) for t in targets)

    def link(self) -> None:
        self.find_phrases()
        self.find_heads()
        self.attach_modifiers()
        self.locate()
        self.find_suggestions()


class RuleGraphExtractor:
    """RadGraph-style graphs from report text with word lists and the labeler's scope rules.

    ``labeler`` supplies negation/uncertainty (default: a :class:`RuleLabeler`); ``data_dir``
    swaps in other word lists (same layout as ``graph/data``).
    """

    def __init__(self, labeler: RuleLabeler | None = None, data_dir: str | Path = DATA_DIR):
        self.labeler = labeler or RuleLabeler()
        self.lexicon = load_graph_lexicon(Path(data_dir))

    def extract(self, text: str) -> Graph:
        """The graph of one report in RadGraph's JSON format."""
        text = as_text(text)
        words, starts = token_table(text)
        scope = ReportScope(text, self.labeler)
        lower = [w.lower() for w in words]
        matches: list[Match] = []
        clause_ids: list[int] = []
        sentence_ids: list[int] = []
        clauses_before = 0
        for number, (sent_start, sent_end) in enumerate(scope.sentences):
            first = bisect_left(starts, sent_start)
            last = bisect_left(starts, sent_end) - 1
            found = self.lexicon.matches(lower, first, last) if last >= first else []
            if not any(m.role in _ENTITY for m in found):
                continue
            clause_starts = [start for start, _ in scope.clauses(number)]
            clause_ids += [clauses_before + bisect_right(clause_starts, starts[m.first]) - 1
                           for m in found]
            clauses_before += len(clause_starts)
            sentence_ids += [number] * len(found)
            matches += found
        links = _Links(matches, clause_ids, sentence_ids)
        links.link()
        return _graph(words, _nodes(links, words, starts, scope))

    def extract_many(self, texts: Iterable[str], progress: bool = False) -> list[Graph]:
        """One graph per text, in order."""
        return [self.extract(t) for t in tqdm(texts, disable=not progress, unit="report")]


def _nodes(links: _Links, words: list[str], starts: list[int],
           scope: ReportScope) -> list[_Node]:
    """The entities of a report's links, with labels and relations, in token order."""
    m = links.m
    nodes: dict[int, _Node] = {}

    def node(i: int) -> _Node:
        if i not in nodes:
            nodes[i] = _Node(m[i].first, m[i].last)
        return nodes[i]

    for head in links.heads:
        match = m[head]
        end = starts[match.last] + len(words[match.last])
        node(head).label = STATUS_LABEL[scope.status(starts[match.first], end)]
    for phrase in links.phrases:
        root = node(phrase.attached_to if phrase.attached_to is not None else phrase.root)
        for k in phrase.members:
            node(k).link("modify", root)
            if links.roles[k] == "attribute":
                for other in phrase.shared_with:
                    node(k).link("modify", node(other))
    for modifier, head in links.modifies.items():
        node(modifier).label = node(head).label
        node(modifier).link("modify", node(head))
    for head, roots in links.located.items():
        for root in roots:
            node(head).link("located_at", node(root))
    for source, target in links.suggests:
        node(source).link("suggestive_of", node(target))
    return [nodes[i] for i in sorted(nodes)]


def _graph(words: list[str], nodes: list[_Node]) -> Graph:
    ids = {id(n): str(k) for k, n in enumerate(nodes, 1)}
    entities = {}
    for n in nodes:
        entities[ids[id(n)]] = {
            "tokens": words[n.first] if n.first == n.last else " ".join(words[n.first:n.last + 1]),
            "label": n.label,
            "start_ix": n.first,
            "end_ix": n.last,
            "relations": [[name, ids[id(target)]] for name, target in n.relations],
        }
    return {"text": " ".join(words), "entities": entities, "data_source": None,
            "data_split": "inference"}
