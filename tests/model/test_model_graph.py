"""Report graphs → torch_geometric batches → GCN embeddings (hand-made RadGraph dicts)."""

from __future__ import annotations

import pytest
import torch

from clip2clinic.model import GraphEncoder, graph_to_data, graphs_to_batch
from clip2clinic.reports.graph import LABELS, node_vocabulary


def entity(tokens, label, start, relations=()):
    return {"tokens": tokens, "label": label, "start_ix": start, "end_ix": start,
            "relations": [list(r) for r in relations]}  # fmt: skip


#: "Small right pneumothorax. No effusion."
PNEUMOTHORAX = {
    "entities": {
        "1": entity("Small", "OBS-DP", 0, [("modify", "3")]),
        "2": entity("right", "ANAT-DP", 1),
        "3": entity("pneumothorax", "OBS-DP", 2, [("located_at", "2")]),
        "4": entity("effusion", "OBS-DA", 5),
    }
}
#: "No pneumothorax."
NO_PNEUMOTHORAX = {"entities": {"1": entity("pneumothorax", "OBS-DA", 1)}}
EMPTY = {"entities": {}}
GRAPHS = [PNEUMOTHORAX, EMPTY, NO_PNEUMOTHORAX]


def vocabulary(graphs):
    return {text: row for row, text in enumerate(node_vocabulary(graphs))}


@pytest.fixture()
def table():
    vocab = vocabulary(GRAPHS)
    return vocab, torch.randn(len(vocab), 16, generator=torch.Generator().manual_seed(0))


def test_graph_data_has_node_features_types_and_undirected_edges(table):
    vocab, node_table = table
    data = graph_to_data(PNEUMOTHORAX, vocab, node_table)
    assert data.num_nodes == 4
    assert data.node_index.tolist() == [3, 2, 1, 0]
    assert torch.equal(data.x, node_table[[3, 2, 1, 0]])
    assert [LABELS[t] for t in data.entity_type] == ["OBS-DP", "ANAT-DP", "OBS-DP", "OBS-DA"]
    edges = set(map(tuple, data.edge_index.t().tolist()))
    assert edges == {(0, 2), (2, 0), (2, 1), (1, 2)}  # small–pneumothorax, pneumothorax–right


def test_batch_keeps_empty_graphs(table):
    batch = graphs_to_batch(GRAPHS, *table)
    assert batch.num_graphs == 3
    assert batch.num_nodes == 5
    assert torch.bincount(batch.batch, minlength=3).tolist() == [4, 0, 1]


def test_encoder_gives_unit_vectors_for_mixed_batch_and_gradients_flow(table):
    torch.manual_seed(0)
    encoder = GraphEncoder(node_dim=16, hidden_dim=8, embed_dim=12)
    out = torch.nn.functional.normalize(encoder(graphs_to_batch(GRAPHS, *table)), dim=-1)
    assert out.shape == (3, 12)
    assert torch.isfinite(out).all()
    assert torch.allclose(out.norm(dim=-1), torch.ones(3))
    assert torch.allclose(out[1], encoder.empty_graph / encoder.empty_graph.norm())
    # Same entity, present vs absent: the type one-hot alone must separate the reports.
    assert not torch.allclose(out[0], out[2])
    out.sum().backward()
    for name, parameter in encoder.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_only_empty_graphs(table):
    encoder = GraphEncoder(node_dim=16, hidden_dim=8, embed_dim=12)
    out = encoder(graphs_to_batch([EMPTY, EMPTY], *table))
    assert out.shape == (2, 12) and torch.isfinite(out).all()


def test_relations_change_the_embedding(table):
    torch.manual_seed(0)
    encoder = GraphEncoder(node_dim=16, hidden_dim=8, embed_dim=12)
    entities = PNEUMOTHORAX["entities"]
    unlinked = {"entities": {k: {**v, "relations": []} for k, v in entities.items()}}
    out = encoder(graphs_to_batch([PNEUMOTHORAX, unlinked], *table))
    assert not torch.allclose(out[0], out[1])


@pytest.mark.parametrize(
    ("graph", "message"),
    [
        ({"entities": {"1": entity("effusion", "OBS-XX", 0)}}, r"graph 0, entity 1: label 'OBS-XX"),
        ({"entities": {"1": entity("hernia", "OBS-DP", 0)}}, r"text 'hernia' is not in the node"),
        ({"entities": {"1": entity("right", "ANAT-DP", 0, [("modify", "9")])}}, r"has no target"),
        ({"entities": {"1": entity("right", "ANAT-DP", 0, [("modify",)])}}, r"has no target"),
        ({"nodes": []}, r"expected a dict with an 'entities' mapping"),
    ],
)
def test_bad_graphs_name_graph_and_entity(table, graph, message):
    with pytest.raises(ValueError, match=message):
        graphs_to_batch([graph], *table)


def test_encoder_rejects_node_features_of_another_width(table):
    encoder = GraphEncoder(node_dim=32, hidden_dim=8, embed_dim=12)
    with pytest.raises(ValueError, match="width 16; this encoder takes 32"):
        encoder(graphs_to_batch(GRAPHS, *table))
