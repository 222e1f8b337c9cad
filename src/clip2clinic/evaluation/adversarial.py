"""Adversarial pairs (paper Sec. 5.4, Table 4): ProbMed's probing adapted to CLIP.

Per abnormal image, a true statement about one of its positive findings ("Pleural
effusion.") is paired with an adversarial one that is false for the image:

- ``negated``: the negation of that finding ("No pleural effusion.");
- ``hallucinated``: a finding the image does not have ("Pneumothorax."), drawn among those its
  labels mark negative (0), else among those not mentioned (NaN); never an uncertain one.

A statement is judged by comparing it with its opposite, threshold-free: the image affirms
"X." when sim(I, "X.") > sim(I, "No x."). The true statement is judged right when the image
affirms it, the adversarial one when the image rejects it, and a pair counts only when both
are right (a tie is wrong). For a negated pair both judgements are the same comparison, so
it is right exactly when the image prefers the finding to its negation (chance 1/2); a
hallucinated pair needs two independent judgements (chance 1/4).

The headline ``adversarial_acc`` is, under the paper's protocol, ProbMed's pair: the
hallucinated pairs (a positive query and a hallucinated one); the negated pairs are reported
apart (``adversarial_acc_negation``) and all pairs together as ``adversarial_acc_all``. The
clip2clinic protocol's headline is all pairs. It runs on a manifest's scored split (its report
labels) and on a reader dataset with several classes (its test split), such as ChestX-ray14,
the paper's setting.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from clip2clinic.evaluation.ranking import embedding_matrix
from clip2clinic.evaluation.results import TaskResult, proportion_estimate
from clip2clinic.evaluation.tasks import Scored, Task, with_ids
from clip2clinic.observations import CHEXPERT_CLASSES

if TYPE_CHECKING:
    from clip2clinic.evaluation.sources import Context, Corpus, ReaderData

log = logging.getLogger(__name__)

KINDS: tuple[str, ...] = ("negated", "hallucinated")
#: ``adversarial`` protocol choice -> the pairs the headline ``adversarial_acc`` counts.
HEADLINES = ("hallucinated", "all")
#: Classes that are not a finding one can state or hallucinate.
NOT_FINDINGS = frozenset({"no finding", "normal"})
#: Class name (lower case) -> words for statements, where the name itself reads badly.
WORDING = {"pleural other": "pleural abnormality"}
PAIR_COLUMNS = ("image", "kind", "positive", "adversarial", "true_statement",
                "adversarial_statement")


def statement(observation: str, present: bool) -> str:
    """"Pleural effusion." (present) or "No pleural effusion." (absent) for a class name
    ("Pleural Effusion", "Pleural_Thickening", ...)."""
    name = observation.replace("_", " ").strip().lower()
    words = WORDING.get(name, name)
    return f"{words[0].upper()}{words[1:]}." if present else f"No {words}."


def build_adversarial_pairs(labels: np.ndarray, seed: int = 0,
                            classes: Sequence[str] = CHEXPERT_CLASSES,
                            kinds: Sequence[str] = KINDS) -> pd.DataFrame:
    """Pairs for the images (rows) of ``labels`` (N × len(classes): 1, 0, -1, NaN).

    Each image with a positive finding gets one pair of each kind in ``kinds``, sharing one
    positive finding drawn at random; an image with no finding it lacks gets no hallucinated
    pair. Draws depend only on ``seed`` and the row number. Columns: :data:`PAIR_COLUMNS`.
    """
    values = np.asarray(labels, dtype=np.float32)
    if values.ndim != 2 or values.shape[1] != len(classes):
        raise ValueError(f"labels: expected shape (N, {len(classes)}), got {values.shape}")
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown pair kind(s) {sorted(unknown)}; choose from {KINDS}")
    findings = np.array([c.replace("_", " ").lower() not in NOT_FINDINGS for c in classes])
    rows = []
    for image, row in enumerate(values):
        positives = np.flatnonzero(findings & (row == 1))
        if positives.size == 0:
            continue
        rng = np.random.default_rng([seed, image])
        positive = classes[int(rng.choice(positives))]
        absent = np.flatnonzero(findings & (row == 0))
        if absent.size == 0:
            absent = np.flatnonzero(findings & np.isnan(row))
        hallucinated = classes[int(rng.choice(absent))] if absent.size else None
        for kind in kinds:
            if kind == "negated":
                rows.append((image, kind, positive, positive, statement(positive, True),
                             statement(positive, False)))
            elif hallucinated is not None:
                rows.append((image, kind, positive, hallucinated, statement(positive, True),
                             statement(hallucinated, True)))
    return pd.DataFrame(rows, columns=list(PAIR_COLUMNS))


def score_adversarial(image_emb: np.ndarray, embed_texts: Callable[[Sequence[str]], np.ndarray],
                      pairs: pd.DataFrame, seed: int = 0,
                      groups: Sequence | np.ndarray | None = None,
                      headline: str = "all") -> TaskResult:
    """``adversarial_acc_all`` (all pairs), ``adversarial_acc_negation`` (negated pairs),
    ``adversarial_acc_hallucination`` (hallucinated pairs) and the headline ``adversarial_acc``
    (``headline``: "all" pairs or the "hallucinated" ones, ProbMed's): share of pairs with both
    statements judged right.

    ``pairs``: from :func:`build_adversarial_pairs` (its ``image`` column indexes the rows of
    ``image_emb``). ``embed_texts`` embeds the statements and their opposites (L2-normalised
    rows). The table has one row per kind and an ``all`` row: ``n`` pairs, the pair accuracy
    with its 95% interval, and the shares of true and of adversarial statements judged right.
    Intervals are Wilson's, by the effective number of patients where ``groups`` gives a
    patient id per image row; ``seed`` is kept for callers. The per-case results are the
    pairs with ``true_right``, ``adversarial_right``, ``right`` (both) and ``headline`` (the
    pair counts in ``adversarial_acc``).
    """
    if headline not in HEADLINES:
        raise ValueError(f"headline must be one of {HEADLINES}, got {headline!r}")
    image = embedding_matrix("image_emb", image_emb)
    missing = [c for c in ("image", "kind", "positive", "adversarial") if c not in pairs.columns]
    if missing:
        raise ValueError(f"pairs: missing column(s) {', '.join(missing)}")
    index = pairs["image"].to_numpy(dtype=np.int64)
    if len(index) and (index.min() < 0 or index.max() >= len(image)):
        raise ValueError(f"pairs: image indices must lie in [0, {len(image)})")
    observations = sorted(set(pairs["positive"]) | set(pairs["adversarial"]))
    present, absent = _scores(image, embed_texts, observations)
    affirms, rejects = present > absent, absent > present
    column = {name: i for i, name in enumerate(observations)}
    true_right = affirms[index, pairs["positive"].map(column).to_numpy(dtype=np.int64)]
    adversarial = pairs["adversarial"].map(column).to_numpy(dtype=np.int64)
    negated = (pairs["kind"] == "negated").to_numpy()
    adversarial_right = np.where(negated, affirms[index, adversarial],
                                 rejects[index, adversarial])
    right = (true_right & adversarial_right).astype(float)
    patients = (np.arange(len(image)) if groups is None else np.asarray(groups))[index]

    kinds = pairs["kind"].to_numpy()
    masks = {"negated": kinds == "negated", "hallucinated": kinds == "hallucinated",
             "all": np.ones(len(pairs), dtype=bool)}
    metrics = {
        f"adversarial_acc{suffix}": proportion_estimate(right[masks[kind]], patients[masks[kind]])
        for kind, suffix in ((headline, ""), ("all", "_all"), ("negated", "_negation"),
                             ("hallucinated", "_hallucination"))
    }  # fmt: skip
    table = pd.DataFrame([
        _table_row(kind, right[mask], true_right[mask], adversarial_right[mask], patients[mask])
        for kind, mask in masks.items()
    ])
    cases = pairs.reset_index(drop=True).assign(
        true_right=true_right, adversarial_right=adversarial_right, right=right.astype(bool),
        headline=masks[headline])
    return TaskResult(metrics, table, cases)


def _scores(image: np.ndarray, embed_texts: Callable[[Sequence[str]], np.ndarray],
            observations: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Similarities of every image to "X." and to "No x." for each observation."""
    if not observations:
        empty = np.zeros((len(image), 0), dtype=np.float32)
        return empty, empty
    texts = [statement(o, True) for o in observations] + [statement(o, False)
                                                          for o in observations]
    embedded = embedding_matrix("embed_texts output", embed_texts(texts), image.shape[1])
    if len(embedded) != len(texts):
        raise ValueError(f"embed_texts returned {len(embedded)} rows for {len(texts)} texts")
    scores = image @ embedded.T
    return scores[:, :len(observations)], scores[:, len(observations):]


def _table_row(kind: str, right: np.ndarray, true_right: np.ndarray,
               adversarial_right: np.ndarray, patients: np.ndarray) -> dict[str, object]:
    estimate = proportion_estimate(right, patients)
    return {"kind": kind, "n": len(right), "adversarial_acc": estimate.value,
            "adversarial_acc_low": estimate.low, "adversarial_acc_high": estimate.high,
            "true_right": float(np.mean(true_right)) if len(right) else np.nan,
            "adversarial_right": float(np.mean(adversarial_right)) if len(right) else np.nan}


def run_adversarial(corpus: Corpus, context: Context) -> Iterator[Scored]:
    """Adversarial pairs of a manifest's scored split, drawn from its report labels."""
    headline = context.protocol.adversarial
    pairs = build_adversarial_pairs(corpus.labels, seed=context.seed)
    result = score_adversarial(corpus.images, context.embed, pairs, context.seed,
                               groups=corpus.patients, headline=headline)  # fmt: skip
    yield Scored(corpus.name, with_ids(result, corpus.ids), notes={"headline": headline})


def run_adversarial_dataset(data: ReaderData, context: Context) -> Iterator[Scored]:
    """Adversarial pairs of a reader dataset with several classes (ChestX-ray14 in the paper)
    on its test split, drawn from its labels; not on single-class datasets or 5x200."""
    if data.is_five_by_200 or len(data.classes) < 2:
        return
    test, headline = data.test, context.protocol.adversarial
    pairs = build_adversarial_pairs(data.labels[test], seed=context.seed, classes=data.classes)
    result = score_adversarial(data.images[test], context.embed, pairs, context.seed,
                               groups=data.patients[test], headline=headline)  # fmt: skip
    yield Scored(data.name, with_ids(result, data.ids[test]),
                 notes={**data.notes, "headline": headline})


TASK = Task("adversarial", on_corpus=run_adversarial, on_dataset=run_adversarial_dataset)
