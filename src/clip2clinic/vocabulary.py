"""Names shared across the package, defined once: the splits of a corpus.

(The CheXpert observations are in :mod:`clip2clinic.observations`; the variants and presets are
the files of :mod:`clip2clinic.configs`.)
"""

from __future__ import annotations

#: A corpus's splits, in order: training, choosing settings and thresholds, scoring.
SPLITS: tuple[str, ...] = ("train", "validate", "test")
