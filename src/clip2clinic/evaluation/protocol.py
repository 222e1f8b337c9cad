"""The evaluation protocol: every choice a task makes that the paper (following CXR-CLIP,
GLoRIA and ProbMed) fixes one way and clip2clinic once made another, named and selectable.

``clip2clinic evaluate --protocol paper`` (the default) scores as the paper's sources do;
``--protocol clip2clinic`` keeps clip2clinic's own choices; ``--protocol-choice KEY=VALUE``
overrides one choice of either. The choices are written into ``metrics.json`` (``protocol``),
beside what each task actually used (``tasks.<task>_<dataset>.protocol``). docs/evaluation.md
quotes the paper's sentence each choice follows.

Choices (:data:`CHOICES` lists their values; the first value is the paper's):

- ``prompts``: binary zero-shot prompts. ``cxr_clip``: one pair, "{c}" against "No {c}" with the
  dataset's class name as it is, and BioViL's pair for RSNA ("Findings suggesting pneumonia."
  against "No evidence of pneumonia"), as CXR-CLIP's evaluator; ``ensemble``: our four-phrase
  ensembles per side (``zeroshot_prompts.json``).
- ``five_by_200``: CheXpert 5x200 prompts. ``cxr_clip``: every combination of the word lists as
  CXR-CLIP generates them, repeats kept (a subtype listed twice weighs twice: Pleural Effusion
  has 54 prompts); ``unique``: each distinct prompt once (36).
- ``vindr_classes``: ``cxr_clip``: CXR-CLIP's 18 VinDr classes (those with more than 10 test
  positives, the catch-alls "Other lesion"/"Other diseases" left out); ``all``: every class of
  the release (catch-alls scored NaN).
- ``chexpert_blank``: a blank CheXpert label. ``negative``: read as 0, as GLoRIA's preprocessing
  (``fillna(0)``) and CXR-CLIP's label sets do; ``unknown``: the image is left out of that class.
- ``adversarial``: the headline ``adversarial_acc``. ``hallucinated``: ProbMed's pair (a positive
  query and a hallucinated one, chance 1/4), negated pairs reported apart; ``all``: every pair
  (negated and hallucinated together).
- ``openi_pairs``: which Open-I pairs retrieval, CXR-Align and normal case detection score.
  ``all_frontal``: every frontal image-report pair of the corpus, whatever its split (CXR-CLIP's
  Open-I test set); ``split``: the scored split, laterals included.
- ``siim_split``: ``gloria``: GLoRIA's row split; ``dedup``: one row per image, split by image.
- ``labeler``: retrieval's CheXpert labels. ``manifest`` (both protocols' default): the
  manifest's labels (our rule labeler, set by ``prepare``); ``chexbert``: the reports labelled
  by CheXbert (needs ``chexbert_checkpoint``), as the paper scores retrieval.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from clip2clinic.io import InputError

log = logging.getLogger(__name__)

#: Every choice and its allowed values; the first is the paper's, except ``labeler``: CheXbert's
#: weights cannot ship with the package, so both protocols read the manifest's labels unless
#: ``--labeler chexbert --chexbert-checkpoint FILE`` is given (metrics.json says which).
CHOICES: dict[str, tuple[str, ...]] = {
    "prompts": ("cxr_clip", "ensemble"),
    "five_by_200": ("cxr_clip", "unique"),
    "vindr_classes": ("cxr_clip", "all"),
    "chexpert_blank": ("negative", "unknown"),
    "adversarial": ("hallucinated", "all"),
    "openi_pairs": ("all_frontal", "split"),
    "siim_split": ("gloria", "dedup"),
    "labeler": ("manifest", "chexbert"),
}


@dataclass(frozen=True)
class Protocol:
    """One value per choice of :data:`CHOICES` (see the module notes), and the CheXbert
    checkpoint the ``chexbert`` labeler reads."""

    name: str
    prompts: str
    five_by_200: str
    vindr_classes: str
    chexpert_blank: str
    adversarial: str
    openi_pairs: str
    siim_split: str
    labeler: str
    chexbert_checkpoint: str | None = None

    def __post_init__(self) -> None:
        for key, allowed in CHOICES.items():
            value = getattr(self, key)
            if value not in allowed:
                raise InputError(f"protocol choice {key}={value!r}: choose from "
                                 f"{', '.join(allowed)}")

    def with_choices(self, overrides: Iterable[str]) -> Protocol:
        """This protocol with ``KEY=VALUE`` overrides (``--protocol-choice``); the name gets
        ``+key=value`` for each one that changes something."""
        changes: dict[str, str] = {}
        for item in overrides:
            key, sep, value = item.partition("=")
            key, value = key.strip(), value.strip()
            if not sep or key not in {*CHOICES, "chexbert_checkpoint"}:
                raise InputError(f"--protocol-choice {item!r}: expected KEY=VALUE with KEY one "
                                 f"of {', '.join(CHOICES)}, chexbert_checkpoint")
            changes[key] = value
        changed = {k: v for k, v in changes.items() if getattr(self, k) != v}
        name = self.name + "".join(f"+{k}={v}" for k, v in changed.items()
                                   if k != "chexbert_checkpoint")  # fmt: skip
        return replace(self, name=name, **changed)

    def reader_options(self, reader: str) -> dict[str, Any]:
        """The reader options this protocol sets for dataset ``reader`` (the user's own
        ``--data READER:KEY=VALUE=ROOT`` options override them)."""
        if reader == "siim":
            return {"split": self.siim_split}
        return {}

    def reader_labels(self, reader: str, classes: list[str], labels: np.ndarray,
                      test: np.ndarray | None) -> tuple[list[int], np.ndarray, dict[str, Any]]:
        """The columns of ``labels`` this protocol scores for dataset ``reader``, the labels
        read its way, and notes for metrics.json. ``test``: the test rows (None: no test
        split), where VinDr's positives are counted."""
        labels = np.array(labels, dtype=np.float32, copy=True)
        columns = list(range(len(classes)))
        notes: dict[str, Any] = {}
        if reader in ("chexpert", "chexpert_plus"):
            notes["blank_labels"] = self.chexpert_blank
            if self.chexpert_blank == "negative":
                labels[np.isnan(labels)] = 0.0
        if reader == "vindr":
            notes["classes"] = self.vindr_classes
            if self.vindr_classes == "cxr_clip":
                columns = _vindr_columns(classes, labels, test, notes)
        return columns, labels, notes

    def check(self) -> None:
        """Raise InputError where a choice lacks what it needs (the CheXbert checkpoint)."""
        if self.labeler == "chexbert" and not self.chexbert_checkpoint:
            raise InputError("--labeler chexbert needs --chexbert-checkpoint (a CheXbert "
                             ".safetensors file); or pass --labeler manifest")

    def record(self) -> dict[str, Any]:
        """The choices as written into metrics.json."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


#: CXR-CLIP's VinDr-CXR classes (``cxrclip/prompt/constants.py``, ``VINDR_CXR``): the classes
#: with more than 10 positives in the test set, less the catch-alls "Other lesion" and "Other
#: diseases".
VINDR_CXR_CLIP_CLASSES: tuple[str, ...] = (
    "Aortic enlargement", "Atelectasis", "Calcification", "Cardiomegaly", "Consolidation", "ILD",
    "Infiltration", "Lung Opacity", "Mediastinal shift", "Nodule/Mass", "Pleural effusion",
    "Pleural thickening", "Pneumothorax", "Pulmonary fibrosis", "Rib fracture", "Lung tumor",
    "Pneumonia", "Tuberculosis",
)  # fmt: skip
#: CXR-CLIP's rule for its VinDr classes: more than this many test positives.
VINDR_MIN_TEST_POSITIVES = 10


def _vindr_columns(classes: list[str], labels: np.ndarray, test: np.ndarray | None,
                   notes: dict[str, Any]) -> list[int]:
    """The columns of CXR-CLIP's VinDr classes present in ``classes`` (matched ignoring
    case); a listed class the data lacks, or one with too few test positives, is warned about
    and named in ``notes``."""
    index = {name.lower(): i for i, name in enumerate(classes)}
    columns = [index[c.lower()] for c in VINDR_CXR_CLIP_CLASSES if c.lower() in index]
    missing = [c for c in VINDR_CXR_CLIP_CLASSES if c.lower() not in index]
    if missing:
        log.warning("VinDr: %d of CXR-CLIP's classes are not in the data: %s", len(missing),
                    ", ".join(missing))
        notes["classes_missing"] = missing
    rows = labels if test is None else labels[test]
    positives = {classes[c]: int((rows[:, c] == 1).sum()) for c in columns}
    few = [name for name, n in positives.items() if n <= VINDR_MIN_TEST_POSITIVES]
    if few:
        log.warning("VinDr: %d class(es) have %d or fewer test positives (CXR-CLIP's classes "
                    "had more): %s", len(few), VINDR_MIN_TEST_POSITIVES, ", ".join(few))
    notes["test_positives"] = positives
    return columns


#: The named protocols: the paper's (CXR-CLIP, GLoRIA and ProbMed's choices) and ours.
PROTOCOLS: dict[str, Protocol] = {
    "paper": Protocol("paper", **{key: values[0] for key, values in CHOICES.items()}),
    "clip2clinic": Protocol("clip2clinic", prompts="ensemble", five_by_200="unique",
                            vindr_classes="all", chexpert_blank="unknown", adversarial="all",
                            openi_pairs="split", siim_split="dedup", labeler="manifest"),
}  # fmt: skip


def get_protocol(name: str, overrides: Iterable[str] = ()) -> Protocol:
    """The protocol called ``name`` (a key of :data:`PROTOCOLS`) with ``KEY=VALUE``
    overrides."""
    try:
        base = PROTOCOLS[name]
    except KeyError:
        raise InputError(f"--protocol {name!r}: choose from {', '.join(PROTOCOLS)}") from None
    return base.with_choices(overrides)


__all__ = ["CHOICES", "PROTOCOLS", "Protocol", "get_protocol"]
