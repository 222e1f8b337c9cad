"""CheXbert backend (Smit et al., EMNLP 2020): BERT-base encoder + 14 linear heads on [CLS].

13 heads have 4 classes (blank, positive, negative, uncertain) for the observations in
:data:`CHEXBERT_CONDITIONS` order; the No Finding head has 2 (blank, positive). Weights load
from safetensors only. The original release is a pickled ``.pth``; convert it once, on a
machine you trust, with::

    import torch
    from safetensors.torch import save_file
    state = torch.load("chexbert.pth", map_location="cpu", weights_only=True)["model_state_dict"]
    save_file({k.removeprefix("module."): v.contiguous() for k, v in state.items()},
              "chexbert.safetensors")

and put ``chexbert.safetensors`` in a folder with the ``bert-base-uncased`` tokenizer files
(``vocab.txt``, ``tokenizer_config.json``) and, optionally, its ``config.json``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm.auto import tqdm
from transformers import AutoTokenizer, BertConfig, BertModel

from clip2clinic.io import as_text
from clip2clinic.observations import CHEXPERT_CLASSES

#: Head order of the released CheXbert model.
CHEXBERT_CONDITIONS: tuple[str, ...] = (
    "Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity", "Lung Lesion", "Edema",
    "Consolidation", "Pneumonia", "Atelectasis", "Pneumothorax", "Pleural Effusion",
    "Pleural Other", "Fracture", "Support Devices", "No Finding",
)
#: Class index -> label value, for the 13 four-class heads and for the No Finding head.
FOUR_CLASS_VALUES = (math.nan, 1.0, 0.0, -1.0)
NO_FINDING_VALUES = (math.nan, 1.0)
# Keys of older transformers versions that current BertModel no longer stores.
_IGNORED_KEYS = re.compile(r"bert\.embeddings\.position_ids")


class CheXbertModel(nn.Module):
    """The CheXbert network: ``BertModel`` then dropout and 14 linear heads on the [CLS] state."""

    def __init__(self, config: BertConfig, dropout: float = 0.1):
        super().__init__()
        self.bert = BertModel(config)
        self.dropout = nn.Dropout(dropout)
        hidden = config.hidden_size
        heads = [nn.Linear(hidden, 4) for _ in range(len(CHEXBERT_CONDITIONS) - 1)]
        self.linear_heads = nn.ModuleList([*heads, nn.Linear(hidden, 2)])

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> list[torch.Tensor]:
        """Logits per head, in :data:`CHEXBERT_CONDITIONS` order."""
        hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask)[0]
        cls = self.dropout(hidden[:, 0, :])
        return [head(cls) for head in self.linear_heads]


def load_chexbert_weights(model: CheXbertModel, checkpoint: str | Path) -> None:
    """Load a safetensors CheXbert state dict into ``model``; names what is missing or extra."""
    checkpoint = Path(checkpoint)
    if checkpoint.suffix != ".safetensors":
        raise ValueError(
            f"{checkpoint}: CheXbert weights must be a .safetensors file (pickled checkpoints "
            "are not loaded); see the conversion recipe in docs/labeler.md"
        )
    state = {k.removeprefix("module."): v for k, v in load_file(str(checkpoint)).items()}
    state = {k: v for k, v in state.items() if not _IGNORED_KEYS.fullmatch(k)}
    expected = set(model.state_dict())
    missing, extra = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or extra:
        raise ValueError(f"{checkpoint}: not a CheXbert checkpoint for this config "
                         f"(missing {missing[:5]}, unexpected {extra[:5]})")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ValueError(f"{checkpoint}: weights do not fit this config ({exc})") from None


def save_chexbert_weights(model: CheXbertModel, path: str | Path) -> None:
    """Write ``model``'s weights as safetensors (the format :class:`CheXbertLabeler` loads)."""
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))


def clean_report(text: str) -> str:
    """CheXbert's report preprocessing: trimmed, whitespace runs collapsed to one space."""
    return " ".join(as_text(text).split())


class CheXbertLabeler:
    """CheXpert labels from a CheXbert checkpoint, with the rule labeler's interface.

    ``checkpoint``: the ``.safetensors`` weights. ``tokenizer``: a local tokenizer folder
    (default: the checkpoint's folder). ``config``: a ``BertConfig`` or a folder/file with
    ``config.json`` (default: ``config.json`` beside the checkpoint, else BERT-base).
    """

    def __init__(self, checkpoint: str | Path, tokenizer: str | Path | None = None,
                 config: BertConfig | str | Path | None = None, device: str = "cpu",
                 batch_size: int = 32):
        checkpoint = Path(checkpoint)
        if not checkpoint.is_file():
            raise FileNotFoundError(f"{checkpoint}: no such CheXbert checkpoint")
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.tokenizer = AutoTokenizer.from_pretrained(str(tokenizer or checkpoint.parent),
                                                       local_files_only=True)
        self.config = _resolve_config(config, checkpoint)
        self.max_length = min(512, self.config.max_position_embeddings)
        self.model = CheXbertModel(self.config)
        load_chexbert_weights(self.model, checkpoint)
        self.model.to(self.device).eval()

    @torch.inference_mode()
    def predict_classes(self, texts: list[str]) -> torch.Tensor:
        """Predicted class index per head (N x 14, :data:`CHEXBERT_CONDITIONS` order)."""
        batch = self.tokenizer([clean_report(t) for t in texts], padding=True, truncation=True,
                               max_length=self.max_length, return_tensors="pt")
        logits = self.model(batch["input_ids"].to(self.device),
                            batch["attention_mask"].to(self.device))
        return torch.stack([head.argmax(dim=1) for head in logits], dim=1).cpu()

    def label_many(self, texts: Iterable[str], progress: bool = False) -> pd.DataFrame:
        """One row per text, the 14 columns in CHEXPERT_CLASSES order (1, 0, -1, NaN)."""
        texts = [as_text(t) for t in texts]
        rows = []
        starts = range(0, len(texts), self.batch_size)
        for start in tqdm(starts, disable=not progress, unit="batch"):
            classes = self.predict_classes(texts[start:start + self.batch_size])
            for row in classes.tolist():
                rows.append({
                    name: (NO_FINDING_VALUES if name == "No Finding" else FOUR_CLASS_VALUES)[k]
                    for name, k in zip(CHEXBERT_CONDITIONS, row, strict=True)
                })
        return pd.DataFrame(rows, columns=list(CHEXPERT_CLASSES), dtype=float)

    def label(self, text: str) -> dict[str, float]:
        """All 14 classes for one report."""
        return self.label_many([text]).iloc[0].to_dict()


def _resolve_config(config: BertConfig | str | Path | None, checkpoint: Path) -> BertConfig:
    if isinstance(config, BertConfig):
        return config
    if config is not None:
        return BertConfig.from_pretrained(str(config), local_files_only=True)
    if (checkpoint.parent / "config.json").is_file():
        return BertConfig.from_pretrained(str(checkpoint.parent), local_files_only=True)
    return BertConfig()  # bert-base-uncased, the encoder of the released CheXbert
