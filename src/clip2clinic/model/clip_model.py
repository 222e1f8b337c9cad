"""ClinicCLIP: image tower, text tower (fine-tuned or head over cached features), optional
graph encoder, each giving L2-normalised ``embed_dim`` vectors.

Saved the Hugging Face way (:class:`huggingface_hub.PyTorchModelHubMixin`): ``config.json``
(``model_type``, the clip2clinic version, the architecture and preprocessing),
``model.safetensors`` and a model card ``README.md``; loaded from a folder or a hub id, and
``push_to_hub`` uploads the three. Weights load from safetensors only, a config is data (never
code), and a non-finite weight is refused.
"""

from __future__ import annotations

import copy
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import torch
from huggingface_hub import PyTorchModelHubMixin
from safetensors import SafetensorError
from safetensors.torch import load_model, save_model
from torch import nn
from torch.nn.functional import normalize

from clip2clinic.io import InputError, atomic_path, write_text_atomic
from clip2clinic.model.card import TAGS, model_card
from clip2clinic.model.config import ClinicCLIPConfig
from clip2clinic.model.graph_encoder import GraphEncoder
from clip2clinic.model.hub import CARD_NAME, CONFIG_NAME, WEIGHTS_NAME, checkpoint_folder
from clip2clinic.model.text_head import TextHead
from clip2clinic.model.towers import ImageTower, TextTower

if TYPE_CHECKING:
    from huggingface_hub import ModelCard
    from torch_geometric.data import Batch

#: The text tower of each text mode: the one place a mode is mapped to what it computes. Each
#: builds from the text config (``build``), names its inputs in a prepared text cache
#: (``cache_key``), checks a cache's shape (``check_cache``) and makes its inputs from
#: strings (``input_encoder``).
TEXT_TOWERS: dict[str, type[TextTower] | type[TextHead]] = {"full": TextTower, "head": TextHead}
MIN_TEMPERATURE = 0.01
"""Lower bound of a learned temperature (open_clip's maximum logit scale, 100)."""
#: Keys of a transformers config that describe task heads or provenance, not the backbone.
_CONFIG_NOISE = ("id2label", "label2id", "_name_or_path", "architectures", "transformers_version")


def _architecture(model_config) -> dict:
    values = model_config.to_dict()
    return {key: value for key, value in values.items() if key not in _CONFIG_NOISE}


class TextInputs(NamedTuple):
    """A text tower's inputs: token ids (mode "full") or frozen token features (mode "head"),
    and the attention mask."""

    values: torch.Tensor
    attention_mask: torch.Tensor


class ClinicCLIP(
    nn.Module,
    PyTorchModelHubMixin,
    library_name="clip2clinic",
    license="other",
    pipeline_tag="zero-shot-image-classification",
    tags=list(TAGS),
):
    """The CLIP model of the paper: ``encode_image``, ``encode_text``, ``encode_graph``.

    ``pretrained`` loads tower weights from their sources; :meth:`from_pretrained` builds
    with ``pretrained=False`` (architecture from the config alone) and loads saved weights.
    ``self.config`` holds the full tower configs and the image size once built, so it
    rebuilds without the hub.
    """

    def __init__(self, config: ClinicCLIPConfig, pretrained: bool = True):
        super().__init__()
        config = copy.deepcopy(config)
        self.image = ImageTower(config.image, config.embed_dim, pretrained)
        config.image.config = _architecture(self.image.backbone.config)
        config.image.image_size = config.image.image_size or _image_size(self.image)
        self.text = TEXT_TOWERS[config.text.mode].build(config.text, config.embed_dim, pretrained)
        text_config = self.text.source_config
        config.text.config = _architecture(text_config)
        self.graph = None
        if config.graph is not None:
            config.graph.node_dim = config.graph.node_dim or int(text_config.hidden_size)
            self.graph = GraphEncoder(
                config.graph.node_dim, config.graph.hidden_dim, config.embed_dim
            )
        self.log_temperature = (
            nn.Parameter(torch.tensor(math.log(config.temperature)))
            if config.learn_temperature
            else None
        )
        self.config = config

    @property
    def temperature(self) -> float | torch.Tensor:
        """The softmax temperature: the config value, or a learned scalar tensor."""
        if self.log_temperature is None:
            return self.config.temperature
        return self.log_temperature.exp()

    def clamp_temperature(self) -> None:
        """Keep a learned temperature in [:data:`MIN_TEMPERATURE`, 1], as open_clip clamps its
        logit scale to [1, 100] after every optimizer step (a no-op for a fixed one)."""
        if self.log_temperature is not None:
            with torch.no_grad():
                self.log_temperature.clamp_(math.log(MIN_TEMPERATURE), 0.0)

    def encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pixels ``(B, C, H, W)`` (C = 1 is replicated as needed) → unit ``(B, embed_dim)``."""
        return normalize(self.image(pixels), dim=-1)

    def encode_text(self, text: torch.Tensor | TextInputs,
                    attention_mask: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
        """Reports → ``(B, embed_dim)``, unit norm.

        ``text`` is token ids ``(B, L)`` in text mode "full", or the cached token features
        ``(B, L, H)`` of :func:`clip2clinic.model.encode_token_features` in mode "head", with
        its ``attention_mask``; or both as one :class:`TextInputs` (what the tokenizer of
        :func:`clip2clinic.create_model_and_transforms` returns).
        """
        if attention_mask is None:
            if not isinstance(text, tuple):
                raise ValueError("encode_text needs the attention_mask (or a TextInputs)")
            text, attention_mask = text
        return normalize(self.text(text, attention_mask), dim=-1)

    def encode_graph(self, graphs: Batch) -> torch.Tensor:
        """A batch of :func:`clip2clinic.model.graphs_to_batch` → unit ``(B, embed_dim)``."""
        if self.graph is None:
            raise ValueError("this model has no graph encoder (config.graph is null)")
        return normalize(self.graph(graphs), dim=-1)

    def forward(
        self,
        pixels: torch.Tensor | None = None,
        text: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        graphs: Batch | None = None,
    ) -> dict[str, torch.Tensor]:
        """Embeddings of whichever inputs are given, keyed "image", "text", "graph" (one call,
        so DistributedDataParallel sees every used parameter)."""
        out = {}
        if pixels is not None:
            out["image"] = self.encode_image(pixels)
        if text is not None:
            if attention_mask is None:
                raise ValueError("text needs its attention_mask")
            out["text"] = self.encode_text(text, attention_mask)
        if graphs is not None:
            out["graph"] = self.encode_graph(graphs)
        return out

    def backbones(self) -> list[nn.Module]:
        """The transformers backbones this model trains (the text backbone in mode "full")."""
        return [tower.backbone for tower in (self.image, self.text) if hasattr(tower, "backbone")]

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """Trainable parameters split as "backbones" (transformers towers) and "heads"
        (projections, text head, graph encoder, temperature), e.g. for two learning rates."""
        backbone_ids = {id(p) for module in self.backbones() for p in module.parameters()}
        groups: dict[str, list[nn.Parameter]] = {"backbones": [], "heads": []}
        for parameter in self.parameters():
            if parameter.requires_grad:
                groups["backbones" if id(parameter) in backbone_ids else "heads"].append(parameter)
        return groups

    def gradient_checkpointing_enable(self) -> list[str]:
        """Turn on gradient checkpointing in every backbone that supports it; returns their
        model types."""
        enabled = []
        for backbone in self.backbones():
            if backbone.supports_gradient_checkpointing:
                # transformers 5 renamed it; 4.x has only gradient_checkpointing_enable.
                enable = getattr(backbone, "activation_checkpointing_enable", None)
                (enable or backbone.gradient_checkpointing_enable)()
                enabled.append(backbone.config.model_type)
        return enabled

    # --- saving and loading, the huggingface_hub way ----------------------------------------

    def save_pretrained(
        self,
        save_directory: str | os.PathLike,
        *,
        config: None = None,
        model_card_kwargs: dict[str, Any] | None = None,
        push_to_hub: bool = False,
        repo_id: str | None = None,
        **push_to_hub_kwargs: Any,
    ) -> Path:
        """Write ``model.safetensors``, ``config.json`` and the model card ``README.md`` (each
        atomically) into ``save_directory``; returns it. ``model_card_kwargs``: see
        :func:`clip2clinic.model.card.model_card` (variant, training_data, settings, metrics).
        ``push_to_hub`` also uploads them to ``repo_id`` (default: the folder's name)."""
        if config is not None:
            raise ValueError("a ClinicCLIP saves its own config; build the model from another")
        directory = Path(save_directory)
        directory.mkdir(parents=True, exist_ok=True)
        with atomic_path(directory / WEIGHTS_NAME) as tmp:
            save_model(self, str(tmp), metadata={"format": "pt"})
        self.config.save(directory / CONFIG_NAME)
        card = self.generate_model_card(**(model_card_kwargs or {}))
        write_text_atomic(str(card), directory / CARD_NAME)
        if push_to_hub:
            self.push_to_hub(repo_id or directory.name, model_card_kwargs=model_card_kwargs,
                             **push_to_hub_kwargs)  # fmt: skip
        return directory

    def push_to_hub(self, repo_id: str, *, model_card_kwargs: dict[str, Any] | None = None,
                    **kwargs: Any) -> str:
        """Upload what :meth:`save_pretrained` writes to the Hub repository ``repo_id`` (created
        if missing; ``kwargs``: ``private``, ``token``, ``branch``, ``commit_message``, ... of
        :meth:`huggingface_hub.ModelHubMixin.push_to_hub`); the card's usage names the repo.
        Weights trained on MIMIC-CXR may go only to a private or gated repository (see the
        card's limitations)."""
        card = {"repo_id": repo_id, **(model_card_kwargs or {})}
        return super().push_to_hub(repo_id, model_card_kwargs=card, **kwargs)

    def generate_model_card(self, **kwargs: Any) -> ModelCard:
        """The model card of this model (see :func:`clip2clinic.model.card.model_card`)."""
        return model_card(self.config, **kwargs)

    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: str | os.PathLike,
        *,
        device: str | torch.device = "cpu",
        revision: str | None = None,
        cache_dir: str | os.PathLike | None = None,
        local_files_only: bool = False,
        token: str | bool | None = None,
        force_download: bool = False,
    ) -> ClinicCLIP:
        """Rebuild a model saved by :meth:`save_pretrained` from a folder or a hub id (see
        :func:`clip2clinic.model.hub.checkpoint_folder`: Hub cache, ``HF_HUB_OFFLINE``).

        The architecture comes from ``config.json`` alone (tower sources pass the allow-list
        and are never downloaded); weights from ``model.safetensors`` only. Weights that do
        not fit the config, or any non-finite weight, raise InputError naming it.
        """
        directory = checkpoint_folder(
            pretrained_model_name_or_path, revision=revision, cache_dir=cache_dir,
            local_files_only=local_files_only, token=token, force_download=force_download,
        )  # fmt: skip
        for name in (CONFIG_NAME, WEIGHTS_NAME):
            if not (directory / name).is_file():
                raise InputError(f"{directory}: no {name}; not a ClinicCLIP checkpoint folder")
        model = cls(ClinicCLIPConfig.load(directory / CONFIG_NAME), pretrained=False)
        try:
            load_model(model, str(directory / WEIGHTS_NAME), strict=True, device=str(device))
        except (RuntimeError, SafetensorError) as exc:
            raise InputError(
                f"{directory / WEIGHTS_NAME}: does not match config.json ({exc})"
            ) from None
        for name, tensor in model.state_dict().items():
            if tensor.is_floating_point() and not torch.isfinite(tensor).all():
                bad = int((~torch.isfinite(tensor)).sum())
                raise InputError(f"{directory / WEIGHTS_NAME}: tensor {name!r} has {bad} "
                                 "non-finite value(s) (NaN or infinity); refusing to load it")
        return model.to(device)


def _image_size(tower: ImageTower) -> int:
    size = tower.backbone.config.image_size
    return int(size if isinstance(size, int) else size[0])
