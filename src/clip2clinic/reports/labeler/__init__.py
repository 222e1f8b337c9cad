"""CheXpert labels for radiology reports: an offline rule labeler and a CheXbert backend.

>>> from clip2clinic.reports.labeler import get_labeler
>>> get_labeler().label("Heart size normal. No effusion.")["Pleural Effusion"]
0.0
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from clip2clinic.reports.labeler.mentions import Mention
from clip2clinic.reports.labeler.rule_labeler import RuleLabeler

if TYPE_CHECKING:
    from clip2clinic.reports.labeler.chexbert import CheXbertLabeler

__all__ = ["BACKENDS", "CheXbertLabeler", "Mention", "RuleLabeler", "get_labeler"]

BACKENDS: tuple[str, ...] = ("rules", "chexbert")


def get_labeler(backend: str = "rules", checkpoint: str | None = None, **kw):
    """A labeler with ``label``/``label_many``: "rules" (default) or "chexbert" (needs
    ``checkpoint``, a CheXbert safetensors file; ``kw`` go to :class:`CheXbertLabeler`)."""
    if backend == "rules":
        return RuleLabeler(**kw)
    if backend == "chexbert":
        if not checkpoint:
            raise ValueError("the chexbert backend needs a checkpoint (a .safetensors file)")
        from clip2clinic.reports.labeler.chexbert import CheXbertLabeler

        return CheXbertLabeler(checkpoint, **kw)
    raise ValueError(f"unknown labeler backend {backend!r}; choose from {', '.join(BACKENDS)}")


def __getattr__(name: str):
    # CheXbert pulls in torch and transformers; import it only when asked for.
    if name == "CheXbertLabeler":
        from clip2clinic.reports.labeler.chexbert import CheXbertLabeler

        return CheXbertLabeler
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
