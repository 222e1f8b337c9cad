"""The training objective: what sits between a batch's embeddings and :mod:`clip2clinic.losses`.

Built once from the loss config (as open_clip's task pairs a model with its loss), an
:class:`Objective` knows the variant's streams, readings and options; the trainer only calls
it and logs what it returns, and knows nothing of streams or hard negatives. The batch says
how its reports are laid out (:meth:`~clip2clinic.training.data.TrainBatch.split_reports`).
"""

from __future__ import annotations

import dataclasses

import torch

from clip2clinic.distributed import gather_batch
from clip2clinic.losses import (
    clinic_loss_distributed,
    clinic_loss_terms,
    softclip_loss_distributed,
)
from clip2clinic.training.config import LossConfig
from clip2clinic.training.data import TrainBatch

Embeddings = dict[str, torch.Tensor]
GRAPH_DIRECTIONS = ("i2g", "g2i", "t2g", "g2t")


class Objective:
    """The configured loss of one variant (:class:`~clip2clinic.training.config.LossConfig`).

    ``objective(embeddings, batch, temperature)`` is the loss over the global (all-rank)
    batch; :meth:`terms` its parts for logging (:attr:`columns`); :meth:`describe_non_finite`
    says which part broke when the loss is not finite.
    """

    def __init__(self, loss: LossConfig):
        loss.validate()
        self.loss = loss
        self.clinical = "c" in loss.streams

    @property
    def columns(self) -> list[str]:
        """The logged loss columns: ``loss``; for the clinic loss each direction's term
        ``loss_<a2b>`` (see :func:`~clip2clinic.losses.clinic_loss_terms`) and, with several
        soft-label streams, each stream's share ``loss_<a2b>_<s>`` (w_s·L_s)."""
        columns = ["loss"]
        if self.loss.kind == "clinic":
            directions = ["i2t", "t2i", *(GRAPH_DIRECTIONS if self.loss.graph else ())]
            for direction in directions:
                columns.append(f"loss_{direction}")
                if len(self.loss.streams) > 1:
                    columns += [f"loss_{direction}_{stream}" for stream in self.loss.streams]
        return columns

    def __call__(self, embeddings: Embeddings, batch: TrainBatch,
                 temperature: float | torch.Tensor) -> torch.Tensor:
        """The loss of one batch over the global batch (every rank must call this)."""
        loss = self.loss
        if loss.kind == "softclip":
            return softclip_loss_distributed(embeddings["image"], embeddings["text"],
                                             temperature=temperature,
                                             **dataclasses.asdict(loss.softclip))  # fmt: skip
        return clinic_loss_distributed(**self._inputs(embeddings, batch),
                                       **self._options(temperature))

    def terms(self, embeddings: Embeddings, batch: TrainBatch,
              temperature: float | torch.Tensor) -> dict[str, float]:
        """The loss terms of :attr:`columns` (all but ``loss``) over the global batch, without
        gradients (every rank must call this); empty for the softclip loss."""
        if self.loss.kind != "clinic":
            return {}
        with torch.no_grad():
            inputs = gather_batch(**self._inputs(embeddings, batch, detach=True))
            options = self._options(temperature, detach=True)
            values = {f"loss_{direction}": term.item()
                      for direction, term in clinic_loss_terms(**inputs, **options).items()}
            if len(self.loss.streams) > 1:
                for stream in self.loss.streams:
                    terms = clinic_loss_terms(**inputs, **{**options, "streams": [stream]})
                    values |= {f"loss_{d}_{stream}": term.item() for d, term in terms.items()}
        return values

    def describe_non_finite(self, embeddings: Embeddings, batch: TrainBatch,
                            temperature: float | torch.Tensor) -> str:
        """Which embeddings and which loss terms (directions) of this rank's batch are not
        finite, for the error message."""
        parts = [name for name, value in embeddings.items() if not torch.isfinite(value).all()]
        found = [f"non-finite {', '.join(parts)} embeddings"] if parts else []
        if self.loss.kind == "clinic":
            with torch.no_grad():
                terms = clinic_loss_terms(**self._inputs(embeddings, batch, detach=True),
                                          **self._options(temperature, detach=True))
            bad = [f"{name} = {value.item()}" for name, value in terms.items()
                   if not torch.isfinite(value)]  # fmt: skip
            found.append(f"non-finite loss terms: {', '.join(bad)}" if bad else
                         "every term of this rank's batch is finite")
        return "; ".join(found) or "the softclip loss"

    def _inputs(self, embeddings: Embeddings, batch: TrainBatch,
                detach: bool = False) -> dict[str, torch.Tensor | None]:
        """The clinic loss's tensors: originals and hard negatives apart, as it takes them."""
        text, text_neg = batch.split_reports(embeddings["text"])
        graph, graph_neg = batch.split_reports(embeddings.get("graph") if self.loss.graph
                                               else None)
        inputs = {
            "image": embeddings["image"], "text": text, "text_neg": text_neg,
            "graph": graph, "graph_neg": graph_neg,
            "clinical": batch.clinical if self.clinical else None,
            "clinical_neg": batch.clinical_neg if self.clinical else None,
        }  # fmt: skip
        if detach:
            return {k: None if v is None else v.detach() for k, v in inputs.items()}
        return inputs

    def _options(self, temperature: float | torch.Tensor, detach: bool = False) -> dict:
        loss = self.loss
        if detach and isinstance(temperature, torch.Tensor):
            temperature = temperature.detach()
        return {"streams": loss.streams, "thresholds": loss.thresholds, "weights": loss.weights,
                "temperature": temperature, "image_graph": loss.image_graph,
                "zero_own_negation": loss.zero_own_negation}
