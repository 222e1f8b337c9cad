"""Report graphs (RadGraph format) as torch_geometric batches, and the GCN that embeds them.

A graph is ``{"entities": {id: {"tokens": str, "label": str, "start_ix": int, "end_ix": int,
"relations": [[relation_type, target_id], ...]}}}``. Each entity is a node whose features are
the frozen text model's embedding of its text (a row of a node-feature table computed once
per distinct entity string: :func:`clip2clinic.reports.graph.node_vocabulary` and
:func:`clip2clinic.model.frozen_text.encode_entities`) ⊕ a one-hot of its entity type, in the
order of :data:`clip2clinic.reports.graph.LABELS` (ANAT-DP, OBS-DP, OBS-U, OBS-DA).
Relations (modify, located_at, suggestive_of) become undirected, untyped edges; GCNConv adds
self loops. torch_geometric (slow to import) loads on first use.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from clip2clinic.reports.graph.schema import LABELS, normalise_entity_text

if TYPE_CHECKING:
    from torch_geometric.data import Batch, Data


def _entities(graph: Any, where: str) -> Mapping[str, Mapping[str, Any]]:
    entities = graph.get("entities") if isinstance(graph, Mapping) else None
    if not isinstance(entities, Mapping):
        raise ValueError(f"{where}: expected a dict with an 'entities' mapping")
    return entities


def graph_arrays(graph: Mapping[str, Any], vocab: Mapping[str, int], where: str = "graph"
                 ) -> tuple[list[int], list[int], list[tuple[int, int]]]:
    """One report graph as its nodes' ``vocab`` rows, their entity types (index into
    :data:`LABELS`) and its relations as ``(source, target)`` node positions.

    Raises ValueError naming ``where`` and the entity for an unknown label, an entity text not
    in ``vocab``, or a relation to a missing entity.
    """
    entities = _entities(graph, where)
    position = {entity_id: i for i, entity_id in enumerate(entities)}
    node_index, entity_type, edges = [], [], []
    for entity_id, entity in entities.items():
        label, key = entity.get("label"), normalise_entity_text(entity.get("tokens", ""))
        if label not in LABELS:
            raise ValueError(f"{where}, entity {entity_id}: label {label!r} is not one of {LABELS}")
        if key not in vocab:
            raise ValueError(
                f"{where}, entity {entity_id}: text {key!r} is not in the node vocabulary"
            )
        node_index.append(vocab[key])
        entity_type.append(LABELS.index(label))
        for relation in entity.get("relations", []):
            target = str(relation[1]) if len(relation) == 2 else None
            if target not in position:
                raise ValueError(
                    f"{where}, entity {entity_id}: relation {relation!r} has no target entity"
                )
            edges.append((position[entity_id], position[target]))
    return node_index, entity_type, edges


def graph_data(node_index: torch.Tensor, entity_type: torch.Tensor, edges: torch.Tensor,
               node_table: torch.Tensor) -> Data:
    """A graph's ``Data`` from its node rows of ``node_table`` and entity types (N), and its
    relations (E x 2 node positions): ``x`` (node text features), ``entity_type``,
    ``node_index`` and the undirected ``edge_index``."""
    from torch_geometric.data import Data
    from torch_geometric.utils import to_undirected

    num_nodes = len(node_index)
    index = node_index.long()
    return Data(
        x=node_table.index_select(0, index),
        entity_type=entity_type.long(),
        node_index=index,
        edge_index=to_undirected(edges.long().reshape(-1, 2).t(), num_nodes=num_nodes),
        num_nodes=num_nodes,
    )


def graph_to_data(
    graph: Mapping[str, Any],
    vocab: Mapping[str, int],
    node_table: torch.Tensor,
    where: str = "graph",
) -> Data:
    """One report graph as a ``Data`` (see :func:`graph_data`; errors as
    :func:`graph_arrays`)."""
    node_index, entity_type, edges = graph_arrays(graph, vocab, where)
    return graph_data(torch.tensor(node_index, dtype=torch.long),
                      torch.tensor(entity_type, dtype=torch.long),
                      torch.tensor(edges, dtype=torch.long), node_table)


def graphs_to_batch(
    graphs: Sequence[Mapping[str, Any]], vocab: Mapping[str, int], node_table: torch.Tensor
) -> Batch:
    """A list of report graphs as one torch_geometric ``Batch`` (for a collate function);
    empty graphs are kept and counted in ``num_graphs``.

    ``vocab`` maps entity text to its row of ``node_table``, e.g.
    ``{text: row for row, text in enumerate(node_vocabulary(all_graphs))}``.
    """
    from torch_geometric.data import Batch

    return Batch.from_data_list(
        [graph_to_data(graph, vocab, node_table, f"graph {i}") for i, graph in enumerate(graphs)]
    )


class GraphEncoder(nn.Module):
    """Two GCN layers, (node_dim + 4) → hidden_dim → embed_dim, then a mean over each graph's
    nodes. A graph without nodes gets a learned embedding. Output is not normalised."""

    def __init__(self, node_dim: int, hidden_dim: int, embed_dim: int):
        from torch_geometric.nn import GCNConv

        super().__init__()
        self.node_dim = node_dim
        self.conv1 = GCNConv(node_dim + len(LABELS), hidden_dim)
        self.conv2 = GCNConv(hidden_dim, embed_dim)
        self.empty_graph = nn.Parameter(torch.randn(embed_dim) / embed_dim**0.5)

    def forward(self, batch: Batch) -> torch.Tensor:
        from torch_geometric.nn import global_mean_pool

        if batch.x.shape[-1] != self.node_dim:
            raise ValueError(
                f"graph node features have width {batch.x.shape[-1]}; this encoder takes "
                f"{self.node_dim} (the node table must come from the same frozen text model)"
            )
        types = nn.functional.one_hot(batch.entity_type, len(LABELS))
        x = torch.cat([batch.x, types], dim=-1).to(self.empty_graph.dtype)
        x = self.conv1(x, batch.edge_index).relu()
        x = self.conv2(x, batch.edge_index)
        pooled = global_mean_pool(x, batch.batch, size=batch.num_graphs)
        nodes = torch.bincount(batch.batch, minlength=batch.num_graphs)
        return torch.where((nodes > 0).unsqueeze(-1), pooled, self.empty_graph.to(pooled.dtype))
