"""A prepared corpus: the manifest and the cache folder beside it, whose layout is owned here.

::

    out/manifest.parquet              one row per image-report pair (clip2clinic.data.manifest)
    out/manifest_cache/
      prepare_report.json             what prepare did (counts, skips, options, version)
      texts.parquet                   every distinct text and its text_id
      text_tokens.safetensors         token ids + masks (fine-tuned text towers)
      text_features.safetensors       the frozen model's token features (the text head)
      text_cache.json                 what the text caches were made with
      graph_nodes.json / .safetensors the graph node vocabulary and its features
      graphs.safetensors              every text's report graph, packed (data.graph_cache)
      images/ or shards/              the resized image cache (paths in the manifest's
                                      ``image_cache`` column, relative to the cache folder)

The manifest's ``image_path`` (the source image) is relative to the dataset root that its
metadata records (:meth:`PreparedCorpus.source_paths`), so both folders can move.
      stages/                         prepare's resumable chunk results

``prepare`` writes it (:mod:`clip2clinic.data.prepare`); training and evaluation read it
through :class:`PreparedCorpus`, never through prepare's modules.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from clip2clinic.io import InputError

#: The manifest columns whose texts make the text table (``text_id`` order).
TEXT_COLUMNS = ("report", "hard_negative", "omitted")
#: The cache file holding each text tower input, by the tower's ``cache_key``.
_TEXT_CACHE_FILES = {"input_ids": "text_tokens.safetensors",
                     "features": "text_features.safetensors"}  # fmt: skip


class PreparedCorpus:
    """The manifest at ``manifest`` and its cache folder (``<stem>_cache`` beside it)."""

    def __init__(self, manifest: str | os.PathLike):
        self.manifest = Path(manifest)
        self.cache = self.manifest.with_name(f"{self.manifest.stem}_cache")

    def __repr__(self) -> str:
        return f"PreparedCorpus({str(self.manifest)!r})"

    # --- files -----------------------------------------------------------------------------

    @property
    def report_file(self) -> Path:
        return self.cache / "prepare_report.json"

    @property
    def lock_file(self) -> Path:
        return self.cache / ".prepare.lock"

    @property
    def stages(self) -> Path:
        """Where prepare keeps its resumable chunk results."""
        return self.cache / "stages"

    @property
    def texts_file(self) -> Path:
        return self.cache / "texts.parquet"

    @property
    def text_info_file(self) -> Path:
        return self.cache / "text_cache.json"

    def text_cache_file(self, cache_key: str) -> Path:
        """The cache of a text tower's inputs (``input_ids`` or ``features``)."""
        return self.cache / _TEXT_CACHE_FILES[cache_key]

    @property
    def graph_nodes_file(self) -> Path:
        return self.cache / "graph_nodes.json"

    @property
    def graph_node_features_file(self) -> Path:
        return self.cache / "graph_nodes.safetensors"

    @property
    def graph_cache_file(self) -> Path:
        """Every text's report graph, packed (:mod:`clip2clinic.data.graph_cache`)."""
        return self.cache / "graphs.safetensors"

    def image_path(self, image_cache: str) -> Path:
        """The cached image a manifest's ``image_cache`` value names (a PNG, or a
        ``SHARD.tar#KEY.png`` member)."""
        return self.cache / image_cache

    def image_paths(self, frame: pd.DataFrame) -> list[Path]:
        """The cached image of every row of ``frame`` (rows of this corpus's manifest)."""
        return [self.image_path(p) for p in frame["image_cache"]]

    def source_paths(self, frame: pd.DataFrame,
                     root: str | os.PathLike | None = None) -> list[Path | None]:
        """The source image (in the dataset, not the cache) of every row of ``frame``: its
        ``image_path`` under ``root``, by default the dataset root recorded at ``prepare``
        (give ``root`` when the dataset has moved); None where no file is listed."""
        from clip2clinic.data.manifest import dataset_root, source_image_paths

        return source_image_paths(frame, root if root is not None else
                                  dataset_root(self.manifest))

    # --- contents --------------------------------------------------------------------------

    def read(self, split: str | None = None,
             columns: Sequence[str] | None = None) -> pd.DataFrame:
        """The manifest's rows (of ``split``; ``columns`` only, plus the ids), checked."""
        from clip2clinic.data.manifest import read_manifest

        return read_manifest(self.manifest, split=split, columns=columns)

    def texts_fingerprint(self) -> str:
        """The fingerprint of this manifest's text table: a text cache made for it carries it
        (caches of two ``prepare`` runs mixed would point every text id at the wrong report).
        Read from the manifest's metadata; computed from its texts for a manifest written
        before it was recorded."""
        from clip2clinic.data.manifest import recorded_texts_fingerprint

        recorded = recorded_texts_fingerprint(self.manifest)
        if recorded is not None:
            return recorded
        columns = pd.read_parquet(self.manifest, columns=list(TEXT_COLUMNS))
        return texts_fingerprint(text_table(pd.concat([columns[c] for c in TEXT_COLUMNS]))["text"])

    def report(self) -> dict[str, Any] | None:
        """The prepare report, or None when prepare has not finished here."""
        if not self.report_file.is_file():
            return None
        try:
            return json.loads(self.report_file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(f"{self.report_file}: unreadable prepare report ({exc})") from None


def text_table(texts: Iterable[str]) -> pd.DataFrame:
    """Distinct ``texts`` sorted, with their ``text_id`` (deterministic)."""
    distinct = sorted(set(texts))
    return pd.DataFrame({"text_id": range(len(distinct)), "text": distinct})


def texts_fingerprint(texts: pd.Series) -> str:
    """A fingerprint of the text table's texts in order: the text caches carry it, so a
    manifest and caches of different ``prepare`` runs are told apart."""
    return str(pd.util.hash_pandas_object(texts.reset_index(drop=True)).sum())
