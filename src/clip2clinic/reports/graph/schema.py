"""The RadGraph schema and JSON format, shared by every graph backend.

One report's graph, as RadGraph writes it::

    {"text": "Small left pleural effusion .",          # tokens joined by single spaces
     "entities": {"1": {"tokens": "Small", "label": "OBS-DP", "start_ix": 0, "end_ix": 0,
                        "relations": [["modify", "4"]]}, ...},
     "data_source": None, "data_split": "inference"}

``start_ix``/``end_ix`` are inclusive indices into ``text.split()``; a relation
``[name, target_id]`` sits on its source entity.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

ANATOMY = "ANAT-DP"
PRESENT, UNCERTAIN, ABSENT = "OBS-DP", "OBS-U", "OBS-DA"
LABELS: tuple[str, ...] = (ANATOMY, PRESENT, UNCERTAIN, ABSENT)
RELATIONS: tuple[str, ...] = ("modify", "located_at", "suggestive_of")

#: Observation label of a labeler status (1 positive, 0 negative, -1 uncertain).
STATUS_LABEL: dict[int, str] = {1: PRESENT, 0: ABSENT, -1: UNCERTAIN}

Graph = dict[str, Any]


def empty_graph(text: str = "") -> Graph:
    """A graph with no entities."""
    return {"text": text, "entities": {}, "data_source": None, "data_split": "inference"}


def validate_graph(graph: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` saying what is wrong unless ``graph`` follows the format above:
    known labels and relations, spans inside ``text.split()`` whose words are ``tokens``,
    relation targets that exist."""
    words = str(graph.get("text", "")).split()
    entities = graph.get("entities")
    if not isinstance(entities, Mapping):
        raise ValueError("graph has no 'entities' mapping")
    for key, entity in entities.items():
        where = f"entity {key!r}"
        if entity.get("label") not in LABELS:
            raise ValueError(f"{where}: unknown label {entity.get('label')!r}")
        start, end = entity.get("start_ix"), entity.get("end_ix")
        if not (isinstance(start, int) and isinstance(end, int) and 0 <= start <= end < len(words)):
            raise ValueError(f"{where}: span {start}..{end} outside the {len(words)} tokens")
        if " ".join(words[start:end + 1]) != entity.get("tokens"):
            raise ValueError(f"{where}: tokens {entity.get('tokens')!r} are not words "
                             f"{start}..{end} of the text")
        for relation in entity.get("relations", []):
            name, target = relation
            if name not in RELATIONS:
                raise ValueError(f"{where}: unknown relation {name!r}")
            if target not in entities or target == key:
                raise ValueError(f"{where}: relation {name!r} to missing entity {target!r}")


def normalise_entity_text(tokens: str) -> str:
    """Lower-cased, single-spaced entity text: the key of a node's text embedding."""
    return " ".join(tokens.lower().split())


def node_vocabulary(graphs: Iterable[Mapping[str, Any]]) -> list[str]:
    """Distinct normalised entity texts of ``graphs``, sorted (deterministic for caching one
    text embedding per string)."""
    vocabulary = {
        normalise_entity_text(entity["tokens"])
        for graph in graphs
        for entity in graph.get("entities", {}).values()
    }
    vocabulary.discard("")
    return sorted(vocabulary)
