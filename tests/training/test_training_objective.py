"""The Objective between a batch's embeddings and the losses: it splits the batch's reports the
way the loss takes them, and its logged terms add up to the loss it trains with."""

from __future__ import annotations

import pytest
import torch

from clip2clinic.losses import clinic_loss, softclip_loss
from clip2clinic.training.config import LossConfig
from clip2clinic.training.data import TrainBatch
from clip2clinic.training.objective import GRAPH_DIRECTIONS, Objective

B, D = 6, 16


def batch_and_embeddings(hard_negatives: bool, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    reports = 2 * B if hard_negatives else B
    clinical = torch.randint(0, 2, (B, 42), generator=generator).float()
    batch = TrainBatch(
        size=B, pixels=torch.zeros(B, 1, 4, 4), text=torch.zeros(reports, 3, dtype=torch.long),
        text_mask=torch.ones(reports, 3, dtype=torch.long), clinical=clinical,
        clinical_neg=torch.randint(0, 2, (B, 42), generator=generator).float()
        if hard_negatives else None,
    )  # fmt: skip
    embeddings = {"image": torch.randn(B, D, generator=generator),
                  "text": torch.randn(reports, D, generator=generator),
                  "graph": torch.randn(reports, D, generator=generator)}  # fmt: skip
    return batch, embeddings


def test_the_full_model_objective_is_the_papers_loss_on_split_reports():
    loss = LossConfig(streams=["t", "c", "g"], hard_negatives=True, graph=True)
    batch, e = batch_and_embeddings(hard_negatives=True)
    expected = clinic_loss(e["image"], e["text"][:B], e["text"][B:], e["graph"][:B],
                           e["graph"][B:], batch.clinical, batch.clinical_neg,
                           streams=("t", "c", "g"), thresholds=loss.thresholds,
                           weights=loss.weights)  # fmt: skip
    objective = Objective(loss)
    assert objective(e, batch, 0.1).item() == pytest.approx(expected.item(), rel=1e-6)


def test_logged_terms_add_up_to_the_loss_and_streams_to_their_direction():
    objective = Objective(LossConfig(streams=["t", "c", "g"], hard_negatives=True, graph=True))
    batch, e = batch_and_embeddings(hard_negatives=True, seed=1)
    terms = objective.terms(e, batch, 0.1)
    assert sorted(["loss", *terms]) == sorted(objective.columns)
    directions = ["i2t", "t2i", *GRAPH_DIRECTIONS]
    total = sum(terms[f"loss_{d}"] for d in directions)
    assert total == pytest.approx(objective(e, batch, 0.1).item(), rel=1e-5)
    for d in directions:
        shares = sum(terms[f"loss_{d}_{s}"] for s in ("t", "c", "g"))
        assert shares == pytest.approx(terms[f"loss_{d}"], rel=1e-5), d


def test_without_hard_negatives_or_streams_it_is_infonce_over_the_batch():
    objective = Objective(LossConfig())
    batch, e = batch_and_embeddings(hard_negatives=False, seed=2)
    assert objective.columns == ["loss", "loss_i2t", "loss_t2i"]
    expected = clinic_loss(e["image"], e["text"])
    assert objective(e, batch, 0.1).item() == pytest.approx(expected.item(), rel=1e-6)
    assert batch.split_reports(e["text"])[1] is None


def test_softclip_has_no_terms_and_describes_a_broken_embedding():
    objective = Objective(LossConfig(kind="softclip"))
    batch, e = batch_and_embeddings(hard_negatives=False, seed=3)
    assert objective.terms(e, batch, 0.1) == {} and objective.columns == ["loss"]
    expected = softclip_loss(e["image"], e["text"], alpha=0.2)
    assert objective(e, batch, 0.1).item() == pytest.approx(expected.item(), rel=1e-6)
    clinic = Objective(LossConfig(streams=["t"]))
    e["image"][0, 0] = float("nan")
    message = clinic.describe_non_finite(e, batch, 0.1)
    assert "non-finite image embeddings" in message and "i2t = nan" in message
