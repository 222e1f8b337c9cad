"""Pools of negative statements ("No pleural effusion.") per CheXpert observation.

Two disjoint pools: ``train`` for the hard negatives models learn from, ``eval`` for building
CXR-Align with wording never seen in training (a model could otherwise learn the template, not
the negation). Each pool is a data file beside this module (``data/<pool>.txt``): an
``[Observation]`` header, then one phrasing per line.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from clip2clinic.observations import FINDINGS

DATA_DIR = Path(__file__).with_name("data")
POOLS: tuple[str, ...] = ("train", "eval")


def read_pool(path: Path) -> dict[str, tuple[str, ...]]:
    """Phrasings by observation from a pool file; raises ``ValueError`` naming a bad line."""
    pool: dict[str, list[str]] = {}
    observation = None
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            observation = line[1:-1]
            if observation not in FINDINGS:
                raise ValueError(f"{path}:{number}: unknown observation {observation!r}")
            pool.setdefault(observation, [])
        elif observation is None:
            raise ValueError(f"{path}:{number}: phrasing before any [Observation] header")
        else:
            pool[observation].append(line)
    return {name: tuple(lines) for name, lines in pool.items()}


@lru_cache(maxsize=len(POOLS))
def _pool(pool: str) -> dict[str, tuple[str, ...]]:
    if pool not in POOLS:
        raise ValueError(f"unknown phrasing pool {pool!r}; choose from {', '.join(POOLS)}")
    return read_pool(DATA_DIR / f"{pool}.txt")


def negation_phrasings(observation: str, pool: str = "train") -> list[str]:
    """The negative statements about ``observation`` (a CheXpert finding) in ``pool``."""
    phrasings = _pool(pool)
    if observation not in phrasings:
        raise KeyError(f"no negation phrasings for {observation!r} in the {pool} pool")
    return list(phrasings[observation])
