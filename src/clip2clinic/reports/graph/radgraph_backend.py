"""Graphs from the ``radgraph`` package (Stanford-AIMI), for users who have its model cached.

Nothing is downloaded: the model folder must already be in the cache (``radgraph`` puts it
in ``<model_cache_dir>/<model_type>`` the first time it runs with network access), and the
package is loaded with the Hugging Face hub switched offline, so a missing tokenizer is an
error, not a download. Its output is converted to our format (:mod:`.schema`): RadGraph-XL
labels such as "Observation::definitely absent" become OBS-DA, every anatomy label becomes
ANAT-DP (the RadGraph v1 schema has no absent or uncertain anatomy).
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from clip2clinic.io import as_text
from clip2clinic.reports.graph.schema import (
    ABSENT,
    ANATOMY,
    LABELS,
    PRESENT,
    RELATIONS,
    UNCERTAIN,
    Graph,
    empty_graph,
)
from clip2clinic.reports.graph.tokens import joined, tokenize

log = logging.getLogger(__name__)

MODEL_TYPES: tuple[str, ...] = ("radgraph", "radgraph-xl", "modern-radgraph-xl")
_OFFLINE_ENV = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
_CERTAINTY = {"definitely present": PRESENT, "uncertain": UNCERTAIN,
              "definitely absent": ABSENT}


class RadGraphUnavailable(RuntimeError):
    """The radgraph package or its cached model cannot be used; the message says how to fix it."""


@contextmanager
def offline_hub() -> Iterator[None]:
    """Switch the Hugging Face hub and transformers offline for the duration of the block."""
    saved = {name: os.environ.get(name) for name in _OFFLINE_ENV}
    os.environ.update({name: "1" for name in _OFFLINE_ENV})
    constants = sys.modules.get("huggingface_hub.constants")
    saved_constant = getattr(constants, "HF_HUB_OFFLINE", None)
    if constants is not None:
        constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if constants is not None:
            constants.HF_HUB_OFFLINE = saved_constant


def convert_label(label: str) -> str | None:
    """Our label for a radgraph label ("OBS-DA", "Observation::definitely absent",
    "Anatomy::uncertain", "Observation::measurement::definitely present"); None if unknown."""
    if label in LABELS:
        return label
    if label.startswith("ANAT"):
        return ANATOMY
    kind, _, rest = label.partition("::")
    certainty = rest.rsplit("::", 1)[-1].strip().lower()
    if kind == "Anatomy":
        return ANATOMY
    if kind == "Observation":
        return _CERTAINTY.get(certainty)
    return None


def convert_annotation(annotation: Mapping[str, Any]) -> Graph:
    """One report of radgraph's output as our graph: labels converted, entities renumbered in
    their order, tokens re-read from the text; entities with unknown labels or spans outside
    the text are dropped with the relations that point to them."""
    text = str(annotation.get("text", ""))
    words = text.split()
    kept: dict[str, dict[str, Any]] = {}
    for key, entity in annotation.get("entities", {}).items():
        label = convert_label(str(entity.get("label", "")))
        start, end = entity.get("start_ix"), entity.get("end_ix")
        if label is None or not (isinstance(start, int) and isinstance(end, int)
                                 and 0 <= start <= end < len(words)):
            log.warning("radgraph entity %s (%r) dropped: unknown label or span",
                        key, entity.get("tokens"))
            continue
        kept[str(key)] = {"tokens": " ".join(words[start:end + 1]), "label": label,
                          "start_ix": start, "end_ix": end,
                          "relations": entity.get("relations", [])}
    ids = {old: str(new) for new, old in enumerate(kept, 1)}
    entities = {}
    for old, entity in kept.items():
        relations = [[str(name), ids[str(target)]] for name, target in entity["relations"]
                     if name in RELATIONS and str(target) in ids and str(target) != old]
        entities[ids[old]] = {**entity, "relations": relations}
    graph = empty_graph(text)
    graph["entities"] = entities
    return graph


def default_cache_dir(module: Any) -> Path:
    """Where the radgraph package keeps its models unless told otherwise."""
    inner = sys.modules.get(f"{module.__name__}.radgraph") or importlib.import_module(
        f"{module.__name__}.radgraph")
    cache = getattr(inner, "CACHE_DIR", None)
    if not cache:
        raise RadGraphUnavailable("cannot tell where the radgraph package caches its models; "
                                  "pass model_cache_dir (--radgraph-cache-dir)")
    return Path(cache)


class RadGraphExtractor:
    """Graphs from the ``radgraph`` package's model (``model_type`` one of :data:`MODEL_TYPES`),
    loaded offline from ``model_cache_dir`` (default: the package's own cache folder).

    Raises :class:`RadGraphUnavailable` if the package is not installed or the model is not
    cached; ``batch_size`` reports go to the model per call.
    """

    def __init__(self, model_type: str = "radgraph-xl", model_cache_dir: str | Path | None = None,
                 tokenizer_cache_dir: str | Path | None = None, batch_size: int = 8,
                 cuda: int | None = None):
        if model_type not in MODEL_TYPES:
            raise ValueError(f"unknown radgraph model type {model_type!r}; choose from "
                             f"{', '.join(MODEL_TYPES)}")
        self.batch_size = max(1, int(batch_size))
        with offline_hub():
            try:
                module = importlib.import_module("radgraph")
            except ImportError as exc:
                raise RadGraphUnavailable(
                    f"the radgraph backend needs the radgraph package ({exc}); install it with "
                    "'pip install radgraph' or use the rules backend") from None
            cache = Path(model_cache_dir) if model_cache_dir else default_cache_dir(module)
            model_dir = cache / model_type
            if not model_dir.is_dir() or not any(model_dir.iterdir()):
                raise RadGraphUnavailable(
                    f"radgraph model {model_type!r} is not cached in {model_dir}; nothing is "
                    "downloaded here: run radgraph once where it can download the model, then "
                    "pass that folder's parent as model_cache_dir (--radgraph-cache-dir)")
            try:
                self.model = module.RadGraph(
                    model_type=model_type, model_cache_dir=str(cache),
                    tokenizer_cache_dir=None if tokenizer_cache_dir is None
                    else str(tokenizer_cache_dir),
                    batch_size=self.batch_size, cuda=cuda)
            except (OSError, ValueError, RuntimeError, KeyError) as exc:
                raise RadGraphUnavailable(
                    f"cannot load radgraph model {model_type!r} from {model_dir} offline "
                    f"({type(exc).__name__}: {exc}); is its tokenizer in the Hugging Face "
                    "cache (or tokenizer_cache_dir)?") from None

    def extract(self, text: str) -> Graph:
        """The graph of one report."""
        return self.extract_many([text])[0]

    def extract_many(self, texts: Iterable[str], progress: bool = False) -> list[Graph]:
        """One graph per text, in order; empty texts get an empty graph without a model call."""
        texts = [as_text(t) for t in texts]
        graphs: list[Graph] = [empty_graph(joined(tokenize(t))) for t in texts]
        todo = [i for i, t in enumerate(texts) if t.strip()]
        bar = tqdm(total=len(texts), disable=not progress, unit="report")
        bar.update(len(texts) - len(todo))
        for start in range(0, len(todo), self.batch_size):
            batch = todo[start:start + self.batch_size]
            with offline_hub():
                output = self.model([texts[i] for i in batch])
            for position, index in enumerate(batch):
                annotation = output.get(str(position))
                if annotation is None:
                    log.warning("radgraph returned nothing for report %d; empty graph", index)
                else:
                    graphs[index] = convert_annotation(annotation)
            bar.update(len(batch))
        bar.close()
        return graphs
