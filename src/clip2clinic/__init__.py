"""clip2clinic: medical CLIP with dynamic soft labels and negation-aware hard negatives."""

__version__ = "0.1.0"
