"""A small trainable text encoder over cached token features of a frozen language model.

The frozen model's last hidden states (computed once, see
:mod:`clip2clinic.model.frozen_text`) go through LayerNorm + a linear map to ``width``, a few
pre-norm transformer encoder layers (so the head can relate "no" to "pneumothorax" itself),
attention pooling (a learned query over the tokens) or mean pooling, and a projection.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import nn

from clip2clinic.model.config import TextHeadConfig, TextTowerConfig
from clip2clinic.model.frozen_text import FeatureInputs
from clip2clinic.model.towers import masked_mean, tower_config

if TYPE_CHECKING:
    from transformers import PretrainedConfig


class TextHead(nn.Module):
    """Token features ``(B, L, input_dim)`` + mask ``(B, L)`` → ``(B, embed_dim)``.

    Text mode "head": :attr:`cache_key` names the frozen model's token features in a
    prepared text cache, and :meth:`input_encoder` computes them from strings (built with
    :meth:`build`, which records the frozen source model).
    """

    cache_key = "features"
    source: str | None = None
    max_length: int | None = None
    source_config: PretrainedConfig | None = None

    @classmethod
    def build(cls, config: TextTowerConfig, embed_dim: int, pretrained: bool = True) -> TextHead:
        """The head of a text tower config in mode "head", over its frozen source model
        (``pretrained`` does not apply: the frozen model is no part of the head)."""
        source_config = tower_config(config.source, config.config)
        head = cls(source_config.hidden_size, config.head, embed_dim)
        head.source, head.max_length = config.source, config.max_length
        head.source_config = source_config
        return head

    def __init__(self, input_dim: int, config: TextHeadConfig, embed_dim: int):
        super().__init__()
        self.input_norm = nn.LayerNorm(input_dim)
        self.input_projection = nn.Linear(input_dim, config.width)
        self.encoder = (
            nn.TransformerEncoder(
                nn.TransformerEncoderLayer(
                    config.width,
                    config.heads,
                    config.ff_dim,
                    config.dropout,
                    activation="gelu",
                    batch_first=True,
                    norm_first=True,
                ),
                config.layers,
                enable_nested_tensor=False,
            )
            if config.layers
            else None
        )
        self.query = (
            nn.Parameter(torch.zeros(config.width)) if config.pooling == "attention" else None
        )
        self.output_norm = nn.LayerNorm(config.width)
        self.projection = nn.Linear(config.width, embed_dim)

    def input_encoder(self, device: str | torch.device = "cpu") -> FeatureInputs:
        """Strings → this head's inputs: the frozen model's token features (run on
        ``device``) and masks."""
        if self.source is None or self.max_length is None:
            raise ValueError("this text head has no frozen source model to make its inputs")
        return FeatureInputs(self.source, self.max_length, device)

    def check_cache(self, shape: tuple[int, ...]) -> str | None:
        """Why cached ``features`` of ``shape`` (N, L, H) do not fit, or None."""
        width = self.input_norm.normalized_shape[0]
        if shape[2] != width:
            return f"token features of width {shape[2]}, the text head takes {width}"
        return None

    def forward(self, features: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if not features.is_floating_point() or features.ndim != 3:
            raise ValueError(
                "text mode 'head' takes cached token features (batch, length, hidden) as floats, "
                f"got {features.dtype} {tuple(features.shape)}"
            )
        mask = attention_mask.bool()
        hidden = self.input_projection(
            self.input_norm(features.to(self.input_projection.weight.dtype))
        )
        if self.encoder is not None:
            hidden = self.encoder(hidden, src_key_padding_mask=~mask)
        hidden = self.output_norm(hidden)
        if self.query is None:
            pooled = masked_mean(hidden, mask)
        else:
            scores = hidden @ self.query / math.sqrt(hidden.shape[-1])
            weights = scores.masked_fill(~mask, float("-inf")).softmax(dim=-1)
            pooled = torch.einsum("bl,blh->bh", weights.nan_to_num(0.0), hidden)
        return self.projection(pooled)
