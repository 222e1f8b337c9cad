"""SIIM-ACR Pneumothorax Segmentation (the original stage 1 training release).

``train-rle.csv`` has one row per mask (``ImageId, EncodedPixels``; the real header has a space
before EncodedPixels and the values a leading space, " -1" meaning no pneumothorax), so an image
with several pneumothorax regions has several rows. DICOMs are found anywhere under
``dicom-images-train`` (``<study>/<series>/<ImageId>.dcm`` in the release).

Splits (``split=``):
- "gloria": GLoRIA's split reproduced faithfully: one row per CSV row (its RLE in
  ``encoded_pixels``), split 70/15/15 by rows
  with scikit-learn (``random_state`` = seed, 0 in GLoRIA). Because rows are masks, images with
  several masks can land in both train and test: the split leaks (see ``splits.leaked``).
- "dedup" (default): one row per ImageId (label 1 when any mask exists, ``masks`` = the number
  of RLE masks), split 70/15/15 by ImageId with our seeded grouping: no image crosses splits.
  The CSV carries no patient id, so images are the grouping unit.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clip2clinic.data.datasets.base import XrayDataset, index_files, require
from clip2clinic.data.datasets.splits import gloria_split, group_split
from clip2clinic.io import read_table

log = logging.getLogger(__name__)

LABELS = "train-rle.csv"
IMAGES = "dicom-images-train"


class SiimPneumothorax(XrayDataset):
    """SIIM-ACR pneumothorax: label Pneumothorax, GLoRIA's leaking split or a de-duplicated one."""

    name = "SIIM-ACR Pneumothorax"
    layout = """\
ROOT/
  train-rle.csv                  ImageId, EncodedPixels   (" -1" = no pneumothorax)
  dicom-images-train/STUDY_UID/SERIES_UID/IMAGEID.dcm"""

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        split: str = "dedup",
        fractions: Sequence[float] = (0.7, 0.15, 0.15),
        seed: int = 0,
        transform: Callable[[np.ndarray], Any] | None = None,
    ) -> None:
        """``split``: "dedup" or "gloria" (see the module notes); ``fractions`` apply to
        "dedup" only (GLoRIA's is fixed at 70/15/15)."""
        if split not in ("gloria", "dedup"):
            raise ValueError(f"split must be 'gloria' or 'dedup', got {split!r}")
        root = Path(root)
        require(type(self), root, LABELS, IMAGES)
        table = read_table(root / LABELS, required=["ImageId", "EncodedPixels"])
        table["ImageId"] = table["ImageId"].str.strip()
        rle = table["EncodedPixels"].fillna("-1").str.strip()
        table = table.assign(EncodedPixels=rle, label=(rle != "-1").astype(np.float32))
        if split == "gloria":
            rows = table
            names = gloria_split(rows.index, seed=seed)
            extra = {"encoded_pixels": rows["EncodedPixels"].to_numpy()}
        else:
            rows = (
                table.groupby("ImageId", sort=False)
                .agg(label=("label", "max"), masks=("label", "sum"))
                .reset_index()
            )
            names = group_split(rows["ImageId"], fractions, seed)
            extra = {"masks": rows["masks"].astype(int).to_numpy()}
        files = index_files(root / IMAGES, (".dcm",))
        paths = [files.get(image_id) for image_id in rows["ImageId"]]
        self.missing_images = sum(path is None for path in paths)
        if self.missing_images:
            log.warning(
                "%s: %d row(s) have no DICOM under %s", self.name, self.missing_images, IMAGES
            )
        frame = pd.DataFrame(
            {
                "image_id": rows["ImageId"].to_numpy(),
                "patient_id": rows["ImageId"].to_numpy(),
                "study_id": None,
                "split": names.to_numpy(),
                "view": None,
                "path": paths,
                **extra,
            }
        )
        labels = rows[["label"]].to_numpy(dtype=np.float32)
        super().__init__(frame, ["Pneumothorax"], labels, transform)
