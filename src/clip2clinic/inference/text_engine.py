"""Reports → unit embeddings of a ClinicCLIP text tower.

The tower makes its own inputs (:meth:`input_encoder`: token ids in text mode "full", the
frozen model's token features in mode "head"), so this engine knows no text mode. Texts run
sorted by token count in batches padded only to their longest text; results come back in
input order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from clip2clinic.inference.batching import as_list, batches
from clip2clinic.io import InputError
from clip2clinic.model import ClinicCLIP, TextInputs


class TextEngine:
    """The text tower's input encoder (loaded on first use) and the tower, in batches."""

    def __init__(self, model: ClinicCLIP, device: torch.device):
        self.model, self.device = model, device
        self._inputs: Any = None

    @property
    def inputs(self) -> Any:
        """Strings → the tower's (inputs, attention mask); see the towers' ``input_encoder``."""
        if self._inputs is None:
            self._inputs = self.model.text.input_encoder(self.device)
        return self._inputs

    def tokenize(self, texts: str | Sequence[str]) -> TextInputs:
        """One text or a list → the tower's inputs for :meth:`ClinicCLIP.encode_text`, padded
        to the longest (on the CPU; the open_clip-style tokenizer)."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        return TextInputs(*self.inputs(texts))

    def embed(self, texts: Sequence[str], batch_size: int = 64,
              progress: bool = False) -> np.ndarray:  # fmt: skip
        """Embeddings ``(N, embed_dim)`` float32, unit norm, truncated to the config's
        ``max_length`` tokens."""
        texts = as_list(texts, "texts")
        for index, text in enumerate(texts):
            if not isinstance(text, str):
                raise InputError(f"text {index}: expected a string, got {text!r}")
        out = np.zeros((len(texts), self.model.config.embed_dim), dtype=np.float32)
        if not texts:
            return out
        lengths = self.inputs.lengths(texts)
        by_length = sorted(range(len(texts)), key=lengths.__getitem__)
        with tqdm(total=len(texts), desc="texts", unit="text", disable=not progress) as bar:
            for batch in batches(len(texts), batch_size):
                rows = [by_length[i] for i in batch]
                values, mask = self.inputs([texts[i] for i in rows])
                with torch.inference_mode():
                    embedded = self.model.encode_text(values.to(self.device), mask.to(self.device))
                out[rows] = embedded.float().cpu().numpy()
                bar.update(len(rows))
        return out
