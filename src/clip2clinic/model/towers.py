"""Image and text towers: a transformers backbone, pooled and linearly projected.

Backbones come from ``transformers.AutoModel``: pretrained weights by hub name or local folder
(safetensors only, never remote code, see :mod:`clip2clinic.embedded`), or random weights from
a config dict whose sizes are checked against :data:`SIZE_LIMITS` before anything is
allocated. Projections are not normalised here; :class:`clip2clinic.model.ClinicCLIP`
normalises.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from clip2clinic.embedded import from_source
from clip2clinic.io import InputError
from clip2clinic.model.config import ImageTowerConfig, TextTowerConfig, check_sizes

if TYPE_CHECKING:  # transformers loads on first use (modeling_utils alone takes ~1.7 s)
    from transformers import PretrainedConfig, PreTrainedModel

#: Bounds of the size fields of a transformers config (inclusive); a config outside them is
#: refused before any tensor is allocated.
SIZE_LIMITS = {
    "hidden_size": 16_384, "intermediate_size": 65_536, "num_hidden_layers": 128,
    "num_attention_heads": 256, "vocab_size": 1_000_000, "max_position_embeddings": 65_536,
    "embed_dim": 4_096, "image_size": 4_096, "patch_size": 512, "num_channels": 16,
    "window_size": 512, "depths": 128, "num_heads": 256, "type_vocab_size": 1_024,
}  # fmt: skip


#: Most parameters a tower config may describe (about 8 GB in float32).
MAX_PARAMETERS = 2_000_000_000


def tower_config(
    source: str | None, config: dict[str, Any] | None, download: bool = False
) -> PretrainedConfig:
    """The transformers config of a tower: from the ``config`` dict when given, else read from
    ``source`` (a local folder, bundled package or cached hub id; fetched only if
    ``download``). Raises InputError when its sizes are out of bounds."""
    from transformers import AutoConfig

    if config is None:
        config = from_source(AutoConfig, source, download=download).to_dict()
    values = dict(config)
    where = f"tower config ({source or values.get('model_type')})"
    check_sizes(where, {k: v for k, v in values.items() if k in SIZE_LIMITS}, SIZE_LIMITS)
    if estimated_parameters(values) > MAX_PARAMETERS:
        raise InputError(
            f"{where}: describes about {estimated_parameters(values):.2g} parameters, more than "
            f"{MAX_PARAMETERS:.0e}; refusing to allocate it"
        )
    try:
        return AutoConfig.for_model(values.pop("model_type"), **values)
    except (KeyError, ValueError, TypeError) as exc:
        raise InputError(f"tower config: {exc}") from None


def load_backbone(
    source: str | None, config: dict[str, Any] | None, pretrained: bool
) -> PreTrainedModel:
    """A transformers backbone: pretrained weights from ``source`` when ``pretrained`` and a
    source is given, else random weights with the architecture of :func:`tower_config`."""
    from transformers import AutoModel

    if pretrained and source is not None:
        tower_config(source, config, download=True)  # sizes checked before allocation
        try:
            return from_source(AutoModel, source, download=True, use_safetensors=True)
        except OSError as exc:
            raise OSError(
                f"cannot load the pretrained tower {source!r}: it must be a local folder "
                "or a hub model in the Hugging Face cache, with safetensors weights "
                f"(model.safetensors). Cause: {exc}"
            ) from exc
    model_config = tower_config(source, config)
    _check_swin_windows(model_config)
    return AutoModel.from_config(model_config, trust_remote_code=False)


def load_tokenizer(source: str, download: bool = False):
    """The tokenizer of a text tower source (hub name, folder, or ``package:<module>``);
    ``download``: a hub id not in the local cache may be fetched (see :func:`from_source`)."""
    from transformers import AutoTokenizer

    return from_source(AutoTokenizer, source, download=download)


def estimated_parameters(values: dict[str, Any]) -> float:
    """A rough parameter count of a transformer config: 12·width² per layer (attention and a
    4x MLP), plus the embedding tables; Swin widths double at each stage."""
    if isinstance(values.get("depths"), list):
        width = int(values.get("embed_dim", 0))
        layers = [(width * 2**stage, int(d)) for stage, d in enumerate(values["depths"])]
    else:
        layers = [(int(values.get("hidden_size", 0)), int(values.get("num_hidden_layers", 0)))]
    tables = int(values.get("vocab_size", 0)) + int(values.get("max_position_embeddings", 0))
    return sum(12.0 * w * w * d for w, d in layers) + tables * layers[0][0]


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


class TokenInputs:
    """Text mode "full"'s inputs: token ids and attention masks from the source's tokenizer,
    truncated to ``max_length`` and padded to the longest text of the call."""

    def __init__(self, source: str | None, max_length: int):
        if source is None:
            raise ValueError("this text tower has no source, so no tokenizer to make its inputs")
        self.source, self.max_length = source, max_length

    def __call__(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        encoded = cached_tokenizer(self.source)(texts, truncation=True, max_length=self.max_length,
                                                padding=True, return_tensors="pt")  # fmt: skip
        return encoded["input_ids"], encoded["attention_mask"]

    def lengths(self, texts: list[str]) -> list[int]:
        """Token count of each text after truncation (for batching texts of like length)."""
        ids = cached_tokenizer(self.source)(texts, truncation=True,
                                            max_length=self.max_length)["input_ids"]
        return [len(row) for row in ids]


@functools.lru_cache(maxsize=4)
def cached_tokenizer(source: str) -> Any:
    """:func:`load_tokenizer` of ``source``, loaded once per process (never downloads)."""
    return load_tokenizer(source)


class TextTower(nn.Module):
    """Language backbone (fine-tuned) → pooling → linear projection to ``embed_dim``.

    Text mode "full": it takes token ids; :attr:`cache_key` names them in a prepared text
    cache and :meth:`input_encoder` makes them from strings.
    """

    cache_key = "input_ids"

    def __init__(self, config: TextTowerConfig, embed_dim: int, pretrained: bool = True):
        super().__init__()
        self.pooling = config.pooling
        self.source, self.max_length = config.source, config.max_length
        self.backbone = load_backbone(config.source, config.config, pretrained)
        drop_unused_pooler(self.backbone, self.pooling)
        self.projection = nn.Linear(self.backbone.config.hidden_size, embed_dim)

    @classmethod
    def build(cls, config: TextTowerConfig, embed_dim: int, pretrained: bool = True) -> TextTower:
        """The tower of a text tower config in mode "full" (same as the constructor)."""
        return cls(config, embed_dim, pretrained)

    @property
    def source_config(self) -> PretrainedConfig:
        """The transformers config of the text model."""
        return self.backbone.config

    def input_encoder(self, device: str | torch.device = "cpu") -> TokenInputs:
        """Strings → this tower's inputs (token ids, masks); ``device`` is where they go."""
        return TokenInputs(self.source, self.max_length)

    def check_cache(self, shape: tuple[int, ...]) -> str | None:
        """Why a cached ``input_ids`` tensor of ``shape`` (N, L) does not fit, or None."""
        positions = getattr(self.backbone.config, "max_position_embeddings", None)
        if positions is not None and shape[1] > positions:
            return (f"{shape[1]} tokens per text, the text tower takes at most {positions}; "
                    "prepare with a smaller --max-length")
        return None

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if input_ids.dtype not in (torch.int32, torch.int64) or input_ids.ndim != 2:
            raise ValueError(
                f"text mode 'full' takes token ids (batch, length) of integers, got "
                f"{input_ids.dtype} {tuple(input_ids.shape)}"
            )
        output = self.backbone(input_ids=input_ids, attention_mask=attention_mask)
        return self.projection(pool(output, attention_mask, self.pooling))
