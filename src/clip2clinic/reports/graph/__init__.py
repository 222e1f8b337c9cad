"""RadGraph-style entity/relation graphs of radiology reports.

Entities ANAT-DP, OBS-DP, OBS-U, OBS-DA; relations modify, located_at, suggestive_of; output
in RadGraph's JSON format (:mod:`.schema`). Backends: "rules" (offline default,
:class:`RuleGraphExtractor`) and "radgraph" (the ``radgraph`` package with a model the user
has cached, :class:`RadGraphExtractor`).

>>> graph = extract_graph("No pleural effusion.")
>>> [(e["tokens"], e["label"]) for e in graph["entities"].values()]
[('pleural', 'ANAT-DP'), ('effusion', 'OBS-DA')]
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from clip2clinic.reports.graph.rules import RuleGraphExtractor
from clip2clinic.reports.graph.schema import (
    LABELS,
    RELATIONS,
    Graph,
    empty_graph,
    node_vocabulary,
    normalise_entity_text,
    validate_graph,
)

if TYPE_CHECKING:
    from clip2clinic.reports.graph.radgraph_backend import RadGraphExtractor

__all__ = [
    "BACKENDS", "LABELS", "RELATIONS", "Graph", "RadGraphExtractor", "RuleGraphExtractor",
    "empty_graph", "extract_graph", "get_extractor", "node_vocabulary",
    "normalise_entity_text", "validate_graph",
]

BACKENDS: tuple[str, ...] = ("rules", "radgraph")


def get_extractor(backend: str = "rules", **kw):
    """A graph extractor with ``extract(text)`` and ``extract_many(texts, progress)``:
    "rules" (default) or "radgraph" (``kw`` go to :class:`RadGraphExtractor`: ``model_type``,
    ``model_cache_dir``, ...)."""
    if backend == "rules":
        return RuleGraphExtractor(**kw)
    if backend == "radgraph":
        from clip2clinic.reports.graph.radgraph_backend import RadGraphExtractor

        return RadGraphExtractor(**kw)
    raise ValueError(f"unknown graph backend {backend!r}; choose from {', '.join(BACKENDS)}")


@lru_cache(maxsize=1)
def _default_extractor() -> RuleGraphExtractor:
    return RuleGraphExtractor()


def extract_graph(text: str) -> Graph:
    """The graph of one report by the offline rule extractor."""
    return _default_extractor().extract(text)


def __getattr__(name: str):
    # The radgraph backend is imported only when asked for.
    if name == "RadGraphExtractor":
        from clip2clinic.reports.graph.radgraph_backend import RadGraphExtractor

        return RadGraphExtractor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
