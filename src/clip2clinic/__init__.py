"""clip2clinic: medical CLIP with dynamic soft labels and negation-aware hard negatives.

``Clip2Clinic`` and ``create_model_and_transforms`` (see :mod:`clip2clinic.api`) load on first
use, so ``import clip2clinic`` and the command line stay light.
"""

from typing import Any

__version__ = "0.1.0"
__all__ = ["Clip2Clinic", "create_model_and_transforms"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from clip2clinic import api

        return getattr(api, name)
    raise AttributeError(f"module 'clip2clinic' has no attribute {name!r}")
