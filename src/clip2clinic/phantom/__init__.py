"""The phantom: a synthetic chest X-ray corpus in the MIMIC-CXR-JPG v2.0.0 layout.

It is the project's embedded default data: drawn radiographs whose findings follow a ground
truth, reports in MIMIC's free-text style that describe the same truth, MIMIC's metadata, split
and CheXpert tables, and ``phantom_truth.jsonl`` with the truth itself. See docs/phantom.md.
"""

from clip2clinic.phantom.generate import CONFIG_FILE, TRUTH_FILE, generate_phantom

__all__ = ["CONFIG_FILE", "TRUTH_FILE", "generate_phantom"]
