"""The packed graph cache: every text's report graph as the graph encoder reads it, the same
batch as from the manifest's graph JSON, and clear refusals of a cache that does not fit."""

from __future__ import annotations

import json
import shutil

import pyarrow.parquet as pq
import pytest
import torch
from safetensors.torch import load_file, save_file

from clip2clinic.data.corpus import PreparedCorpus
from clip2clinic.data.graph_cache import GraphCache, pack_graphs
from clip2clinic.data.manifest import read_manifest
from clip2clinic.io import InputError
from clip2clinic.model import graphs_to_batch
from clip2clinic.training.data import load_graphs

BATCH_FIELDS = ("x", "entity_type", "node_index", "edge_index", "batch")
PNEUMOTHORAX = {"entities": {
    "1": {"tokens": "pneumothorax", "label": "OBS-DP", "relations": [["located_at", "2"]]},
    "2": {"tokens": "left apex", "label": "ANAT-DP", "relations": []},
}}  # fmt: skip


def node_vocab(manifest) -> dict[str, int]:
    nodes = json.loads(PreparedCorpus(manifest).graph_nodes_file.read_text())
    return {name: row for row, name in enumerate(nodes)}


def assert_same_batch(got, expected) -> None:
    assert got.num_graphs == expected.num_graphs
    for name in BATCH_FIELDS:
        assert torch.equal(getattr(got, name), getattr(expected, name)), name


def test_every_text_graph_batches_as_its_manifest_json(tiny_prepared_phantom):
    manifest = tiny_prepared_phantom
    graphs, vocab = load_graphs(manifest), node_vocab(manifest)
    frame = read_manifest(manifest)
    texts = pq.read_table(PreparedCorpus(manifest).texts_file).to_pandas()
    assert len(graphs) == len(texts)
    pairs = [(row.text_id, row.graph) for row in frame.itertuples()]
    pairs += [(row.hard_negative_text_id, row.hard_negative_graph) for row in frame.itertuples()]
    assert len({text_id for text_id, _ in pairs}) > 20
    for text_id, graph in pairs:  # each text alone, then all in one batch
        assert_same_batch(graphs.batch([text_id]),
                          graphs_to_batch([json.loads(graph)], vocab, graphs.node_table))
    ids, jsons = zip(*pairs, strict=True)
    assert_same_batch(graphs.batch(ids), graphs_to_batch([json.loads(g) for g in jsons], vocab,
                                                         graphs.node_table))
    assert graphs.batch(ids).num_edges > 0
    omitted_only = set(frame["omitted_text_id"]) - set(ids)
    for text_id in omitted_only:  # neither a report nor a hard negative: no graph kept
        assert graphs.batch([text_id]).num_nodes == 0


def test_pack_graphs_names_the_text_of_a_graph_it_refuses():
    vocab = {"pneumothorax": 0, "left apex": 1}
    packed = pack_graphs([PNEUMOTHORAX, None, PNEUMOTHORAX], vocab)
    assert packed["node_offsets"].tolist() == [0, 2, 2, 4]
    assert packed["edges"].tolist() == [[0, 1], [0, 1]]
    assert packed["node_index"].dtype == torch.int32 and packed["entity_type"].dtype == torch.int8
    unknown = {"entities": {"1": {"tokens": "effusion", "label": "OBS-DP", "relations": []}}}
    with pytest.raises(ValueError, match="text 1, entity 1: text 'effusion' is not in the node"):
        pack_graphs([PNEUMOTHORAX, unknown], vocab)


def test_a_cache_that_does_not_fit_is_refused():
    packed = pack_graphs([PNEUMOTHORAX], {"pneumothorax": 0, "left apex": 1})
    GraphCache(packed, torch.zeros(2, 4))
    with pytest.raises(ValueError, match="beyond the 1-row node table"):
        GraphCache(packed, torch.zeros(1, 4))
    with pytest.raises(ValueError, match="offsets do not match"):
        GraphCache({**packed, "node_index": packed["node_index"][:1]}, torch.zeros(2, 4))
    with pytest.raises(ValueError, match="missing tensor"):
        GraphCache({k: v for k, v in packed.items() if k != "edges"}, torch.zeros(2, 4))


def test_load_graphs_refuses_a_cache_of_other_texts(tiny_prepared_phantom, tmp_path):
    copy = tmp_path / "prepared"
    shutil.copytree(tiny_prepared_phantom.parent, copy)
    corpus = PreparedCorpus(copy / "manifest.parquet")
    tensors = load_file(str(corpus.graph_cache_file))
    save_file(tensors, str(corpus.graph_cache_file), metadata={"text_fingerprint": "0"})
    with pytest.raises(InputError, match="graphs.safetensors: made for other texts"):
        load_graphs(corpus.manifest)
    corpus.graph_cache_file.write_bytes(b"not a safetensors file")
    with pytest.raises(InputError, match="cannot read the graph cache"):
        load_graphs(corpus.manifest)
