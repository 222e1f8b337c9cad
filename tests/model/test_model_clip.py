"""ClinicCLIP: shapes and unit norms in both text modes, safetensors round trip without
pickles, parameter groups, and a text head that learns negation from frozen MiniLM features."""

from __future__ import annotations

import json
import random

import pytest
import torch
from torch.nn.functional import cross_entropy, normalize
from transformers import BertConfig, SwinConfig

from clip2clinic.embedded import MINILM_SOURCE
from clip2clinic.io import InputError
from clip2clinic.model import (
    ClinicCLIP,
    ClinicCLIPConfig,
    GraphConfig,
    ImageTowerConfig,
    TextHead,
    TextHeadConfig,
    TextTowerConfig,
    encode_token_features,
    graphs_to_batch,
)
from clip2clinic.reports.graph import node_vocabulary

SWIN = SwinConfig(image_size=32, patch_size=4, num_channels=1, embed_dim=8, depths=[1, 1],
                  num_heads=[1, 2], window_size=4).to_dict()  # fmt: skip
BERT = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                  intermediate_size=32, max_position_embeddings=32).to_dict()  # fmt: skip
GRAPHS = [
    {"entities": {"1": {"tokens": "effusion", "label": "OBS-DA", "start_ix": 1, "end_ix": 1,
                        "relations": [["located_at", "2"]]},
                  "2": {"tokens": "left", "label": "ANAT-DP", "start_ix": 0, "end_ix": 0,
                        "relations": []}}},
    {"entities": {}},
]  # fmt: skip


def scratch_config(mode: str, graph: bool = True, **overrides) -> ClinicCLIPConfig:
    head = TextHeadConfig(width=16, layers=1, heads=2, ff_dim=32)
    return ClinicCLIPConfig(
        image=ImageTowerConfig(config=SWIN, mean=(0.5,), std=(0.5,)),
        text=TextTowerConfig(config=BERT, mode=mode, max_length=8, head=head),
        graph=GraphConfig(hidden_dim=8) if graph else None,
        embed_dim=24,
        **overrides,
    )


def inputs(mode: str):
    generator = torch.Generator().manual_seed(0)
    pixels = torch.rand(2, 1, 32, 32, generator=generator)
    mask = torch.tensor([[1] * 8, [1] * 5 + [0] * 3], dtype=torch.bool)
    if mode == "full":
        text = torch.randint(1, 50, (2, 8), generator=generator)
    else:
        text = torch.randn(2, 8, 16, generator=generator).half()
    vocab = {text: row for row, text in enumerate(node_vocabulary(GRAPHS))}
    graphs = graphs_to_batch(GRAPHS, vocab, torch.randn(len(vocab), 16, generator=generator))
    return pixels, text, mask, graphs


@pytest.mark.parametrize("mode", ["full", "head"])
def test_embeddings_are_unit_vectors_of_embed_dim(mode):
    torch.manual_seed(0)
    model = ClinicCLIP(scratch_config(mode))
    pixels, text, mask, graphs = inputs(mode)
    out = model(pixels=pixels, text=text, attention_mask=mask, graphs=graphs)
    for name in ("image", "text", "graph"):
        assert out[name].shape == (2, 24), name
        assert torch.allclose(out[name].norm(dim=-1), torch.ones(2), atol=1e-5), name
    assert torch.equal(out["image"], model.encode_image(pixels))
    sum(o.sum() for o in out.values()).backward()
    assert all(p.grad is not None for p in model.parameters()), "a parameter got no gradient"


def test_text_input_must_match_the_mode():
    _, features, mask, _ = inputs("head")
    with pytest.raises(ValueError, match="mode 'full' takes token ids"):
        ClinicCLIP(scratch_config("full")).encode_text(features, mask)
    with pytest.raises(ValueError, match="mode 'head' takes cached token features"):
        ClinicCLIP(scratch_config("head")).encode_text(torch.ones(2, 8, dtype=torch.long), mask)


def test_no_graph_encoder_when_graph_is_off():
    model = ClinicCLIP(scratch_config("head", graph=False))
    with pytest.raises(ValueError, match="no graph encoder"):
        model.encode_graph(inputs("head")[3])


@pytest.mark.parametrize("mode", ["full", "head"])
def test_save_and_load_round_trip_without_pickles(mode, tmp_path, monkeypatch):
    torch.manual_seed(0)
    model = ClinicCLIP(scratch_config(mode, learn_temperature=True)).eval()
    with torch.no_grad():
        model.log_temperature.fill_(-3.0)
    model.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "README.md", "config.json", "model.safetensors"]  # fmt: skip
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model_type"] == "clinic_clip" and saved["clip2clinic_version"]
    assert saved["image"]["image_size"] == 32  # the preprocessing travels with the weights
    assert saved["text"]["config"]["hidden_size"] == 16 and saved["graph"]["node_dim"] == 16

    def no_pickles(*args, **kwargs):
        raise AssertionError("torch.load was called")

    monkeypatch.setattr(torch, "load", no_pickles)
    loaded = ClinicCLIP.from_pretrained(tmp_path).eval()
    pixels, text, mask, graphs = inputs(mode)
    with torch.no_grad():
        before = model(pixels=pixels, text=text, attention_mask=mask, graphs=graphs)
        after = loaded(pixels=pixels, text=text, attention_mask=mask, graphs=graphs)
    for name in before:
        assert torch.equal(before[name], after[name]), name
    assert loaded.temperature.item() == pytest.approx(torch.exp(torch.tensor(-3.0)).item())
    assert loaded.config == model.config


def test_loading_a_folder_that_is_not_a_checkpoint(tmp_path):
    with pytest.raises(InputError, match="no config.json"):
        ClinicCLIP.from_pretrained(tmp_path)
    ClinicCLIP(scratch_config("head")).save_pretrained(tmp_path)
    other = scratch_config("head", graph=False)
    other.save(tmp_path / "config.json")
    with pytest.raises(InputError, match="does not match config.json"):
        ClinicCLIP.from_pretrained(tmp_path)


def test_temperature_is_fixed_by_default_and_groups_split_backbones():
    model = ClinicCLIP(scratch_config("full"))
    assert model.temperature == 0.1
    groups = model.parameter_groups()
    backbone = {id(p) for b in model.backbones() for p in b.parameters()}
    assert {id(p) for p in groups["backbones"]} == backbone
    assert len(groups["heads"]) > 0 and not backbone & {id(p) for p in groups["heads"]}
    assert sorted(model.gradient_checkpointing_enable()) == ["bert", "swin"]


# A small version of benchmarks/text_head_negation.py: images are label vectors over four
# findings; a report mentions two, each affirmed or negated; its hard negative flips one.
# Test reports are combinations of the training templates that training never saw.
FINDINGS = ("pneumothorax", "pleural effusion", "consolidation", "edema")
AFFIRMED = ("There is a small {side} {f}.", "{F} is present on the {side}.", "Moderate {f}.")
NEGATED = ("No {f}.", "There is no {side} {f}.", "{F} is not seen.")


TRAIN, TEST, STEPS = 192, 64, 120


def negation_pair(rng: random.Random) -> tuple[str, str, list[float]]:
    mentioned = rng.sample(range(len(FINDINGS)), 2)
    present = {i: rng.random() < 0.5 for i in mentioned}
    flip = rng.choice(mentioned)
    wording = {i: (rng.randrange(3), rng.choice(("right", "left"))) for i in mentioned}

    def say(i: int, positive: bool) -> str:
        template, side = wording[i]
        text = (AFFIRMED if positive else NEGATED)[template]
        return text.format(f=FINDINGS[i], F=FINDINGS[i].capitalize(), side=side)

    report = " ".join(say(i, present[i]) for i in mentioned)
    negative = " ".join(say(i, present[i] != (i == flip)) for i in mentioned)
    return report, negative, [float(present.get(i, False)) for i in range(len(FINDINGS))]


def negation_split(train_size: int, test_size: int, rng: random.Random):
    train = [negation_pair(rng) for _ in range(train_size)]
    seen = {report for report, _, _ in train}
    test = []
    while len(test) < test_size:
        pair = negation_pair(rng)
        if pair[0] not in seen:
            test.append(pair)
    return [
        (list(reports), list(negatives), torch.tensor(labels))
        for reports, negatives, labels in (zip(*train, strict=True), zip(*test, strict=True))
    ]


def test_text_head_learns_negation_on_frozen_minilm_features():
    train, test = negation_split(TRAIN, TEST, random.Random(0))
    texts = train[0] + train[1] + test[0] + test[1]
    features, masks = encode_token_features(texts, MINILM_SOURCE, max_length=24)
    train_f, train_nf, test_f, test_nf = features.split([TRAIN, TRAIN, TEST, TEST])
    train_m, train_nm, test_m, test_nm = masks.split([TRAIN, TRAIN, TEST, TEST])
    torch.manual_seed(0)
    head = TextHead(384, TextHeadConfig(width=64, layers=1, heads=4, ff_dim=128), 32)
    image_tower = torch.nn.Linear(len(FINDINGS), 32)
    optimiser = torch.optim.AdamW([*head.parameters(), *image_tower.parameters()], lr=2e-3)
    target = torch.arange(32)
    generator = torch.Generator().manual_seed(0)
    for _ in range(STEPS):
        rows = torch.randperm(TRAIN, generator=generator)[:32]
        image = normalize(image_tower(train[2][rows]), dim=-1)
        text = normalize(head(torch.cat([train_f[rows], train_nf[rows]]),
                              torch.cat([train_m[rows], train_nm[rows]])), dim=-1)  # fmt: skip
        logits = image @ text.T / 0.1
        loss = cross_entropy(logits, target) + cross_entropy(logits[:, :32].T, target)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    head.eval()
    with torch.no_grad():
        image = normalize(image_tower(test[2]), dim=-1)
        good = (image * normalize(head(test_f, test_m), dim=-1)).sum(-1)
        bad = (image * normalize(head(test_nf, test_nm), dim=-1)).sum(-1)
    accuracy = (good > bad).float().mean().item()
    assert accuracy >= 0.9, accuracy  # chance is 0.5


def test_a_checkpoint_with_a_non_finite_weight_is_refused_naming_it(tmp_path):
    from safetensors.torch import load_file, save_file

    ClinicCLIP(scratch_config("head")).save_pretrained(tmp_path)
    tensors = load_file(str(tmp_path / "model.safetensors"))
    name = sorted(n for n, t in tensors.items() if t.is_floating_point())[0]
    tensors[name] = tensors[name].clone()
    tensors[name].view(-1)[-1] = float("inf")
    save_file(tensors, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(InputError, match=rf"tensor '{name}' has 1 non-finite value"):
        ClinicCLIP.from_pretrained(tmp_path)
