"""Towers loaded the real way: local folders by path (as hub models are), the bundled MiniLM
offline, and frozen features for the text head and the graph's node table."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file
from transformers import BertConfig, BertModel, SwinConfig, SwinModel

from clip2clinic.embedded import (
    BUNDLED_PACKAGES,
    MINILM_SOURCE,
    minilm_dir,
    package_model_dir,
    resolve_source,
)
from clip2clinic.io import InputError
from clip2clinic.model import (
    FrozenTextEncoder,
    ImageTower,
    ImageTowerConfig,
    TextTower,
    TextTowerConfig,
    load_backbone,
    load_tokenizer,
)

TINY_SWIN = SwinConfig(image_size=32, patch_size=4, num_channels=3, embed_dim=8, depths=[1, 1],
                       num_heads=[1, 2], window_size=4)  # fmt: skip


@pytest.fixture(scope="module")
def minilm() -> FrozenTextEncoder:
    return FrozenTextEncoder(MINILM_SOURCE, max_length=32)


@pytest.fixture(scope="module")
def bert_folder(tmp_path_factory):
    """A tiny random BERT with MiniLM's tokenizer, saved as a hub-style folder."""
    folder = tmp_path_factory.mktemp("tiny-bert")
    torch.manual_seed(0)
    config = BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)  # fmt: skip
    BertModel(config).save_pretrained(folder)
    load_tokenizer(MINILM_SOURCE).save_pretrained(folder)
    return folder


def test_minilm_folder_is_found_in_the_package(monkeypatch):
    folder = minilm_dir()
    assert (folder / "config.json").is_file() and (folder / "model.safetensors").is_file()
    assert resolve_source(MINILM_SOURCE) == str(folder)
    assert resolve_source("emilyalsentzer/Bio_ClinicalBERT") == "emilyalsentzer/Bio_ClinicalBERT"
    with pytest.raises(InputError, match="not a bundled model package"):
        package_model_dir("no_such_pkg")
    monkeypatch.setitem(BUNDLED_PACKAGES, "no_such_pkg", "no-such-pkg")
    with pytest.raises(FileNotFoundError, match="'no_such_pkg' is not installed"):
        package_model_dir("no_such_pkg")


def test_minilm_embeddings_are_sensible_offline(minilm, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    texts = [
        "There is a large right pleural effusion.",
        "A big pleural effusion is seen on the right side.",
        "The patient was discharged home in the afternoon.",
    ]
    emb = torch.nn.functional.normalize(minilm.pooled(texts), dim=-1)
    assert emb.shape == (3, 384)
    paraphrase, unrelated = emb[0] @ emb[1], emb[0] @ emb[2]
    assert paraphrase > 0.7 and unrelated < 0.3, (paraphrase, unrelated)


def test_token_features_are_padded_float16_in_input_order(minilm):
    texts = ["A much longer report about a small left apical pneumothorax.", "No effusion."]
    features, masks = minilm.token_features(texts, batch_size=1)
    assert features.shape == (2, 32, 384) and features.dtype == torch.float16
    assert masks.dtype == torch.bool
    short = len(minilm.tokenizer(texts[1])["input_ids"])  # with [CLS] and [SEP]
    assert masks.sum(dim=1).tolist() == [len(minilm.tokenizer(texts[0])["input_ids"]), short]
    assert (features[1, short:] == 0).all() and (features[1, :short].abs().sum(-1) > 0).all()
    # Per-batch padding gives the same features as running the text alone.
    alone, _ = minilm.token_features(texts[1:])
    assert torch.allclose(alone[0].float(), features[1].float(), atol=1e-2)


def test_text_tower_from_local_folder_loads_its_weights(bert_folder):
    saved = BertModel.from_pretrained(bert_folder)
    tower = TextTower(TextTowerConfig(source=str(bert_folder), pooling="cls"), embed_dim=16)
    assert torch.equal(tower.backbone.embeddings.word_embeddings.weight,
                       saved.embeddings.word_embeddings.weight)  # fmt: skip
    tokens = load_tokenizer(str(bert_folder))(["No pneumothorax.", "Small effusion."],
                                              return_tensors="pt", padding=True)  # fmt: skip
    out = tower(tokens["input_ids"], tokens["attention_mask"])
    assert out.shape == (2, 16) and torch.isfinite(out).all()


def test_image_tower_from_local_folder_replicates_grey_input(tmp_path):
    torch.manual_seed(0)
    SwinModel(TINY_SWIN).save_pretrained(tmp_path)
    tower = ImageTower(ImageTowerConfig(source=str(tmp_path)), embed_dim=16).eval()
    grey = torch.rand(2, 1, 32, 32)
    out = tower(grey)
    assert out.shape == (2, 16)
    assert torch.allclose(out, tower(grey.expand(-1, 3, -1, -1)))
    with pytest.raises(ValueError, match="pixels have 2 channels"):
        tower(torch.rand(2, 2, 32, 32))


@pytest.mark.parametrize("pooling", ["pooler", "mean", "cls"])
def test_image_tower_poolings(pooling):
    config = ImageTowerConfig(config=TINY_SWIN.to_dict(), pooling=pooling)
    out = ImageTower(config, embed_dim=16, pretrained=False)(torch.rand(3, 3, 32, 32))
    assert out.shape == (3, 16)


def test_pickle_only_folder_is_refused(tmp_path, bert_folder, monkeypatch):
    def no_pickles(*args, **kwargs):
        raise AssertionError("torch.load was called")

    monkeypatch.setattr(torch, "load", no_pickles)
    config = BertModel.from_pretrained(bert_folder).config
    config.save_pretrained(tmp_path)
    (tmp_path / "pytorch_model.bin").write_bytes(b"a pickle would be here")
    with pytest.raises(OSError, match="safetensors weights"):
        load_backbone(str(tmp_path), None, pretrained=True)
    # The same folder with safetensors weights loads without torch.load.
    weights = {k: v.contiguous() for k, v in BertModel(config).state_dict().items()}
    save_file(weights, tmp_path / "model.safetensors", metadata={"format": "pt"})
    assert load_backbone(str(tmp_path), None, pretrained=True).config.hidden_size == 32
