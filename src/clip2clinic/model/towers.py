"""Image and text towers: a transformers backbone, pooled and linearly projected.

Backbones come from ``transformers.AutoModel``: pretrained weights by hub name or local folder
(safetensors only, never remote code), or random weights from a config dict. Projections are
not normalised here; :class:`clip2clinic.model.ClinicCLIP` normalises.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, AutoTokenizer, PretrainedConfig, PreTrainedModel

from clip2clinic.embedded import resolve_source
from clip2clinic.model.config import ImageTowerConfig, TextTowerConfig


def tower_config(source: str | None, config: dict[str, Any] | None) -> PretrainedConfig:
    """The transformers config of a tower: from the ``config`` dict when given, else read from
    ``source`` (a local folder or a cached hub name; nothing is downloaded when offline)."""
    if config is not None:
        values = dict(config)
        return AutoConfig.for_model(values.pop("model_type"), **values)
    return AutoConfig.from_pretrained(resolve_source(source), trust_remote_code=False)


def load_backbone(
    source: str | None, config: dict[str, Any] | None, pretrained: bool
) -> PreTrainedModel:
    """A transformers backbone: pretrained weights from ``source`` when ``pretrained`` and a
    source is given, else random weights with the architecture of :func:`tower_config`."""
    if pretrained and source is not None:
        path = resolve_source(source)
        try:
            return AutoModel.from_pretrained(path, use_safetensors=True, trust_remote_code=False)
        except OSError as exc:
            raise OSError(
                f"cannot load the pretrained tower {source!r} ({path}): it must be a local folder "
                "or a hub model in the Hugging Face cache, with safetensors weights "
                f"(model.safetensors). Cause: {exc}"
            ) from exc
    model_config = tower_config(source, config)
    _check_swin_windows(model_config)
    return AutoModel.from_config(model_config, trust_remote_code=False)


def load_tokenizer(source: str):
    """The tokenizer of a text tower source (hub name, folder, or ``package:<module>``)."""
    return AutoTokenizer.from_pretrained(resolve_source(source), trust_remote_code=False)


def _check_swin_windows(config: PretrainedConfig) -> None:
    """transformers 5.x Swin fails at run time when a stage's feature map is smaller than the
    window (the relative position bias keeps the configured window); refuse such a config."""
    if config.model_type != "swin":
        return
    resolution = config.image_size // config.patch_size
    for stage in range(len(config.depths)):
        if resolution < config.window_size:
            raise ValueError(
                f"Swin config: stage {stage + 1} has a {resolution}x{resolution} feature map, "
                f"smaller than window_size {config.window_size}; use a larger image_size, a "
                "smaller patch_size or window_size, or fewer stages"
            )
        resolution = (resolution + 1) // 2


def drop_unused_pooler(backbone: PreTrainedModel, pooling: str) -> None:
    """Remove a trainable pooler (BERT's) that ``pooling`` does not use: its parameters would
    get no gradient, which DistributedDataParallel refuses by default."""
    pooler = getattr(backbone, "pooler", None)
    if pooling != "pooler" and isinstance(pooler, nn.Module) and list(pooler.parameters()):
        backbone.pooler = None


def pool(output: Any, attention_mask: torch.Tensor | None, pooling: str) -> torch.Tensor:
    """Pool a transformers output to one vector per item.

    ``pooler``: the model's pooler output; ``cls``: the first token; ``mean``: the mean of the
    last hidden state over the attention mask (all positions when the mask is None).
    """
    if pooling == "pooler":
        if getattr(output, "pooler_output", None) is None:
            raise ValueError("pooling 'pooler': this backbone has no pooler output; use mean/cls")
        return output.pooler_output
    hidden = output.last_hidden_state
    if pooling == "cls":
        return hidden[:, 0]
    return masked_mean(hidden, attention_mask)


def masked_mean(hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """Mean of ``hidden`` (B×L×H) over positions where ``attention_mask`` (B×L) is set."""
    if attention_mask is None:
        return hidden.mean(dim=1)
    weights = attention_mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)


class ImageTower(nn.Module):
    """Vision backbone → pooling → linear projection to ``embed_dim``.

    Accepts pixels ``(B, C, H, W)``; a 1-channel batch is replicated to the backbone's
    ``num_channels`` (grey X-rays into an RGB-pretrained Swin).
    """

    def __init__(self, config: ImageTowerConfig, embed_dim: int, pretrained: bool = True):
        super().__init__()
        self.pooling = config.pooling
        self.backbone = load_backbone(config.source, config.config, pretrained)
        drop_unused_pooler(self.backbone, self.pooling)
        self.num_channels = int(self.backbone.config.num_channels)
        self.projection = nn.Linear(self.backbone.config.hidden_size, embed_dim)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        if pixels.ndim != 4:
            raise ValueError(
                f"pixels must be (batch, channels, height, width), got {tuple(pixels.shape)}"
            )
        if pixels.shape[1] != self.num_channels:
            if pixels.shape[1] != 1:
                raise ValueError(
                    f"pixels have {pixels.shape[1]} channels; the image tower takes "
                    f"{self.num_channels} (or 1, replicated)"
                )
            pixels = pixels.expand(-1, self.num_channels, -1, -1)
        output = self.backbone(pixel_values=pixels)
        return self.projection(pool(output, None, self.pooling))


class TextTower(nn.Module):
    """Language backbone (fine-tuned) → pooling → linear projection to ``embed_dim``."""

    def __init__(self, config: TextTowerConfig, embed_dim: int, pretrained: bool = True):
        super().__init__()
        self.pooling = config.pooling
        self.backbone = load_backbone(config.source, config.config, pretrained)
        drop_unused_pooler(self.backbone, self.pooling)
        self.projection = nn.Linear(self.backbone.config.hidden_size, embed_dim)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if input_ids.dtype not in (torch.int32, torch.int64) or input_ids.ndim != 2:
            raise ValueError(
                f"text mode 'full' takes token ids (batch, length) of integers, got "
                f"{input_ids.dtype} {tuple(input_ids.shape)}"
            )
        output = self.backbone(input_ids=input_ids, attention_mask=attention_mask)
        return self.projection(pool(output, attention_mask, self.pooling))
