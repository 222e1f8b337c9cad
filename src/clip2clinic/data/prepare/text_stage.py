"""Prepare stage 3: the texts the training loop reads, tokenised (and encoded) once.

- ``texts.parquet``: every distinct text (reports, hard negatives, omitted reports) and its
  ``text_id``;
- ``text_tokens.safetensors``: ``input_ids``/``attention_mask`` (int32, T×L) from the text
  model's tokenizer, for towers that are fine-tuned;
- ``text_features.safetensors`` (optional): the frozen text model's token features (float16,
  T×L×H) and masks, for the embedded preset's text head;
- ``graph_nodes.json`` + ``graph_nodes.safetensors``: the graph node vocabulary (distinct
  entity texts) and the frozen text model's embedding of each (the GCN's node features);
- ``graphs.safetensors``: each text's report graph, packed (:mod:`clip2clinic.data.graph_cache`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from clip2clinic.data.corpus import PreparedCorpus, texts_fingerprint
from clip2clinic.data.graph_cache import pack_graphs
from clip2clinic.io import atomic_path, write_text_atomic
from clip2clinic.model.frozen_text import FrozenTextEncoder
from clip2clinic.model.towers import load_tokenizer
from clip2clinic.reports.graph.schema import node_vocabulary

log = logging.getLogger(__name__)



def save_tensors(tensors: dict[str, torch.Tensor], target: Path, metadata: dict) -> None:
    """safetensors file written atomically, with string metadata."""
    with atomic_path(target) as tmp:
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp),
                  metadata={k: str(v) for k, v in metadata.items()})


def tokenize(texts: Sequence[str], text_model: str, max_length: int,
             batch_size: int = 1024) -> dict[str, torch.Tensor]:
    """Token ids and attention masks, padded to ``max_length`` (int32). Tokenised
    ``batch_size`` texts at a time: a fast tokenizer's per-text encodings (tokens, offsets)
    are many times the ids, and for the whole corpus at once they set prepare's peak memory."""
    tokenizer = load_tokenizer(text_model, download=True)
    ids = torch.zeros(len(texts), max_length, dtype=torch.int32)
    masks = torch.zeros(len(texts), max_length, dtype=torch.int32)
    for start in range(0, len(texts), batch_size):
        encoded = tokenizer(list(texts[start : start + batch_size]), truncation=True,
                            max_length=max_length, padding="max_length", return_tensors="pt")
        rows = slice(start, start + len(encoded["input_ids"]))
        ids[rows], masks[rows] = encoded["input_ids"], encoded["attention_mask"]
    return {"input_ids": ids, "attention_mask": masks}


def run_text_stage(texts: pd.DataFrame, graphs: Sequence[str], corpus: PreparedCorpus,
                   text_model: str, max_length: int, features: bool) -> dict[str, int]:
    """Write the text table, token cache, optional features, the graph node table and the
    packed graphs (``graphs``: each text's graph JSON in ``text_id`` order, "" for none).

    Skips files that exist and were made with the same text model, length and texts.
    """
    info = {"text_model": text_model, "max_length": max_length, "texts": len(texts),
            "text_fingerprint": texts_fingerprint(texts["text"])}
    info_path = corpus.text_info_file
    fresh = info_path.is_file() and json.loads(info_path.read_text()) == _jsonable(info)
    wanted = [corpus.texts_file, corpus.text_cache_file("input_ids"), corpus.graph_nodes_file,
              corpus.graph_node_features_file, corpus.graph_cache_file]
    wanted += [corpus.text_cache_file("features")] if features else []
    if fresh:
        damaged = damaged_files(wanted, info["text_fingerprint"])
        if not damaged:
            nodes = json.loads(corpus.graph_nodes_file.read_text())
            return {"texts": len(texts), "graph_nodes": len(nodes)}
        log.warning("%s: text cache file(s) %s missing or damaged; rebuilding the text cache",
                    corpus.cache, ", ".join(damaged))

    with atomic_path(corpus.texts_file) as tmp:
        texts.to_parquet(tmp, index=False)
    strings = list(texts["text"])
    save_tensors(tokenize(strings, text_model, max_length), corpus.text_cache_file("input_ids"),
                 info)
    encoder = FrozenTextEncoder(text_model, max_length, download=True)
    if features:
        token_features, masks = encoder.token_features(strings)
        save_tensors({"features": token_features, "attention_mask": masks},
                     corpus.text_cache_file("features"), info)
    # the graphs are parsed one at a time, twice (vocabulary, then packing): never all at once
    nodes = node_vocabulary(json.loads(graph) for graph in graphs if graph)
    embeddings = encoder.pooled(nodes) if nodes else torch.zeros(0, encoder.hidden_size)
    save_tensors({"embeddings": embeddings}, corpus.graph_node_features_file, info)
    vocab = {name: row for row, name in enumerate(nodes)}
    save_tensors(pack_graphs((json.loads(graph) if graph else None for graph in graphs), vocab),
                 corpus.graph_cache_file, info)
    write_text_atomic(json.dumps(nodes, indent=0), corpus.graph_nodes_file)
    write_text_atomic(json.dumps(_jsonable(info), indent=2), info_path)
    return {"texts": len(texts), "graph_nodes": len(nodes)}


def damaged_files(paths: Sequence[Path], fingerprint: str) -> list[str]:
    """The names of those of ``paths`` that are missing, do not read (safetensors header and
    length, Parquet footer, JSON) or whose tensors carry another text fingerprint."""
    damaged = []
    for path in paths:
        name = path.name
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
