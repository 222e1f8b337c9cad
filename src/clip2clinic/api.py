"""Use a trained ClinicCLIP: embed images and reports, zero-shot classify, retrieve reports.

:class:`Clip2Clinic` wraps a :class:`~clip2clinic.model.ClinicCLIP` with the preprocessing
its config implies: the evaluation image transform (the tower's image size, channels, mean and
std) and the text path of its text mode ("full": tokenizer + fine-tuned tower; "head": the
frozen source model's token features, then the trained head). Weights load from safetensors
only. See docs/api.md.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image
from tqdm.auto import tqdm

from clip2clinic.data.images import ImageLoadError, load_image, pil_to_grey, scale_to_uint8
from clip2clinic.data.transforms import EvalTransform, Normalization
from clip2clinic.io import InputError
from clip2clinic.model import CONFIG_NAME, WEIGHTS_NAME, ClinicCLIP, FrozenTextEncoder
from clip2clinic.model.towers import load_tokenizer
from clip2clinic.run_dir import RunDir, is_checkpoint

#: One image: a file path (JPEG, PNG, DICOM, ...), a PIL image, or a numpy array (2-D grey of
#: any dtype, or H x W x 3/4 uint8 colour).
ImageInput = str | os.PathLike | Image.Image | np.ndarray
#: Images, or their precomputed embeddings as one 2-D float array (N, embed_dim).
Images = Sequence[ImageInput] | np.ndarray
#: Texts, or their precomputed embeddings as one 2-D float array (N, embed_dim).
Texts = Sequence[str] | np.ndarray

#: Weight files that need pickle to load; recognised only to say why they are refused.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
#: The default zero-shot prompts: the finding named, against its negation.
DEFAULT_TEMPLATES = (("{label}",), ("No {label}",))


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """The checkpoint folder that ``path`` names.

    ``path`` is a checkpoint folder (``model.safetensors`` + ``config.json``) or a run dir:
    its ``checkpoints/final``, else its newest ``checkpoints/step-*``. Raises InputError naming
    ``path`` otherwise (and saying so when it holds only pickled weights).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such checkpoint folder or run directory")
    if is_checkpoint(path):
        return path
    newest = RunDir(path).newest_checkpoint()
    if newest is not None:
        return newest
    pickles = sorted(p.name for p in path.glob("*") if p.suffix in PICKLE_SUFFIXES)
    if pickles:
        raise InputError(
            f"{path}: holds only pickled weights ({', '.join(pickles)}); clip2clinic loads "
            f"safetensors only ({WEIGHTS_NAME} + {CONFIG_NAME})"
        )
    raise InputError(
        f"{path}: not a checkpoint folder ({WEIGHTS_NAME} + {CONFIG_NAME}) nor a run directory "
        f"with {RunDir(path).final.relative_to(path)} or checkpoints/step-*"
    )


class Clip2Clinic:
    """Inference with a ClinicCLIP model: every embedding is float32 and unit norm.

    Build it with :meth:`from_pretrained`, or around a model in memory (which it moves to
    ``device`` and puts in eval mode). ``image_size`` overrides the image tower's own size (for
    a run trained with ``data.image_size``).
    """

    def __init__(
        self,
        model: ClinicCLIP,
        device: str | torch.device = "cpu",
        image_size: int | None = None,
    ) -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        config = model.config
        self.image_size = image_size or _tower_image_size(model)
        self.transform = EvalTransform(
            self.image_size, Normalization(config.image.mean, config.image.std)
        )
        self._fingerprint: str | None = None

    @classmethod
    def from_pretrained(
        cls,
        path: str | os.PathLike,
        device: str | torch.device = "cpu",
        image_size: int | None = None,
    ) -> Clip2Clinic:
        """Load a checkpoint folder or a run dir's final (else newest) checkpoint; see
        :func:`resolve_checkpoint`."""
        model = ClinicCLIP.from_pretrained(resolve_checkpoint(path), device=device)
        return cls(model, device=device, image_size=image_size)

    def save_pretrained(self, path: str | os.PathLike) -> Path:
        """Write ``model.safetensors`` + ``config.json`` into the folder ``path``."""
        return self.model.save_pretrained(path)

    @property
    def embed_dim(self) -> int:
        return self.model.config.embed_dim

    @property
    def temperature(self) -> float:
        """The softmax temperature τ the model was trained with."""
        return float(self.model.temperature)

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the model's config and weights (what ``config.json`` and
        ``model.safetensors`` hold), computed once: the same for a loaded checkpoint and the
        model it was saved from, different for any other weights."""
        if self._fingerprint is None:
            digest = hashlib.sha256(
                json.dumps(self.model.config.to_dict(), sort_keys=True).encode()
            )
            for name, tensor in sorted(self.model.state_dict().items()):
                data = tensor.detach().cpu().contiguous()
                digest.update(f"{name}|{data.dtype}|{tuple(data.shape)}|".encode())
                digest.update(data.view(torch.uint8).numpy().tobytes())
            self._fingerprint = digest.hexdigest()
        return self._fingerprint

    @property
    def preprocessing(self) -> dict[str, Any]:
        """What turns inputs into model inputs (part of an embedding cache key)."""
        text = self.model.config.text
        return {
            "image_transform": "eval: shorter side resized, centre square, bilinear",
            "image_size": self.image_size,
            "mean": list(self.transform.normalization.mean),
            "std": list(self.transform.normalization.std),
            "text_mode": text.mode,
            "text_source": text.source,
            "max_length": text.max_length,
        }

    # --- embeddings ------------------------------------------------------------------------

    def embed_images(
        self, images: Sequence[ImageInput], batch_size: int = 32, progress: bool = False
    ) -> np.ndarray:
        """Image embeddings ``(N, embed_dim)``. An unreadable file raises InputError naming
        it (:func:`clip2clinic.evaluation.embeddings.cached_image_embeddings` skips instead)."""
        images = _as_list(images, "images")
        out = np.zeros((len(images), self.embed_dim), dtype=np.float32)
        with tqdm(total=len(images), desc="images", unit="img", disable=not progress) as bar:
            for rows in _batches(len(images), batch_size):
                pixels = torch.stack([self._pixels(images[i], i) for i in rows])
                with torch.inference_mode():
                    embedded = self.model.encode_image(pixels.to(self.device))
                out[rows] = embedded.float().cpu().numpy()
                bar.update(len(rows))
        return out

    def embed_texts(
        self, texts: Sequence[str], batch_size: int = 64, progress: bool = False
    ) -> np.ndarray:
        """Text embeddings ``(N, embed_dim)``, truncated to the config's ``max_length`` tokens.

        Texts run in batches of similar length; results come back in input order.
        """
        texts = _as_list(texts, "texts")
        for index, text in enumerate(texts):
            if not isinstance(text, str):
                raise InputError(f"text {index}: expected a string, got {text!r}")
        out = np.zeros((len(texts), self.embed_dim), dtype=np.float32)
        by_length = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        with tqdm(total=len(texts), desc="texts", unit="text", disable=not progress) as bar:
            for batch in _batches(len(texts), batch_size):
                rows = [by_length[i] for i in batch]
                tokens, mask = self._text_inputs([texts[i] for i in rows])
                with torch.inference_mode():
                    embedded = self.model.encode_text(tokens, mask)
                out[rows] = embedded.float().cpu().numpy()
                bar.update(len(rows))
        return out

    # --- uses ------------------------------------------------------------------------------

    def similarity(self, images: Images, texts: Texts) -> np.ndarray:
        """Cosine similarities ``(N images, M texts)``; either side may be embeddings."""
        return self._image_embeddings(images) @ self._text_embeddings(texts).T

    def zero_shot(
        self,
        images: Images,
        labels: Sequence[str],
        templates: tuple[Sequence[str], Sequence[str]] | None = None,
    ) -> pd.DataFrame:
        """Probability that each finding is present: rows = images, columns = ``labels``.

        Per label, the positive prompt(s) compete with the negative one(s) in a softmax of
        similarity / τ. ``templates`` = (positive templates, negative templates), each holding
        ``{label}``; default ``(["{label}"], ["No {label}"])``. Several templates form an
        ensemble: the mean of their embeddings, renormalised.
        """
        labels = _as_list(labels, "labels")
        positive, negative = templates or DEFAULT_TEMPLATES
        image_embeddings = self._image_embeddings(images)
        prompts = np.stack([self._prompt_embeddings(labels, positive),
                            self._prompt_embeddings(labels, negative)])  # fmt: skip
        logits = torch.from_numpy(np.einsum("nd,pcd->ncp", image_embeddings, prompts))
        probability = torch.softmax(logits / self.temperature, dim=-1)[..., 0].numpy()
        return pd.DataFrame(probability, index=_image_index(images), columns=labels)

    def retrieve(self, images: Images, reports: Texts, k: int = 5) -> list[list[tuple[int, float]]]:
        """Per image, the ``k`` most similar reports as (report index, cosine similarity),
        best first."""
        if k < 1:
            raise InputError(f"k: must be at least 1, got {k}")
        similarity = torch.from_numpy(self.similarity(images, reports))
        scores, indices = similarity.topk(min(k, similarity.shape[1]), dim=1)
        return [list(zip(row.tolist(), values.tolist(), strict=True))
                for row, values in zip(indices, scores, strict=True)]  # fmt: skip

    # --- helpers ---------------------------------------------------------------------------

    def _pixels(self, image: ImageInput, index: int) -> torch.Tensor:
        if isinstance(image, (str, os.PathLike)):
            try:
                grey = load_image(image)
            except ImageLoadError as exc:
                raise InputError(str(exc)) from None
        elif isinstance(image, Image.Image):
            grey = pil_to_grey(image)
        elif isinstance(image, np.ndarray):
            grey = _array_to_grey(image, index)
        else:
            raise InputError(
                f"image {index}: expected a path, PIL image or numpy array, got "
                f"{type(image).__name__}"
            )
        return self.transform(grey)

    def _text_inputs(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids (mode "full") or frozen token features (mode "head") and their masks."""
        config = self.model.config.text
        if config.mode == "full":
            tokenizer = _tokenizer(config.source)
            encoded = tokenizer(texts, truncation=True, max_length=config.max_length,
                                padding=True, return_tensors="pt")  # fmt: skip
            return encoded["input_ids"].to(self.device), encoded["attention_mask"].to(self.device)
        frozen = _frozen_text_encoder(config.source, config.max_length, str(self.device))
        features, mask = frozen.token_features(texts, batch_size=len(texts))
        length = max(1, int(mask.sum(dim=1).max()))
        return features[:, :length].to(self.device), mask[:, :length].to(self.device)

    def _prompt_embeddings(self, labels: list[str], templates: Sequence[str]) -> np.ndarray:
        """``(len(labels), D)``: each label's prompts embedded, averaged and renormalised."""
        templates = _as_list(templates, "templates")
        if not templates or any("{label}" not in t for t in templates):
            raise InputError(f"templates: each needs a {{label}} placeholder, got {templates}")
        prompts = [t.replace("{label}", label) for label in labels for t in templates]
        mean = self.embed_texts(prompts).reshape(len(labels), len(templates), -1).mean(axis=1)
        return mean / np.linalg.norm(mean, axis=1, keepdims=True)

    def _image_embeddings(self, images: Images) -> np.ndarray:
        if _is_embeddings(images):
            return self._checked_embeddings(images, "images")
        return self.embed_images(images)

    def _text_embeddings(self, texts: Texts) -> np.ndarray:
        if _is_embeddings(texts):
            return self._checked_embeddings(texts, "texts")
        return self.embed_texts(texts)

    def _checked_embeddings(self, values: np.ndarray, what: str) -> np.ndarray:
        if values.shape[1] != self.embed_dim:
            raise InputError(
                f"{what}: embeddings have width {values.shape[1]}, the model {self.embed_dim}"
            )
        return values.astype(np.float32, copy=False)


@functools.lru_cache(maxsize=4)
def _tokenizer(source: str) -> Any:
    return load_tokenizer(source)


@functools.lru_cache(maxsize=2)
def _frozen_text_encoder(source: str, max_length: int, device: str) -> FrozenTextEncoder:
    """The frozen text model of text mode "head", loaded once and shared by every checkpoint
    of the same preset (e.g. the variants a demo evaluates)."""
    return FrozenTextEncoder(source, max_length, device)


def _tower_image_size(model: ClinicCLIP) -> int:
    size = model.image.backbone.config.image_size
    return int(size if isinstance(size, int) else size[0])


def _is_embeddings(values: Any) -> bool:
    """A 2-D float numpy array stands for precomputed embeddings."""
    return (isinstance(values, np.ndarray) and values.ndim == 2
            and np.issubdtype(values.dtype, np.floating))  # fmt: skip


def _as_list(values: Any, what: str) -> list:
    if isinstance(values, (str, os.PathLike, Image.Image)):
        raise InputError(f"{what}: pass a list, not a single {type(values).__name__}")
    return list(values)


def _batches(count: int, batch_size: int) -> Iterator[list[int]]:
    if batch_size < 1:
        raise InputError(f"batch_size: must be at least 1, got {batch_size}")
    for start in range(0, count, batch_size):
        yield list(range(start, min(start + batch_size, count)))


def _array_to_grey(image: np.ndarray, index: int) -> np.ndarray:
    """A numpy image as 2-D uint8 grey: grey of any dtype is scaled by its range, colour
    (H x W x 3/4 uint8) converted with Pillow's luma transform."""
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim == 2 and image.size:
        return scale_to_uint8(image)
    if image.ndim == 3 and image.shape[2] in (3, 4) and image.dtype == np.uint8:
        return np.asarray(Image.fromarray(image[..., :3], "RGB").convert("L"))
    raise InputError(
        f"image {index}: a numpy image must be 2-D grey or H x W x 3/4 uint8 colour, got "
        f"{image.dtype} {image.shape}"
    )


def _image_index(images: Images) -> pd.Index | None:
    """File paths as the row labels when every image is a path."""
    if not _is_embeddings(images) and all(isinstance(i, (str, os.PathLike)) for i in images):
        return pd.Index([str(i) for i in images])
    return None
