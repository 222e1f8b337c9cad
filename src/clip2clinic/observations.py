"""The 14 CheXpert observations, in the column order of the CheXpert labeler's output."""

from __future__ import annotations

CHEXPERT_CLASSES: tuple[str, ...] = (
    "No Finding",
    "Enlarged Cardiomediastinum",
    "Cardiomegaly",
    "Lung Lesion",
    "Lung Opacity",
    "Edema",
    "Consolidation",
    "Pneumonia",
    "Atelectasis",
    "Pneumothorax",
    "Pleural Effusion",
    "Pleural Other",
    "Fracture",
    "Support Devices",
)

#: Observations that are findings (everything but "No Finding").
FINDINGS: tuple[str, ...] = CHEXPERT_CLASSES[1:]

POSITIVE, NEGATIVE, UNCERTAIN = 1, 0, -1


def slug(observation: str) -> str:
    """File-name form of an observation: "Pleural Effusion" -> "pleural_effusion"."""
    return observation.lower().replace(" ", "_")

