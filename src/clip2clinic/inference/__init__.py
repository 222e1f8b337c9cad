"""Inference engines behind :class:`clip2clinic.api.Clip2Clinic`: one turns images into
embeddings (:class:`ImageEngine`), one texts (:class:`TextEngine`); each owns its inputs'
preprocessing, read from the model's config."""

from clip2clinic.inference.image_engine import ImageEngine, ImageInput
from clip2clinic.inference.text_engine import TextEngine

__all__ = ["ImageEngine", "ImageInput", "TextEngine"]
