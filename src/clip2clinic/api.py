"""Use a trained ClinicCLIP: embed images and reports, zero-shot classify, retrieve reports.

:class:`Clip2Clinic` is a facade over a :class:`~clip2clinic.model.ClinicCLIP` and two engines
(:mod:`clip2clinic.inference`): the image engine applies the evaluation transform of the
checkpoint's config (image size, channels, mean and std), the text engine the text tower's own
inputs. A checkpoint folder (or hub id) is all it needs. Weights load from safetensors only.
See docs/api.md.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from clip2clinic.data.transforms import EvalTransform
from clip2clinic.embedded import is_hub_id
from clip2clinic.inference import ImageEngine, ImageInput, TextEngine
from clip2clinic.inference.batching import as_list
from clip2clinic.io import InputError
from clip2clinic.model import CONFIG_NAME, WEIGHTS_NAME, ClinicCLIP, TextInputs
from clip2clinic.run_dir import RunDir, is_checkpoint

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
    ``device`` and puts in eval mode). ``image_size`` overrides the checkpoint's own input
    size (``config.image.image_size``).
    """

    def __init__(
        self,
        model: ClinicCLIP,
        device: str | torch.device = "cpu",
        image_size: int | None = None,
    ) -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.images = ImageEngine(self.model, self.device, image_size)
        self.texts = TextEngine(self.model, self.device)
        self._fingerprint: str | None = None

    @classmethod
    def from_pretrained(
        cls,
        path: str | os.PathLike,
        device: str | torch.device = "cpu",
        image_size: int | None = None,
        **hub_kwargs: Any,
    ) -> Clip2Clinic:
        """Load a checkpoint folder, a run dir's final (else newest) checkpoint (see
        :func:`resolve_checkpoint`), or a hub id (``org/name``; ``hub_kwargs`` such as
        ``revision``, ``cache_dir``, ``local_files_only`` go to
        :meth:`ClinicCLIP.from_pretrained <clip2clinic.model.ClinicCLIP.from_pretrained>`)."""
        source = path if _names_hub_id(path) else resolve_checkpoint(path)
        model = ClinicCLIP.from_pretrained(source, device=device, **hub_kwargs)
        return cls(model, device=device, image_size=image_size)

    def save_pretrained(self, path: str | os.PathLike, **kwargs: Any) -> Path:
        """Write ``model.safetensors``, ``config.json`` and the model card into the folder
        ``path`` (``kwargs``: see :meth:`ClinicCLIP.save_pretrained`)."""
        return self.model.save_pretrained(path, **kwargs)

    @property
    def embed_dim(self) -> int:
        return self.model.config.embed_dim

    @property
    def image_size(self) -> int:
        """The side of the square images are resized and cropped to."""
        return self.images.image_size

    @property
    def transform(self) -> EvalTransform:
        """The image preprocessing: a grey image in, the model's normalised pixels out."""
        return self.images.transform

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
        return {"image_transform": "eval: shorter side resized, centre square, bilinear",
                **self.model.config.preprocessing, "image_size": self.image_size}

    # --- embeddings ------------------------------------------------------------------------

    def embed_images(
        self, images: Sequence[ImageInput], batch_size: int = 32, progress: bool = False
    ) -> np.ndarray:
        """Image embeddings ``(N, embed_dim)``. An unreadable file raises InputError naming
        it (:func:`clip2clinic.evaluation.embeddings.cached_image_embeddings` skips instead)."""
        return self.images.embed(images, batch_size, progress)

    def embed_texts(
        self, texts: Sequence[str], batch_size: int = 64, progress: bool = False
    ) -> np.ndarray:
        """Text embeddings ``(N, embed_dim)``, truncated to the config's ``max_length`` tokens.

        Texts run sorted by token count, in batches padded to their longest; results come back
        in input order. In text mode "head" the frozen model's features of recent texts are
        kept, so texts seen again cost only the head.
        """
        return self.texts.embed(texts, batch_size, progress)

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
        labels = as_list(labels, "labels")
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

    def _prompt_embeddings(self, labels: list[str], templates: Sequence[str]) -> np.ndarray:
        """``(len(labels), D)``: each label's prompts embedded, averaged and renormalised."""
        templates = as_list(templates, "templates")
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


def create_model_and_transforms(
    name_or_path: str | os.PathLike, device: str | torch.device = "cpu", **hub_kwargs: Any
) -> tuple[ClinicCLIP, ImageEngine, Callable[[str | Sequence[str]], TextInputs]]:
    """open_clip-style loading: ``(model, preprocess, tokenizer)`` of a checkpoint folder, run
    dir or hub id (as :meth:`Clip2Clinic.from_pretrained` takes).

    ``model`` is the :class:`ClinicCLIP` in eval mode; ``preprocess(image)`` turns a path, PIL
    image or array into the ``(C, S, S)`` tensor ``model.encode_image`` takes (stack them);
    ``tokenizer(texts)`` gives the :class:`TextInputs` ``model.encode_text`` takes (token ids,
    or the frozen model's token features in text mode "head"), on the CPU.
    """
    clip = Clip2Clinic.from_pretrained(name_or_path, device=device, **hub_kwargs)
    return clip.model, clip.images, clip.texts.tokenize


def _names_hub_id(path: str | os.PathLike) -> bool:
    """True for a hub id that is not also a local path."""
    return isinstance(path, str) and not Path(path).exists() and is_hub_id(path) \
        and "/" in path


def _is_embeddings(values: Any) -> bool:
    """A 2-D float numpy array stands for precomputed embeddings."""
    return (isinstance(values, np.ndarray) and values.ndim == 2
            and np.issubdtype(values.dtype, np.floating))  # fmt: skip


def _image_index(images: Images) -> pd.Index | None:
    """File paths as the row labels when every image is a path."""
    if not _is_embeddings(images) and all(isinstance(i, (str, os.PathLike)) for i in images):
        return pd.Index([str(i) for i in images])
    return None
