"""Frozen text-model features computed once at prepare time, never in the training loop.

- :func:`encode_token_features`: last-hidden-state token features of each text (float16,
  padded to ``max_length``) and their attention masks: the input of the text head.
- :func:`encode_entities`: one mean-pooled vector per string (float32): the node-feature
  table of the graph encoder, one row per distinct entity text.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Sequence

import torch

from clip2clinic.embedded import from_source
from clip2clinic.model.towers import load_tokenizer, masked_mean, tower_config


class FrozenTextEncoder:
    """A pretrained transformers text model in eval mode, run without gradients on CPU or GPU.

    Texts are tokenised once, sorted by length and batched with per-batch padding, so short
    texts cost little; results come back in the input order. ``download``: a hub id not in
    the local cache may be fetched (what the user asked for, e.g. ``prepare --text-model``).
    """

    def __init__(self, source: str, max_length: int, device: str | torch.device = "cpu",
                 download: bool = False):
        from transformers import AutoModel

        self.max_length = max_length
        self.device = torch.device(device)
        self.tokenizer = load_tokenizer(source, download=download)
        tower_config(source, None, download=download)  # sizes checked before allocation
        self.model = from_source(AutoModel, source, download=download, use_safetensors=True)
        self.model.eval().requires_grad_(False).to(self.device)
        self.hidden_size = int(self.model.config.hidden_size)
        #: Token features by text, kept by :class:`FeatureInputs` (least recently used first).
        self.feature_cache: OrderedDict[str, torch.Tensor] = OrderedDict()

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text, truncated to ``max_length``, unpadded."""
        return self.tokenizer(list(texts), truncation=True, max_length=self.max_length,
                              padding=False)["input_ids"]  # fmt: skip

    def run(self, ids: Sequence[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """One batch of token ids, padded to its longest: (mask ``(B, L)``, last hidden state
        ``(B, L, H)`` float32), both on the CPU."""
        padded = self.tokenizer.pad({"input_ids": list(ids)}, return_tensors="pt")
        mask = padded["attention_mask"].to(self.device)
        with torch.inference_mode():
            hidden = self.model(input_ids=padded["input_ids"].to(self.device),
                                attention_mask=mask).last_hidden_state  # fmt: skip
        return mask.cpu(), hidden.float().cpu()

    def _batches(self, texts: Sequence[str], batch_size: int):
        """Yield (row indices, attention mask, last hidden state) per batch, by length."""
        encoded = self.tokenize(texts)
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            mask, hidden = self.run([encoded[i] for i in rows])
            yield torch.tensor(rows), mask, hidden

    def token_features(
        self, texts: Sequence[str], batch_size: int = 64
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Features ``(N, max_length, H)`` float16 and masks ``(N, max_length)`` bool."""
        features = torch.zeros(len(texts), self.max_length, self.hidden_size, dtype=torch.float16)
        masks = torch.zeros(len(texts), self.max_length, dtype=torch.bool)
        for rows, mask, hidden in self._batches(texts, batch_size):
            length = mask.shape[1]
            features[rows, :length] = (hidden * mask.unsqueeze(-1)).half()
            masks[rows, :length] = mask.bool()
        return features, masks

    def pooled(self, texts: Sequence[str], batch_size: int = 256) -> torch.Tensor:
        """Mean-pooled last hidden states ``(N, H)`` float32, one row per text."""
        pooled = torch.zeros(len(texts), self.hidden_size)
        for rows, mask, hidden in self._batches(texts, batch_size):
            pooled[rows] = masked_mean(hidden, mask)
        return pooled


#: Texts whose token features :class:`FeatureInputs` keeps (about 25 KB each at 32 tokens of a
#: 384-wide model in float16; at most ``max_length`` x hidden x 2 bytes).
CACHED_TEXTS = 2048


@functools.lru_cache(maxsize=2)
def shared_encoder(source: str, max_length: int, device: str) -> FrozenTextEncoder:
    """The frozen text model of ``source``, loaded once per process and shared by every
    checkpoint over it (e.g. the variants a demo evaluates); never downloads."""
    return FrozenTextEncoder(source, max_length, device)


class FeatureInputs:
    """Text mode "head"'s inputs: the frozen model's token features (float16, as prepare caches
    them) and bool masks, padded to the longest text of the call.

    The features of the last :data:`CACHED_TEXTS` texts are kept with the shared encoder, so
    texts seen again (zero-shot prompts, a report set scored twice) skip the frozen model.
    """

    def __init__(self, source: str, max_length: int, device: str | torch.device = "cpu"):
        self.encoder = shared_encoder(source, max_length, str(device))
        self._cache = self.encoder.feature_cache

    def lengths(self, texts: Sequence[str]) -> list[int]:
        """Token count of each text after truncation (for batching texts of like length)."""
        return [len(ids) for ids in self.encoder.tokenize(texts)]

    def __call__(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        missing = [text for text in dict.fromkeys(texts) if text not in self._cache]
        if missing:
            ids = self.encoder.tokenize(missing)
            _, hidden = self.encoder.run(ids)
            for row, text in enumerate(missing):
                self._cache[text] = hidden[row, : len(ids[row])].half()
        rows = [self._cache[text] for text in texts]
        for text in texts:
            self._cache.move_to_end(text)
        while len(self._cache) > CACHED_TEXTS:
            self._cache.popitem(last=False)
        length = max((len(row) for row in rows), default=1)
        features = torch.zeros(len(rows), length, self.encoder.hidden_size, dtype=torch.float16)
        masks = torch.zeros(len(rows), length, dtype=torch.bool)
        for index, row in enumerate(rows):
            features[index, : len(row)] = row
            masks[index, : len(row)] = True
        return features, masks


def encode_token_features(
    texts: Sequence[str], model_dir: str, max_length: int, batch_size: int = 64
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token features of a frozen text model for the text head.

    ``model_dir`` is a tower source (folder, hub name, or ``package:<module>``). Returns
    float16 features ``(N, max_length, H)`` (zero at padding) and bool masks ``(N, max_length)``.
    """
    return FrozenTextEncoder(model_dir, max_length).token_features(texts, batch_size)


def encode_entities(
    entities: Sequence[str], model_dir: str, max_length: int = 32, batch_size: int = 256
) -> torch.Tensor:
    """Node-feature table of the graph encoder: a mean-pooled embedding per entity string."""
    return FrozenTextEncoder(model_dir, max_length).pooled(entities, batch_size)
