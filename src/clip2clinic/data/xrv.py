"""A torchxrayvision adapter, both ways, without depending on torchxrayvision.

- :class:`XrvDataset` wraps any of our readers (:mod:`clip2clinic.data.datasets`) as an
  xrv-style torch Dataset: items ``{"img", "lab", "idx"}`` with ``img`` a float32 ``1 x S x S``
  array in xrv's range and ``lab`` in xrv's pathology order, plus xrv's ``pathologies``,
  ``labels`` and ``csv`` attributes, so xrv models (which take exactly that) can be scored on
  our datasets.
- :func:`from_xrv` turns an xrv-style dataset (anything with ``pathologies``, ``len`` and
  items holding ``img`` / ``lab``) into the grey images, label matrix and class names our
  zero-shot scorer takes (:meth:`clip2clinic.api.Clip2Clinic.embed_images`, then
  :func:`clip2clinic.evaluation.zeroshot.zero_shot_binary`).

torchxrayvision needs torchvision, which does not import beside the CPU torch wheel here, so
its conventions are written down as constants (source: ``torchxrayvision/datasets.py`` of
mlmed/torchxrayvision): ``default_pathologies`` (:data:`XRV_PATHOLOGIES`), ``normalize(img,
maxval)`` = ``(2 * img / maxval - 1) * 1024`` (:func:`xrv_normalize`), and how its CheXpert and
MIMIC datasets read labels: "Pleural Effusion" renamed "Effusion", uncertain (-1) made NaN,
and a row whose "No Finding" is 1 negative (0) for every finding it leaves blank.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd
import torch

from clip2clinic.data.datasets.base import XrayDataset
from clip2clinic.data.images import load_image
from clip2clinic.data.transforms import centre_square

log = logging.getLogger(__name__)

#: ``torchxrayvision.datasets.default_pathologies``: the 18 outputs of xrv's models, in order.
XRV_PATHOLOGIES: tuple[str, ...] = (
    "Atelectasis", "Consolidation", "Infiltration", "Pneumothorax", "Edema", "Emphysema",
    "Fibrosis", "Effusion", "Pneumonia", "Pleural_Thickening", "Cardiomegaly", "Nodule", "Mass",
    "Hernia", "Lung Lesion", "Fracture", "Lung Opacity", "Enlarged Cardiomediastinum",
)  # fmt: skip

#: xrv images span ``[-XRV_RANGE, XRV_RANGE]`` (``normalize``: "roughly [-1024 1024]").
XRV_RANGE = 1024.0

#: Our class names whose xrv name is another word (matched after :func:`name_key`); every other
#: class matches the xrv name that reads the same ("Pleural thickening" = "Pleural_Thickening").
XRV_ALIASES = {"pleural effusion": "Effusion"}

#: The class that makes blank findings negative, as xrv's CheXpert and MIMIC datasets read it.
NO_FINDING = "no finding"

#: Default image side of :class:`XrvDataset` (xrv's models take 224 x 224).
DEFAULT_SIZE = 224


def name_key(name: str) -> str:
    """A class name compared case-insensitively, '_' read as a space."""
    return " ".join(name.replace("_", " ").lower().split())


def xrv_normalize(image: np.ndarray, maxval: float = 255.0) -> np.ndarray:
    """An image with values in ``[0, maxval]`` as float32 in xrv's ``[-1024, 1024]`` (xrv's
    ``normalize(img, maxval)``); a value above ``maxval`` is an error, as there."""
    image = np.asarray(image)
    if image.size and float(image.max()) > maxval:
        raise ValueError(f"image maximum {image.max()} is above the expected bound {maxval}")
    return (2.0 * (image.astype(np.float32) / np.float32(maxval)) - 1.0) * np.float32(XRV_RANGE)


def xrv_to_grey(img: Any) -> np.ndarray:
    """An xrv image (``1 x H x W`` or ``H x W``, array or CPU tensor, in ``[-1024, 1024]``) as
    the 2-D uint8 grey array our image engines take: xrv's normalisation undone at
    ``maxval`` 255, values outside the range clipped."""
    values = np.asarray(img, dtype=np.float32)
    if values.ndim == 3 and values.shape[0] == 1:
        values = values[0]
    if values.ndim != 2 or not values.size:
        raise ValueError(f"expected an xrv image of shape 1 x H x W or H x W, got {values.shape}")
    grey = (values / np.float32(XRV_RANGE) + 1.0) * np.float32(127.5)
    return np.clip(np.rint(grey), 0, 255).astype(np.uint8)


def xrv_labels(
    pathologies: Sequence[str], labels: np.ndarray, target: Sequence[str] = XRV_PATHOLOGIES
) -> np.ndarray:
    """``labels`` (``N x len(pathologies)``, our convention) in the order of ``target`` (xrv
    names) the way xrv reads them: uncertain (-1) -> NaN, blanks of a "No Finding" row -> 0, a
    target class the dataset lacks -> NaN (as xrv's ``relabel_dataset``)."""
    labels = np.asarray(labels, dtype=np.float32).reshape(-1, len(pathologies))
    source = {XRV_ALIASES.get(name_key(p), p): i for i, p in enumerate(pathologies)}
    by_key = {name_key(name): i for name, i in source.items()}
    healthy = np.zeros(len(labels), dtype=bool)
    no_finding = by_key.get(NO_FINDING)
    if no_finding is not None:
        healthy = labels[:, no_finding] == 1
    out = np.full((len(labels), len(target)), np.nan, dtype=np.float32)
    for j, name in enumerate(target):
        i = by_key.get(name_key(name))
        if i is None:
            continue
        column = np.where(labels[:, i] == -1, np.nan, labels[:, i])
        out[:, j] = np.where(healthy & np.isnan(column), 0.0, column)
    return out


class XrvDataset(torch.utils.data.Dataset):
    """One of our readers as an xrv-style dataset (see the module notes).

    Rows whose image file is absent are left out (``missing`` counts them), so ``csv``,
    ``labels`` and the items stay aligned. ``size``: the side of the centre square each image
    is resized to (as xrv's ``XRayCenterCrop`` + ``XRayResizer``); ``pathologies``: the label
    order (default xrv's 18). The reader's own ``transform`` is not used.
    """

    def __init__(
        self,
        dataset: XrayDataset,
        size: int = DEFAULT_SIZE,
        pathologies: Sequence[str] = XRV_PATHOLOGIES,
    ) -> None:
        if size < 1:
            raise ValueError(f"size must be at least 1, got {size}")
        present = dataset.csv["path"].notna().to_numpy()
        self.missing = int((~present).sum())
        if self.missing:
            log.warning("%s: %d image(s) absent on disk; left out of the xrv view",
                        dataset.name, self.missing)  # fmt: skip
            dataset = dataset.subset(mask=present)
        self.dataset = dataset
        self.size = size
        self.pathologies = list(pathologies)
        self.labels = xrv_labels(dataset.pathologies, dataset.labels, self.pathologies)

    @property
    def csv(self) -> pd.DataFrame:
        """The reader's per-image table (rows with an image file)."""
        return self.dataset.csv

    def __len__(self) -> int:
        return len(self.labels)

    def __repr__(self) -> str:
        return (f"XrvDataset({self.dataset.name}, {len(self)} images, {self.size} px, "
                f"{len(self.pathologies)} pathologies)")  # fmt: skip

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} images")
        index %= len(self)
        square = np.asarray(centre_square(load_image(self.csv["path"].iat[index]), self.size))
        return {"idx": index, "lab": self.labels[index], "img": xrv_normalize(square)[None]}


class XrvStyle(Protocol):
    """What :func:`from_xrv` needs of an xrv-style dataset."""

    pathologies: Sequence[str]

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> dict[str, Any]: ...


@dataclass
class XrvArrays:
    """An xrv-style dataset as our scorers take it: 2-D uint8 grey ``images``, ``labels``
    (``N x len(classes)``, NaN unknown) and the class names (xrv's spelling, which our prompts
    know)."""

    images: list[np.ndarray]
    labels: np.ndarray
    classes: list[str]


def from_xrv(dataset: XrvStyle, classes: Sequence[str] | None = None) -> XrvArrays:
    """Every item of ``dataset`` as :class:`XrvArrays`. ``classes``: the pathologies to keep
    (default: those with at least one known label; xrv fills the classes a dataset lacks with
    NaN, and they cannot be scored)."""
    pathologies = [str(p) for p in dataset.pathologies]
    images, rows = [], []
    for index in range(len(dataset)):
        item = dataset[index]
        images.append(xrv_to_grey(item["img"]))
        rows.append(np.asarray(item["lab"], dtype=np.float32).reshape(len(pathologies)))
    labels = np.stack(rows) if rows else np.zeros((0, len(pathologies)), dtype=np.float32)
    if classes is None:
        keep = [j for j in range(len(pathologies)) if not np.isnan(labels[:, j]).all()]
    else:
        unknown = [c for c in classes if c not in pathologies]
        if unknown:
            raise ValueError(f"classes {unknown} are not among the dataset's {pathologies}")
        keep = [pathologies.index(c) for c in classes]
    return XrvArrays(images, labels[:, keep], [pathologies[j] for j in keep])
