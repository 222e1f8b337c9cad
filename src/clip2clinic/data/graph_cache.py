"""The prepared report graphs, packed: one graph per text of the text table (by ``text_id``),
so the training loader holds a few integer arrays, not every report's graph JSON.

``graphs.safetensors`` (:attr:`PreparedCorpus.graph_cache_file`), T texts, N nodes, E relations:

- ``node_offsets`` int64 (T + 1): text ``t``'s nodes are rows
  ``node_offsets[t]:node_offsets[t + 1]`` of ``node_index`` and ``entity_type``;
- ``node_index`` int32 (N): each node's row of the graph node table;
- ``entity_type`` int8 (N): each node's entity type, an index into
  :data:`~clip2clinic.reports.graph.schema.LABELS`;
- ``edge_offsets`` int64 (T + 1) and ``edges`` int32 (E x 2): each text's relations as
  (source, target) positions among its own nodes.

A text that is neither a report nor a hard negative (an omitted report only) has no nodes.
The manifest's ``graph`` columns keep the JSON; training reads only this file.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from clip2clinic.model.graph_encoder import graph_arrays, graph_data

if TYPE_CHECKING:
    from torch_geometric.data import Batch

#: The tensors of a packed graph cache.
GRAPH_TENSORS = ("node_offsets", "node_index", "entity_type", "edge_offsets", "edges")


def pack_graphs(graphs: Iterable[Mapping[str, Any] | None],
                vocab: Mapping[str, int]) -> dict[str, torch.Tensor]:
    """The graphs of the texts in ``text_id`` order (None: no graph) packed as the module
    docstring describes; ``vocab`` maps entity text to its node-table row. Raises ValueError
    naming the text for a graph :func:`~clip2clinic.model.graph_encoder.graph_arrays` refuses."""
    node_index, entity_type, edges = array("i"), array("b"), array("i")
    node_offsets, edge_offsets = array("q", [0]), array("q", [0])
    for text_id, graph in enumerate(graphs):
        if graph is not None:
            nodes, types, relations = graph_arrays(graph, vocab, f"text {text_id}")
            node_index.extend(nodes)
            entity_type.extend(types)
            for source, target in relations:
                edges.extend((source, target))
        node_offsets.append(len(node_index))
        edge_offsets.append(len(edges) // 2)
    return {
        "node_offsets": torch.from_numpy(np.frombuffer(node_offsets, dtype=np.int64).copy()),
        "node_index": torch.from_numpy(np.frombuffer(node_index, dtype=np.int32).copy()),
        "entity_type": torch.from_numpy(np.frombuffer(entity_type, dtype=np.int8).copy()),
        "edge_offsets": torch.from_numpy(np.frombuffer(edge_offsets, dtype=np.int64).copy()),
        "edges": torch.from_numpy(np.frombuffer(edges, dtype=np.int32).reshape(-1, 2).copy()),
    }


class GraphCache:
    """Packed report graphs (:func:`pack_graphs`'s tensors) and the node-feature table their
    ``node_index`` points into; :meth:`batch` gives the graph encoder's input."""

    def __init__(self, packed: Mapping[str, torch.Tensor], node_table: torch.Tensor,
                 where: str = "graph cache"):
        missing = [name for name in GRAPH_TENSORS if name not in packed]
        if missing:
            raise ValueError(f"{where}: missing tensor(s) {', '.join(missing)}")
        self.node_offsets, self.node_index, self.entity_type, self.edge_offsets, self.edges = (
            packed[name] for name in GRAPH_TENSORS)
        self.node_table = node_table
        texts = len(self.node_offsets) - 1
        if (texts < 0 or len(self.edge_offsets) != texts + 1
                or not int(self.node_offsets[-1]) == len(self.node_index) == len(self.entity_type)
                or int(self.edge_offsets[-1]) != len(self.edges)):
            raise ValueError(f"{where}: offsets do not match the node and edge tensors")
        if len(self.node_index) and int(self.node_index.max()) >= len(node_table):
            raise ValueError(f"{where}: node rows beyond the {len(node_table)}-row node table")

    def __len__(self) -> int:
        """The number of texts."""
        return len(self.node_offsets) - 1

    def batch(self, text_ids: Sequence[int]) -> Batch:
        """The graphs of ``text_ids`` as one torch_geometric ``Batch``, as
        :func:`~clip2clinic.model.graph_encoder.graphs_to_batch` makes it from their JSON."""
        from torch_geometric.data import Batch

        data = []
        for text_id in text_ids:
            nodes = slice(int(self.node_offsets[text_id]), int(self.node_offsets[text_id + 1]))
            edges = slice(int(self.edge_offsets[text_id]), int(self.edge_offsets[text_id + 1]))
            data.append(graph_data(self.node_index[nodes], self.entity_type[nodes],
                                   self.edges[edges], self.node_table))
        return Batch.from_data_list(data)
