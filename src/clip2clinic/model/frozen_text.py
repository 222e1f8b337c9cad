"""Frozen text-model features computed once at prepare time, never in the training loop.

- :func:`encode_token_features`: last-hidden-state token features of each text (float16,
  padded to ``max_length``) and their attention masks: the input of the text head.
- :func:`encode_entities`: one mean-pooled vector per string (float32): the node-feature
  table of the graph encoder, one row per distinct entity text.
"""

from __future__ import annotations

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

    def _batches(self, texts: Sequence[str], batch_size: int):
        """Yield (row indices, attention mask, last hidden state) per batch, by length."""
        encoded = self.tokenizer(
            list(texts), truncation=True, max_length=self.max_length, padding=False
        )["input_ids"]
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            padded = self.tokenizer.pad(
                {"input_ids": [encoded[i] for i in rows]}, return_tensors="pt"
            )
            ids = padded["input_ids"].to(self.device)
            mask = padded["attention_mask"].to(self.device)
            with torch.inference_mode():
                hidden = self.model(input_ids=ids, attention_mask=mask).last_hidden_state
            yield torch.tensor(rows), mask.cpu(), hidden.float().cpu()

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
