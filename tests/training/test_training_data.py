"""Training batches from a prepared phantom: cached texts and labels, seeded augmentation,
[originals; negatives] order, trimmed padding, per-epoch seeded sampling split over ranks, and
no labeler/graph extractor/tokenizer anywhere in the loop."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from clip2clinic.data.corpus import PreparedCorpus
from clip2clinic.data.manifest import label_matrix, read_manifest
from clip2clinic.data.transforms import GREY
from clip2clinic.io import InputError
from clip2clinic.losses import clinical_vectors
from clip2clinic.model import graphs_to_batch
from clip2clinic.training.data import (
    Collate,
    EpochBatchSampler,
    ManifestDataset,
    load_graphs,
    open_text_cache,
)


def dataset(manifest, mode="head", **options) -> ManifestDataset:
    options = {"augment": {}, "hard_negatives": True, "graphs": True, **options}
    return ManifestDataset(manifest, open_text_cache(manifest, mode), 32, GREY, **options)


def test_items_carry_the_cached_texts_labels_and_graphs(tiny_prepared_phantom):
    manifest = tiny_prepared_phantom
    data = dataset(manifest)
    frame = read_manifest(manifest, split="train")
    cache = load_file(str(PreparedCorpus(manifest).cache / "text_features.safetensors"))
    assert len(data) == len(frame) >= 24
    item = data[3]
    row = frame.iloc[3]
    assert item["pixels"].shape == (1, 32, 32) and item["pixels"].dtype == torch.float32
    assert torch.equal(item["text"], cache["features"][row["text_id"]])
    assert torch.equal(item["text_mask"], cache["attention_mask"][row["text_id"]])
    assert torch.equal(item["text_neg"], cache["features"][row["hard_negative_text_id"]])
    expected = clinical_vectors(label_matrix(frame.iloc[[3]]), 0.5)[0]
    assert torch.equal(item["clinical"], torch.from_numpy(expected))
    assert (item["graph"], item["graph_neg"]) == (row["text_id"], row["hard_negative_text_id"])
    plain = dataset(manifest, hard_negatives=False, graphs=False)[3]
    assert set(plain) == {"index", "pixels", "text", "text_mask", "clinical"}


def test_augmentation_depends_on_seed_epoch_and_index_only(tiny_prepared_phantom):
    data = dataset(tiny_prepared_phantom)
    first = data[5]["pixels"]
    assert torch.equal(first, dataset(tiny_prepared_phantom)[5]["pixels"])  # fresh instance
    data.set_epoch(1)
    assert not torch.equal(first, data[5]["pixels"])
    evaluation = dataset(tiny_prepared_phantom, augment=None)
    assert torch.equal(evaluation[5]["pixels"], evaluation[5]["pixels"])


def test_collate_orders_originals_then_negatives_and_trims_padding(tiny_prepared_phantom):
    manifest = tiny_prepared_phantom
    data = dataset(manifest)
    graph_cache = load_graphs(manifest)
    nodes = json.loads(PreparedCorpus(manifest).graph_nodes_file.read_text())
    vocab = {name: row for row, name in enumerate(nodes)}

    def longest(item):
        return int(max(item["text_mask"].sum(), item["text_neg_mask"].sum()))

    items = sorted((data[i] for i in range(len(data))), key=longest)[:3]  # short texts
    batch = Collate(graph_cache)(items)
    assert batch.size == 3 and batch.hard_negatives
    assert batch.pixels.shape == (3, 1, 32, 32)
    length = batch.text.shape[1]
    masks = torch.stack([i["text_mask"] for i in items] + [i["text_neg_mask"] for i in items])
    assert length == int(masks.sum(dim=1).max()) < masks.shape[1]  # trimmed to the longest
    assert not masks[:, length:].any()
    for row, item in enumerate(items):
        assert torch.equal(batch.text[row], item["text"][:length])
        assert torch.equal(batch.text[3 + row], item["text_neg"][:length])
        assert torch.equal(batch.clinical_neg[row], item["clinical_neg"])
    frame = read_manifest(manifest, split="train").set_index("text_id")
    negatives = read_manifest(manifest, split="train").set_index("hard_negative_text_id")
    graphs = ([json.loads(frame.loc[[i["graph"]], "graph"].iloc[0]) for i in items]
              + [json.loads(negatives.loc[[i["graph_neg"]], "hard_negative_graph"].iloc[0])
                 for i in items])  # fmt: skip
    expected = graphs_to_batch(graphs, vocab, graph_cache.node_table)  # from the manifest's JSON
    assert batch.graphs.num_graphs == 6 and torch.equal(batch.graphs.x, expected.x)
    for name in ("batch", "entity_type", "node_index", "edge_index"):
        assert torch.equal(getattr(batch.graphs, name), getattr(expected, name)), name


def test_full_mode_reads_token_ids(tiny_prepared_phantom):
    data = dataset(tiny_prepared_phantom, mode="full", graphs=False)
    batch = Collate()([data[0], data[1]])
    assert batch.text.dtype == torch.int32 and batch.text.ndim == 2
    assert batch.text.shape == batch.text_mask.shape and batch.text_mask.dtype == torch.bool
    assert (batch.text[:, 0] == 101).all()  # every text starts with [CLS]


def test_sampler_is_seeded_per_epoch_and_resumes_mid_epoch():
    sampler = EpochBatchSampler(size=50, batch_size=8, seed=3)
    assert sampler.batches_per_epoch == len(sampler) == 6  # the incomplete tail is dropped
    epoch0 = list(sampler)
    assert all(len(batch) == 8 for batch in epoch0)
    assert len({i for batch in epoch0 for i in batch}) == 48
    assert list(sampler) == epoch0  # same epoch, same order
    sampler.set_epoch(1)
    epoch1 = list(sampler)
    assert epoch1 != epoch0
    sampler.set_epoch(1, start=4)
    assert len(sampler) == 2 and list(sampler) == epoch1[4:]
    with pytest.raises(ValueError, match="outside"):
        sampler.set_epoch(0, start=7)


def test_ranks_take_contiguous_shares_of_the_global_batch():
    single = list(EpochBatchSampler(40, 8, seed=1))
    shares = [list(EpochBatchSampler(40, 8, seed=1, rank=r, world=4)) for r in range(4)]
    for number, batch in enumerate(single):
        assert sum((share[number] for share in shares), []) == batch
    with pytest.raises(InputError, match="not divisible by the 3 processes"):
        EpochBatchSampler(40, 8, seed=1, world=3)
    with pytest.raises(InputError, match="fewer than one batch"):
        EpochBatchSampler(5, 8, seed=1)


def test_missing_caches_are_named(tiny_prepared_phantom, tmp_path):
    with pytest.raises(InputError, match="no such manifest"):
        read_manifest(tmp_path / "none.parquet")
    with pytest.raises(InputError, match="text_features.safetensors: missing"):
        open_text_cache(tmp_path / "manifest.parquet", "head")
    with pytest.raises(InputError, match="graph cache"):
        load_graphs(tmp_path / "manifest.parquet")
    with pytest.raises(InputError, match="no rows in split 'nosuch'"):
        dataset(tiny_prepared_phantom, split="nosuch")


def test_unreadable_image_drops_the_item(tiny_prepared_phantom, tmp_path, caplog):
    data = dataset(tiny_prepared_phantom, augment=None)
    data.image_paths = list(data.image_paths)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG not really")
    data.image_paths[0] = str(broken)  # absolute: the cache join keeps it
    assert data[0] is None  # never the next item's image under this item's report
    assert "broken.png" in caplog.text


def test_loading_never_runs_the_report_pipeline(tiny_prepared_phantom, monkeypatch):
    import transformers

    from clip2clinic.model import frozen_text
    from clip2clinic.reports.graph.rules import RuleGraphExtractor
    from clip2clinic.reports.labeler.rule_labeler import RuleLabeler

    def forbidden(*args, **kwargs):
        raise AssertionError("the training data path ran the report/text pipeline")

    for owner, name in [(RuleLabeler, "label"), (RuleLabeler, "label_many"),
                        (RuleGraphExtractor, "extract"), (RuleGraphExtractor, "extract_many"),
                        (transformers.AutoTokenizer, "from_pretrained"),
                        (transformers.PreTrainedTokenizerBase, "__call__"),
                        (frozen_text.FrozenTextEncoder, "__init__")]:  # fmt: skip
        monkeypatch.setattr(owner, name, forbidden)
    manifest = tiny_prepared_phantom
    nodes = load_graphs(manifest)
    for mode in ("head", "full"):
        data = dataset(manifest, mode=mode)
        sampler = EpochBatchSampler(len(data), 8, seed=0)
        loader = torch.utils.data.DataLoader(data, batch_sampler=sampler,
                                             collate_fn=Collate(nodes))
        assert sum(batch.size for batch in loader) == 8 * sampler.batches_per_epoch
