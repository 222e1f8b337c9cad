"""Small shared pieces of the ranking tasks (retrieval, normal case detection): checked
embedding matrices and top-k hits that treat tied scores fairly."""

from __future__ import annotations

import numpy as np

#: Similarity blocks are computed this many elements at a time (64 MB of float32).
BLOCK_ELEMENTS = 1 << 24


def embedding_matrix(name: str, array: np.ndarray, dim: int | None = None) -> np.ndarray:
    """``array`` as a 2-D float32 matrix; a ``ValueError`` names ``name`` when it is not 2-D,
    has another width than ``dim``, or holds NaN/inf."""
    matrix = np.asarray(array, dtype=np.float32)
    if matrix.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D embedding matrix, got shape {matrix.shape}")
    if dim is not None and matrix.shape[1] != dim:
        raise ValueError(f"{name}: embeddings have width {matrix.shape[1]}, expected {dim}")
    if not np.isfinite(matrix).all():
        raise ValueError(f"{name}: embeddings contain NaN or inf")
    return matrix


def block_rows(n_columns: int) -> int:
    """How many query rows to score at once against ``n_columns`` candidates."""
    return max(1, BLOCK_ELEMENTS // max(1, n_columns))


def expected_hits(scores: np.ndarray, target: np.ndarray, k: int) -> np.ndarray:
    """Per row, the chance that the target candidate is among the top ``k`` when ties are
    broken at random: ``clip((k - above) / (tied + 1), 0, 1)``.

    ``scores``: rows × candidates, the target's own score included; ``target``: each row's
    target score. ``above`` counts candidates scoring strictly higher than the target and
    ``tied`` the other candidates scoring exactly the same. Without ties this is 1 or 0.
    """
    target = target[:, None]
    above = (scores > target).sum(axis=1)
    tied = (scores == target).sum(axis=1) - 1
    return np.clip((k - above) / (tied + 1), 0.0, 1.0)
