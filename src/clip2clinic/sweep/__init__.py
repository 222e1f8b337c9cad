"""Choosing a variant's settings (thresholds, weights, the paper's open readings) on the
validation split: ``clip2clinic sweep``."""
