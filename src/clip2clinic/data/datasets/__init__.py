"""Dataset readers, one module per dataset, all following :mod:`.base`'s contract.

``open_dataset(name, root, **options)`` builds a reader by its short name (the names of
:data:`READERS`, as used by ``clip2clinic prepare DATASET``).
"""

from __future__ import annotations

import inspect
import os
from typing import Any

from clip2clinic.data.datasets.base import DatasetRootError, XrayDataset
from clip2clinic.data.datasets.chestxray14 import ChestXray14
from clip2clinic.data.datasets.chexpert import CheXpert, CheXpert5x200
from clip2clinic.data.datasets.chexpert_plus import CheXpertPlus
from clip2clinic.data.datasets.mimic import MimicCxr
from clip2clinic.data.datasets.openi import OpenI
from clip2clinic.data.datasets.rsna import RsnaPneumonia
from clip2clinic.data.datasets.siim import SiimPneumothorax
from clip2clinic.data.datasets.vindr import VinDrCxr
from clip2clinic.io import InputError

READERS: dict[str, type[XrayDataset]] = {
    "mimic": MimicCxr,
    "openi": OpenI,
    "chexpert": CheXpert,
    "chexpert5x200": CheXpert5x200,
    "chexpert_plus": CheXpertPlus,
    "rsna": RsnaPneumonia,
    "siim": SiimPneumothorax,
    "vindr": VinDrCxr,
    "chestxray14": ChestXray14,
}


def open_dataset(name: str, root: str | os.PathLike, **options: Any) -> XrayDataset:
    """The reader called ``name`` (a key of :data:`READERS`) on ``root``."""
    try:
        reader = READERS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(READERS)}") from None
    takes = sorted(set(inspect.signature(reader).parameters) - {"root", "transform"})
    unknown = sorted(set(options) - set(takes))
    if unknown:
        raise InputError(f"reader {name!r} takes no option {unknown[0]!r}; it takes "
                         f"{', '.join(takes)}")
    return reader(root, **options)


__all__ = [
    "READERS", "ChestXray14", "CheXpert", "CheXpert5x200", "CheXpertPlus", "DatasetRootError",
    "MimicCxr", "OpenI", "RsnaPneumonia", "SiimPneumothorax", "VinDrCxr", "XrayDataset",
    "open_dataset",
]  # fmt: skip
