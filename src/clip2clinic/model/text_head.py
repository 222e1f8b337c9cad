"""A small trainable text encoder over cached token features of a frozen language model.

The frozen model's last hidden states (computed once, see
:mod:`clip2clinic.model.frozen_text`) go through LayerNorm + a linear map to ``width``, a few
pre-norm transformer encoder layers (so the head can relate "no" to "pneumothorax" itself),
attention pooling (a learned query over the tokens) or mean pooling, and a projection.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from clip2clinic.model.config import TextHeadConfig
from clip2clinic.model.towers import masked_mean


class TextHead(nn.Module):
    """Token features ``(B, L, input_dim)`` + mask ``(B, L)`` → ``(B, embed_dim)``."""

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
