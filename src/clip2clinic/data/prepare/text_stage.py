"""Prepare stage 3: the texts the training loop reads, tokenised (and encoded) once.

- ``texts.parquet``: every distinct text (reports, hard negatives, omitted reports) and its
  ``text_id``;
- ``text_tokens.safetensors``: ``input_ids``/``attention_mask`` (int32, T×L) from the text
  model's tokenizer, for towers that are fine-tuned;
- ``text_features.safetensors`` (optional): the frozen text model's token features (float16,
  T×L×H) and masks, for the embedded preset's text head;
- ``graph_nodes.json`` + ``graph_nodes.safetensors``: the graph node vocabulary (distinct
  entity texts) and the frozen text model's embedding of each (the GCN's node features).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from clip2clinic.io import atomic_path, write_text_atomic
from clip2clinic.model.frozen_text import FrozenTextEncoder
from clip2clinic.model.towers import load_tokenizer
from clip2clinic.reports.graph.schema import node_vocabulary

log = logging.getLogger(__name__)

TEXTS = "texts.parquet"
TOKENS = "text_tokens.safetensors"
FEATURES = "text_features.safetensors"
NODES = "graph_nodes.json"
NODE_EMBEDDINGS = "graph_nodes.safetensors"


def text_table(texts: Iterable[str]) -> pd.DataFrame:
    """Distinct ``texts`` sorted, with their ``text_id`` (deterministic)."""
    distinct = sorted(set(texts))
    return pd.DataFrame({"text_id": range(len(distinct)), "text": distinct})


def save_tensors(tensors: dict[str, torch.Tensor], target: Path, metadata: dict) -> None:
    """safetensors file written atomically, with string metadata."""
    with atomic_path(target) as tmp:
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp),
                  metadata={k: str(v) for k, v in metadata.items()})


def tokenize(texts: Sequence[str], text_model: str, max_length: int) -> dict[str, torch.Tensor]:
    """Token ids and attention masks, padded to ``max_length`` (int32)."""
    tokenizer = load_tokenizer(text_model, download=True)
    encoded = tokenizer(list(texts), truncation=True, max_length=max_length,
                        padding="max_length", return_tensors="pt")
    return {"input_ids": encoded["input_ids"].int(),
            "attention_mask": encoded["attention_mask"].int()}


def run_text_stage(texts: pd.DataFrame, graphs: Iterable[dict], cache: Path, text_model: str,
                   max_length: int, features: bool) -> dict[str, int]:
    """Write the text table, token cache, optional features and the graph node table.

    Skips files that exist and were made with the same text model, length and texts.
    """
    info = {"text_model": text_model, "max_length": max_length, "texts": len(texts),
            "text_fingerprint": texts_fingerprint(texts["text"])}
    info_path = cache / "text_cache.json"
    fresh = info_path.is_file() and json.loads(info_path.read_text()) == _jsonable(info)
    wanted = [TEXTS, TOKENS, NODES, NODE_EMBEDDINGS] + ([FEATURES] if features else [])
    if fresh:
        damaged = damaged_files(cache, wanted, info["text_fingerprint"])
        if not damaged:
            return {"texts": len(texts),
                    "graph_nodes": len(json.loads((cache / NODES).read_text()))}
        log.warning("%s: text cache file(s) %s missing or damaged; rebuilding the text cache",
                    cache, ", ".join(damaged))

    with atomic_path(cache / TEXTS) as tmp:
        texts.to_parquet(tmp, index=False)
    strings = list(texts["text"])
    save_tensors(tokenize(strings, text_model, max_length), cache / TOKENS, info)
    encoder = FrozenTextEncoder(text_model, max_length, download=True)
    if features:
        token_features, masks = encoder.token_features(strings)
        save_tensors({"features": token_features, "attention_mask": masks}, cache / FEATURES,
                     info)
    nodes = node_vocabulary(graphs)
    embeddings = encoder.pooled(nodes) if nodes else torch.zeros(0, encoder.hidden_size)
    save_tensors({"embeddings": embeddings}, cache / NODE_EMBEDDINGS, info)
    write_text_atomic(json.dumps(nodes, indent=0), cache / NODES)
    write_text_atomic(json.dumps(_jsonable(info), indent=2), info_path)
    return {"texts": len(texts), "graph_nodes": len(nodes)}


def texts_fingerprint(texts: pd.Series) -> str:
    """A fingerprint of the text table's texts in order: the text caches carry it, so a
    manifest and caches of different ``prepare`` runs are told apart."""
    return str(pd.util.hash_pandas_object(texts.reset_index(drop=True)).sum())


def damaged_files(cache: Path, names: Sequence[str], fingerprint: str) -> list[str]:
    """Those of ``names`` in ``cache`` that are missing, do not read (safetensors header and
    length, Parquet footer, JSON) or whose tensors carry another text fingerprint."""
    damaged = []
    for name in names:
        path = cache / name
        try:
            if name.endswith(".safetensors"):
                with safe_open(str(path), framework="pt") as handle:
                    if (handle.metadata() or {}).get("text_fingerprint") != fingerprint:
                        raise ValueError("made for other texts")
            elif name.endswith(".parquet"):
                pq.read_metadata(path)
            else:
                json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, SafetensorError, pa.ArrowException):
            damaged.append(name)
    return damaged


def _jsonable(info: dict) -> dict:
    return json.loads(json.dumps(info, default=str))
