"""CheXbert backend: the real architecture, built tiny and random, saved and loaded back."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from transformers import BertConfig, BertTokenizer

from clip2clinic.observations import CHEXPERT_CLASSES
from clip2clinic.reports.labeler import get_labeler
from clip2clinic.reports.labeler.chexbert import (
    CHEXBERT_CONDITIONS,
    CheXbertLabeler,
    CheXbertModel,
    save_chexbert_weights,
)

WORDS = ("no yes pleural effusion heart size normal enlarged possible pneumonia lungs are "
         "clear").split()
REPORTS = ["No pleural effusion.", "Heart size is enlarged.", "", "Possible pneumonia. " * 40,
           "unknown words only"]


@pytest.fixture()
def tiny_checkpoint(tmp_path: Path) -> tuple[Path, CheXbertModel]:
    return write_tiny_chexbert(tmp_path)


def write_tiny_chexbert(tmp_path: Path) -> tuple[Path, CheXbertModel]:
    """A randomly initialised tiny CheXbert, its tokenizer and config, saved as a model folder."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", *WORDS]))
    BertTokenizer(str(vocab)).save_pretrained(tmp_path)
    config = BertConfig(vocab_size=5 + 1 + len(WORDS), hidden_size=16, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=24, max_position_embeddings=64)
    config.save_pretrained(tmp_path)
    torch.manual_seed(0)
    model = CheXbertModel(config).eval()
    save_chexbert_weights(model, tmp_path / "chexbert.safetensors")
    return tmp_path / "chexbert.safetensors", model


def test_architecture_matches_chexbert() -> None:
    model = CheXbertModel(BertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=24, vocab_size=50))
    sizes = [head.out_features for head in model.linear_heads]
    assert sizes == [4] * 13 + [2]
    assert CHEXBERT_CONDITIONS[-1] == "No Finding"
    assert set(CHEXBERT_CONDITIONS) == set(CHEXPERT_CLASSES)


def test_loads_back_identical_and_gives_valid_labels(tiny_checkpoint) -> None:
    checkpoint, original = tiny_checkpoint
    labeler = get_labeler("chexbert", str(checkpoint))
    assert isinstance(labeler, CheXbertLabeler)
    batch = labeler.tokenizer(REPORTS, padding=True, truncation=True,
                              max_length=labeler.max_length, return_tensors="pt")
    with torch.no_grad():
        want = original(batch["input_ids"], batch["attention_mask"])
        got = labeler.model(batch["input_ids"], batch["attention_mask"])
    for a, b in zip(want, got, strict=True):
        assert torch.equal(a, b)

    frame = labeler.label_many(REPORTS)
    assert list(frame.columns) == list(CHEXPERT_CLASSES) and len(frame) == len(REPORTS)
    for name in CHEXPERT_CLASSES:
        allowed = {1.0} if name == "No Finding" else {1.0, 0.0, -1.0}
        assert all(math.isnan(v) or v in allowed for v in frame[name])
    assert labeler.label(REPORTS[0]) == pytest.approx(frame.iloc[0].to_dict(), nan_ok=True)

    # saved again and reloaded: same labels
    resaved = checkpoint.with_name("again.safetensors")
    save_chexbert_weights(labeler.model, resaved)
    again = CheXbertLabeler(resaved)
    assert again.label_many(REPORTS).equals(frame)


def test_accepts_the_data_parallel_prefix_of_the_released_weights(tiny_checkpoint) -> None:
    checkpoint, original = tiny_checkpoint
    prefixed = checkpoint.with_name("prefixed.safetensors")
    save_file({f"module.{k}": v.contiguous() for k, v in original.state_dict().items()},
              str(prefixed))
    assert CheXbertLabeler(prefixed).label_many(REPORTS).equals(
        CheXbertLabeler(checkpoint).label_many(REPORTS))


def test_refuses_pickles_and_foreign_weights(tiny_checkpoint) -> None:
    checkpoint, original = tiny_checkpoint
    pickle_path = checkpoint.with_name("chexbert.pth")
    pickle_path.write_bytes(b"not loaded")
    with pytest.raises(ValueError, match="safetensors"):
        CheXbertLabeler(pickle_path)
    partial = checkpoint.with_name("partial.safetensors")
    state = {k: v.contiguous() for k, v in original.state_dict().items()
             if not k.startswith("linear_heads.13")}
    save_file(state, str(partial))
    with pytest.raises(ValueError, match="missing"):
        CheXbertLabeler(partial)
    with pytest.raises(FileNotFoundError):
        CheXbertLabeler(checkpoint.with_name("absent.safetensors"))
