"""The CLIP model: transformers image/text towers, a text head over cached frozen features,
a GCN over report graphs; architecture in :class:`ClinicCLIPConfig`, weights in safetensors."""

from clip2clinic.model.clip_model import (
    CONFIG_NAME,
    TEXT_TOWERS,
    WEIGHTS_NAME,
    ClinicCLIP,
    TextInputs,
)
from clip2clinic.model.config import (
    ClinicCLIPConfig,
    GraphConfig,
    ImageTowerConfig,
    TextHeadConfig,
    TextTowerConfig,
    embedded_config,
    paper_config,
)
from clip2clinic.model.frozen_text import (
    FrozenTextEncoder,
    encode_entities,
    encode_token_features,
)
from clip2clinic.model.graph_encoder import GraphEncoder, graph_to_data, graphs_to_batch
from clip2clinic.model.text_head import TextHead
from clip2clinic.model.towers import ImageTower, TextTower, load_backbone, load_tokenizer

__all__ = [
    "CONFIG_NAME",
    "TEXT_TOWERS",
    "WEIGHTS_NAME",
    "ClinicCLIP",
    "ClinicCLIPConfig",
    "FrozenTextEncoder",
    "GraphConfig",
    "GraphEncoder",
    "ImageTower",
    "ImageTowerConfig",
    "TextHead",
    "TextHeadConfig",
    "TextInputs",
    "TextTower",
    "TextTowerConfig",
    "embedded_config",
    "encode_entities",
    "encode_token_features",
    "graph_to_data",
    "graphs_to_batch",
    "load_backbone",
    "load_tokenizer",
    "paper_config",
]
