"""Images (paths, PIL images, numpy arrays) → unit embeddings of a ClinicCLIP image tower."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from clip2clinic.data.images import ImageLoadError, load_image, pil_to_grey, scale_to_uint8
from clip2clinic.data.transforms import EvalTransform, Normalization
from clip2clinic.inference.batching import as_list, batches
from clip2clinic.io import InputError
from clip2clinic.model import ClinicCLIP

#: One image: a file path (JPEG, PNG, DICOM, ...), a PIL image, or a numpy array (2-D grey of
#: any dtype, or H x W x 3/4 uint8 colour).
ImageInput = str | os.PathLike | Image.Image | np.ndarray


class ImageEngine:
    """The evaluation transform of the model's config (image size, channel mean/std) and the
    image tower, in batches. ``image_size`` overrides the config's."""

    def __init__(self, model: ClinicCLIP, device: torch.device, image_size: int | None = None):
        config = model.config.image
        self.model, self.device = model, device
        self.image_size = int(image_size or config.image_size)
        self.transform = EvalTransform(self.image_size, Normalization(config.mean, config.std))

    def pixels(self, image: ImageInput, index: int) -> torch.Tensor:
        """One image as the tower's normalised ``(C, S, S)`` input; InputError names it."""
        if isinstance(image, (str, os.PathLike)):
            try:
                grey = load_image(image)
            except ImageLoadError as exc:
                raise InputError(str(exc)) from None
        elif isinstance(image, Image.Image):
            grey = pil_to_grey(image)
        elif isinstance(image, np.ndarray):
            grey = array_to_grey(image, index)
        else:
            raise InputError(
                f"image {index}: expected a path, PIL image or numpy array, got "
                f"{type(image).__name__}"
            )
        return self.transform(grey)

    def __call__(self, image: ImageInput) -> torch.Tensor:
        """One image → the tower's ``(C, S, S)`` input (the open_clip-style preprocess)."""
        return self.pixels(image, 0)

    def embed(self, images: Sequence[ImageInput], batch_size: int = 32,
              progress: bool = False) -> np.ndarray:  # fmt: skip
        """Embeddings ``(N, embed_dim)`` float32, unit norm, in input order."""
        images = as_list(images, "images")
        out = np.zeros((len(images), self.model.config.embed_dim), dtype=np.float32)
        with tqdm(total=len(images), desc="images", unit="img", disable=not progress) as bar:
            for rows in batches(len(images), batch_size):
                pixels = torch.stack([self.pixels(images[i], i) for i in rows])
                with torch.inference_mode():
                    embedded = self.model.encode_image(pixels.to(self.device))
                out[rows] = embedded.float().cpu().numpy()
                bar.update(len(rows))
        return out


def array_to_grey(image: np.ndarray, index: int) -> np.ndarray:
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
