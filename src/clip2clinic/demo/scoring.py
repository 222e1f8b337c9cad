"""An interim scorer of trained checkpoints on one split of a prepared manifest.

Used by the demo until ``clip2clinic evaluate`` (``clip2clinic.evaluation``) is wired in, and by
the benchmarks that chose the embedded defaults on the *validation* split. Inputs are built
once per split (:func:`load_eval_data`: images through the evaluation transform, the cached
frozen text features, the evaluation-pool negations and the prompts), then each checkpoint
costs one pass of its towers (:func:`score_model`). Every metric is a fraction with a
bootstrap 95% interval (:class:`clip2clinic.evaluation.results.Estimate`):

- ``cxr_align_a``: share of abnormal images whose model prefers their report r to r^n, the
  report with one positive finding negated, worded from the *evaluation* phrasing pool (wording
  training never sees), as the CXR-Align benchmark builds it;
- ``cxr_align_a_train_pool``: the same against the manifest's own hard negative (worded from
  the training pool; for validation and test rows the model never saw that report);
- ``cxr_align_b``: share of abnormal images preferring r to r^r (the finding removed);
- ``zeroshot_mean_auc``: mean, over the findings with positives and negatives, of the AUC of
  sim(I, "{Finding}.") − sim(I, "No {finding}.") (label 1 against 0 and blank; uncertain
  left out);
- ``retrieval_top5``: share of images whose own report is among the 5 most similar of the
  split's distinct reports;
- ``normal_detection_acc``: share of normal images that rank their own report above every
  distinct abnormal report of the split (the paper's needle-in-a-haystack, on a small hay).

Only text mode "head" (the embedded preset) is supported.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from clip2clinic.data.images import ImageLoadError, load_image
from clip2clinic.data.manifest import label_matrix, read_manifest
from clip2clinic.data.prepare.pipeline import cache_dir_for
from clip2clinic.data.transforms import EvalTransform, Normalization
from clip2clinic.evaluation.results import Estimate, bootstrap, mean_estimate
from clip2clinic.io import InputError
from clip2clinic.model import ClinicCLIP, FrozenTextEncoder
from clip2clinic.observations import CHEXPERT_CLASSES, FINDINGS
from clip2clinic.reports.negation import make_hard_negatives
from clip2clinic.training.data import open_text_cache

log = logging.getLogger(__name__)

BATCH = 64
TOP_K = 5


@dataclass
class TextInputs:
    """Frozen token features ``(N, L, H)`` (float16) and masks ``(N, L)`` of N texts."""

    features: torch.Tensor
    mask: torch.Tensor


@dataclass
class EvalData:
    """Everything the scorer feeds the towers for one split, built once.

    ``rows``: the manifest rows whose image could be read; ``pixels``: their images through
    the evaluation transform; texts: each row's ``report``, manifest ``hard_negative``
    (``negation_train``) and ``omitted``; ``negation_eval``: the evaluation-pool r^n of the
    abnormal rows (``abnormal`` mask); ``prompts_positive``/``prompts_negative``: per finding.
    ``model_key`` names the model settings the inputs were made for.
    """

    rows: pd.DataFrame
    pixels: torch.Tensor
    report: TextInputs
    negation_train: TextInputs
    omitted: TextInputs
    abnormal: np.ndarray
    negation_eval: TextInputs
    prompts_positive: TextInputs
    prompts_negative: TextInputs
    model_key: tuple


def _model_key(model: ClinicCLIP) -> tuple:
    size = model.image.backbone.config.image_size
    size = int(size if isinstance(size, int) else size[0])
    image, text = model.config.image, model.config.text
    if text.mode != "head":
        raise InputError(f"the demo scorer takes text mode 'head' models, not {text.mode!r}")
    return size, tuple(image.mean), tuple(image.std), text.source, text.max_length


def finding_prompts(finding: str) -> tuple[str, str]:
    """The positive and negative prompt of a finding: "Pleural effusion." / "No pleural
    effusion."."""
    words = finding.lower()
    return f"{words[0].upper()}{words[1:]}.", f"No {words}."


def eval_pool_negations(rows: pd.DataFrame, seed: int = 0) -> list[str]:
    """r^n of each (abnormal) row's report with the evaluation phrasing pool: the observation
    negated is drawn as ``prepare`` draws it (same seed and study id), the wording is not."""
    table = make_hard_negatives(rows["report"].tolist(), rows["study_id"].tolist(), seed=seed,
                                pool="eval", corpus_single_positive=[])
    return table["negated"].tolist()


def _load_pixels(paths: list, transform: EvalTransform) -> tuple[torch.Tensor, np.ndarray]:
    pixels, ok = [], np.zeros(len(paths), dtype=bool)
    for row, path in enumerate(paths):
        try:
            pixels.append(transform(load_image(path)))
            ok[row] = True
        except ImageLoadError as exc:
            log.warning("skipping an unreadable image (%s)", exc)
    if not pixels:
        raise InputError(f"none of the {len(paths)} images could be read")
    return torch.stack(pixels), ok


def _cached(manifest: str | os.PathLike, text_ids: list[int]) -> TextInputs:
    cache = open_text_cache(manifest, "head")
    rows = [cache.row(int(i)) for i in text_ids]
    return TextInputs(torch.stack([v for v, _ in rows]), torch.stack([m for _, m in rows]))


def load_eval_data(model: ClinicCLIP, manifest: str | os.PathLike, split: str,
                   seed: int = 0) -> EvalData:
    """Build the scorer's inputs for ``split`` of ``manifest``, for models like ``model``."""
    key = _model_key(model)
    size, mean, std, source, max_length = key
    rows = read_manifest(manifest, split=split)
    if len(rows) == 0:
        raise InputError(f"{manifest}: no rows in split {split!r}")
    cache = cache_dir_for(manifest)
    pixels, ok = _load_pixels([cache / p for p in rows["image_cache"]],
                              EvalTransform(size, Normalization(mean, std)))
    rows = rows[ok].reset_index(drop=True)
    abnormal = (rows["chosen"] != "").to_numpy()
    encoder = FrozenTextEncoder(source, max_length)
    prompts = [finding_prompts(f) for f in FINDINGS]

    def fresh(texts: list[str]) -> TextInputs:
        return TextInputs(*encoder.token_features(texts)) if texts else \
            TextInputs(torch.zeros(0, max_length, encoder.hidden_size), torch.zeros(0, max_length))

    return EvalData(
        rows=rows,
        pixels=pixels,
        report=_cached(manifest, rows["text_id"].tolist()),
        negation_train=_cached(manifest, rows["hard_negative_text_id"].tolist()),
        omitted=_cached(manifest, rows["omitted_text_id"].tolist()),
        abnormal=abnormal,
        negation_eval=fresh(eval_pool_negations(rows[abnormal], seed) if abnormal.any() else []),
        prompts_positive=fresh([p for p, _ in prompts]),
        prompts_negative=fresh([n for _, n in prompts]),
        model_key=key,
    )


@torch.inference_mode()
def _embed_texts(model: ClinicCLIP, texts: TextInputs) -> np.ndarray:
    out = np.zeros((len(texts.features), model.config.embed_dim), dtype=np.float32)
    for start in range(0, len(out), BATCH):
        mask = texts.mask[start : start + BATCH].bool()
        used = mask.any(dim=0).nonzero()
        length = int(used.max()) + 1 if len(used) else 1
        features = texts.features[start : start + BATCH, :length].float()
        out[start : start + len(mask)] = model.encode_text(features, mask[:, :length]).numpy()
    return out


@torch.inference_mode()
def _embed_images(model: ClinicCLIP, pixels: torch.Tensor) -> np.ndarray:
    return np.concatenate([model.encode_image(pixels[start : start + BATCH]).numpy()
                           for start in range(0, len(pixels), BATCH)])


def _rowwise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", a, b)


def pairwise_auc(positive: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC as the share of (positive, negative) pairs ranked right, ties counting half
    (NaN with one class); on the few hundred cases of a split, about 100x faster than
    scikit-learn's, which matters inside a bootstrap."""
    diff = scores[positive][:, None] - scores[~positive][None, :]
    if diff.size == 0:
        return float("nan")
    return float(((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size)


def _mean_class_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    values = [pairwise_auc(labels[known, k] == 1, scores[known, k])
              for k in range(labels.shape[1]) for known in [~np.isnan(labels[:, k])]]
    values = [v for v in values if not np.isnan(v)]
    return float(np.mean(values)) if values else float("nan")


def cxr_align(image: np.ndarray, texts: Mapping[str, np.ndarray], data: EvalData,
              seed: int = 0) -> dict[str, Estimate]:
    """Task A (evaluation- and training-pool negations) and Task B on the abnormal images."""
    rows, abnormal = data.rows, data.abnormal
    changed = abnormal & (rows["omitted"] != rows["report"]).to_numpy()
    own = _rowwise(image, texts["report"])
    return {
        "cxr_align_a": mean_estimate(
            own[abnormal] > _rowwise(image[abnormal], texts["negation_eval"]), seed),
        "cxr_align_b": mean_estimate((own > _rowwise(image, texts["omitted"]))[changed], seed),
        "cxr_align_a_train_pool": mean_estimate(
            (own > _rowwise(image, texts["negation_train"]))[abnormal], seed),
    }


def zeroshot(image: np.ndarray, texts: Mapping[str, np.ndarray], data: EvalData,
             seed: int = 0) -> Estimate:
    """Mean binary zero-shot AUC over the findings ("{Finding}." vs "No {finding}.")."""
    scores = image @ texts["prompts_positive"].T - image @ texts["prompts_negative"].T
    labels = label_matrix(data.rows)[:, [CHEXPERT_CLASSES.index(f) for f in FINDINGS]]
    binary = np.where(labels == 1, 1.0, 0.0)
    binary[labels == -1] = np.nan  # uncertain: neither positive nor negative
    return bootstrap(_mean_class_auc, [binary, scores], seed=seed)


def retrieval_and_normals(image: np.ndarray, report: np.ndarray, data: EvalData,
                          seed: int = 0) -> dict[str, Estimate]:
    """Image→report top-5 retrieval and normal case detection over the split's reports."""
    texts, target = np.unique(data.rows["report"].to_numpy(), return_inverse=True)
    first = pd.Series(np.arange(len(target))).groupby(target).first().to_numpy()
    scores = image @ report[first].T
    own = scores[np.arange(len(target)), target]
    rank = (scores > own[:, None]).sum(axis=1)
    abnormal_text = np.zeros(len(texts), dtype=bool)
    abnormal_text[target[data.abnormal]] = True
    beaten = (scores[:, abnormal_text] >= own[:, None]).any(axis=1)
    return {
        "retrieval_top5": mean_estimate(rank < TOP_K, seed),
        "normal_detection_acc": mean_estimate(~beaten[~data.abnormal], seed),
    }


def score_model(model: ClinicCLIP, data: EvalData, seed: int = 0) -> dict[str, Estimate]:
    """Every metric of this module for ``model`` on the inputs ``data``."""
    if _model_key(model) != data.model_key:
        raise InputError(f"the scorer's inputs were built for {data.model_key}, the model "
                         f"takes {_model_key(model)}")
    model = model.eval()
    image = _embed_images(model, data.pixels)
    names = ("report", "negation_train", "omitted", "negation_eval", "prompts_positive",
             "prompts_negative")
    texts = {name: _embed_texts(model, getattr(data, name)) for name in names}
    return {
        **cxr_align(image, texts, data, seed),
        "zeroshot_mean_auc": zeroshot(image, texts, data, seed),
        **retrieval_and_normals(image, texts["report"], data, seed),
    }
