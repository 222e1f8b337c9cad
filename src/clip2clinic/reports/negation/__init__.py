"""Negation-based hard negatives (paper Sec. 4.1, Fig. 2) and their phrasing pools.

>>> from clip2clinic.reports.negation import make_hard_negative
>>> h = make_hard_negative("Small left pleural effusion. No pneumothorax.", row_id="s1")
>>> h.chosen, h.omitted
('Pleural Effusion', 'No pneumothorax.')
"""

from __future__ import annotations

from clip2clinic.reports.negation.hard_negatives import (
    COLUMNS,
    POSITIONS,
    HardNegative,
    SinglePositive,
    make_hard_negative,
    make_hard_negatives,
    single_positive_corpus,
)
from clip2clinic.reports.negation.phrasings import POOLS, negation_phrasings
from clip2clinic.reports.negation.removal import Omission, omit_observation

__all__ = [
    "COLUMNS",
    "POOLS",
    "POSITIONS",
    "HardNegative",
    "Omission",
    "SinglePositive",
    "make_hard_negative",
    "make_hard_negatives",
    "negation_phrasings",
    "omit_observation",
    "single_positive_corpus",
]
