"""Scoring a CheXpert-style labeler against the IU X-ray (Open-i) hand labels of NegBio.

Mapping (``../shared/data/README.md``): Atelectasis, Cardiomegaly, Pneumonia, Pneumothorax,
Consolidation, Edema by name; Pleural Effusion - Effusion; Lung Lesion - Mass or Nodule;
Pleural Other - Pleural_Thickening; No Finding - normal. A prediction is positive when its value
is 1. Lung Opacity - Infiltration is scored apart (Lung Opacity is the broader class). Report
text = findings + " " + impression.

Used by benchmarks/score_labeler_iu.py, benchmarks/bench_graph.py and the tests; not part of
the library.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from clip2clinic.io import as_text, read_table

#: CheXpert class -> IU gold columns (positive if any of them is 1).
MAPPED: dict[str, tuple[str, ...]] = {
    "No Finding": ("normal",),
    "Atelectasis": ("Atelectasis",),
    "Cardiomegaly": ("Cardiomegaly",),
    "Pneumonia": ("Pneumonia",),
    "Pneumothorax": ("Pneumothorax",),
    "Consolidation": ("Consolidation",),
    "Edema": ("Edema",),
    "Pleural Effusion": ("Effusion",),
    "Lung Lesion": ("Mass", "Nodule"),
    "Pleural Other": ("Pleural_Thickening",),
}
APART: dict[str, tuple[str, ...]] = {"Lung Opacity": ("Infiltration",)}


def load_iu_dev(iu_dir: str | Path) -> pd.DataFrame:
    """IU dev reports with gold labels: columns ``filename``, ``text`` and the gold columns."""
    iu_dir = Path(iu_dir)
    gold = read_table(iu_dir / "gold_labels_dev.csv", required=["filename"])
    reports = read_table(iu_dir / "indiana_reports.csv",
                         required=["uid", "findings", "impression"])
    reports["filename"] = "CXR" + reports["uid"].astype(str)
    reports["text"] = [
        f"{as_text(f)} {as_text(i)}".strip()
        for f, i in zip(reports["findings"], reports["impression"], strict=True)
    ]
    merged = gold.merge(reports[["filename", "text"]], on="filename", how="inner")
    for column in {c for cols in (*MAPPED.values(), *APART.values()) for c in cols}:
        merged[column] = merged[column].astype(int)
    return merged


def split_halves(frame: pd.DataFrame, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A seeded random half A (rule development) and half B (held back) of ``frame``."""
    order = np.random.default_rng(seed).permutation(len(frame))
    half = len(frame) // 2
    return frame.iloc[order[:half]], frame.iloc[order[half:]]


def score(predictions: pd.DataFrame, gold: pd.DataFrame,
          mapping: dict[str, tuple[str, ...]] = MAPPED) -> pd.DataFrame:
    """Per-class precision, recall, F1 and support (gold positives); rows aligned by position.

    A class with no predicted and no gold positive scores F1 = 1 (nothing to find, nothing
    wrongly found).
    """
    rows = []
    for observation, columns in mapping.items():
        truth = gold[list(columns)].to_numpy().max(axis=1) == 1
        predicted = predictions[observation].to_numpy() == 1
        tp = int(np.sum(truth & predicted))
        fp = int(np.sum(~truth & predicted))
        fn = int(np.sum(truth & ~predicted))
        precision = tp / (tp + fp) if tp + fp else float(fn == 0)
        recall = tp / (tp + fn) if tp + fn else 1.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        rows.append({"class": observation, "precision": precision, "recall": recall,
                     "f1": f1, "support": int(truth.sum()), "tp": tp, "fp": fp, "fn": fn})
    return pd.DataFrame(rows).set_index("class")


def macro_f1(table: pd.DataFrame) -> float:
    """Mean F1 over the rows of a :func:`score` table."""
    return float(table["f1"].mean())
