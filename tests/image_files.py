"""Writers of small real image files (PNG, JPEG, DICOM) for tests that build dataset trees."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid


def gradient(height: int = 24, width: int = 20, maximum: int = 255) -> np.ndarray:
    """A left-to-right ramp from 0 to ``maximum`` (uint8 or uint16 by ``maximum``)."""
    dtype = np.uint8 if maximum <= 255 else np.uint16
    row = np.linspace(0, maximum, width).round().astype(dtype)
    return np.tile(row, (height, 1))


def write_png(path: Path, pixels: np.ndarray | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(gradient() if pixels is None else pixels).save(path)
    return path


def write_jpeg(path: Path, pixels: np.ndarray | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(gradient() if pixels is None else pixels, "L").save(path, quality=95)
    return path


def write_dicom(
    path: Path,
    pixels: np.ndarray | None = None,
    *,
    photometric: str = "MONOCHROME2",
    bits_stored: int = 12,
    window: tuple[float, float] | None = None,
    rescale: tuple[float, float] | None = None,
    patient_id: str = "P0",
) -> Path:
    """A minimal valid DICOM file (Part 10 with file meta) holding ``pixels`` (uint16)."""
    pixels = gradient(maximum=2**bits_stored - 1).astype(np.uint16) if pixels is None else pixels
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.PatientID = patient_id
    ds.Modality = "DX"
    ds.set_pixel_data(pixels.astype(np.uint16), photometric, bits_stored)
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    if rescale is not None:
        ds.RescaleSlope, ds.RescaleIntercept = rescale
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path
