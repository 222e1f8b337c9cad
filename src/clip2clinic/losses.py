"""The paper's dynamic soft contrastive loss (Ko & Park, CVPR 2025, Eqs. 1-10) and SoftCLIP.

Pure functions of embeddings and label vectors; ``docs/loss.md`` maps every equation to code.

Report index space: with hard negatives the N = 2B reports are ``[originals; negatives]``, else
N = B. Soft targets per stream s (t: text, c: clinical labels, g: graph) are thresholded
self-similarities of the N reports (:func:`soft_targets`); with no stream the targets are the
identity and every term is plain InfoNCE. Each direction is a row-wise
KL(target ‖ softmax(logits / τ)) averaged over rows, and the total is
Σ_directions Σ_s w_s · L_s (Eq. 10).

All embeddings are L2-normalised here again (a no-op for normalised inputs, and it keeps the
thresholds meaningful for inputs that are not), and the loss is computed in float32 with autocast
off, whatever the input dtype.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from clip2clinic.distributed import gather_batch

STREAMS = ("t", "c", "g")
"""Soft-label streams: text embeddings, clinical label vectors, graph embeddings."""

DEFAULT_TEMPERATURE = 0.1
"""Fixed logit temperature τ of the paper (App. C.4)."""

DEFAULT_THRESHOLDS: dict[str, float] = {"t": 0.98, "c": 0.9, "g": 0.9}
"""Our defaults for τ_t, τ_c, τ_g (the paper does not print its values), chosen on the phantom's
validation split (docs/loss.md, "Defaults and the sweep"). A report and its hard negative differ
in one sentence, so lower τ_t let stream t reward the hard negative; τ_g made no difference.
"""

DEFAULT_WEIGHTS: dict[str, float] = {"t": 1.0, "c": 0.25, "g": 1.0}
"""Our defaults for w_T, w_C, w_G in Eq. 10, chosen with the thresholds: a lighter clinical
stream kept more of the hard negatives' gain on CXR-Align."""

SOFTCLIP_ALPHA = 0.2
"""SoftCLIP: weight of the intra-modal self-similarity in the softened target."""

SOFTCLIP_SELF_TEMPERATURE = 0.1
"""SoftCLIP: temperature of the softmax over intra-modal self-similarities."""

SOFTCLIP_NEG_WEIGHT = 1.0
"""SoftCLIP: weight of the neg-KL term (the KL over the negatives only)."""


# --- the clinical vector (Eq. 3) ---------------------------------------------------------


CLINICAL_ENCODINGS = ("binary", "signed", "onehot")
"""How CheXpert outputs become the clinical vector C of Eq. 3 (the paper does not say;
docs/loss.md, "The clinical vector"): ``binary`` positive 1, uncertain ``uncertain``, negative
and blank 0; ``signed`` positive 1, negative −1, uncertain ``uncertain``, blank 0; ``onehot``
three indicators per observation (positive, negative, uncertain), blank all 0."""

DEFAULT_CLINICAL_ENCODING = "onehot"
"""Chosen on the phantom's validation split (``n_dt_c``, 3 seeds; docs/loss.md): ``onehot`` and
``signed`` lifted CXR-Align Task A by about 10 points over ``binary``."""


def clinical_vectors(labels: np.ndarray, uncertain: float,
                     encoding: str = DEFAULT_CLINICAL_ENCODING) -> np.ndarray:
    """CheXpert label rows (1 positive, 0 negative, -1 uncertain, NaN not mentioned) as the
    clinical vectors of stream c, in one of :data:`CLINICAL_ENCODINGS` (N×14, or N×42 for
    ``onehot``: the positive, negative and uncertain indicators side by side)."""
    if encoding == "onehot":
        return np.concatenate([labels == 1, labels == 0, labels == -1], axis=1).astype(np.float32)
    if encoding not in CLINICAL_ENCODINGS:
        raise ValueError(f"unknown clinical encoding {encoding!r}; use {CLINICAL_ENCODINGS}")
    vectors = np.zeros(labels.shape, dtype=np.float32)
    vectors[labels == 1] = 1.0
    vectors[labels == -1] = uncertain
    if encoding == "signed":
        vectors[labels == 0] = -1.0
    return vectors


# --- soft targets (Eqs. 3-5, 8-9) -------------------------------------------------------------


IMAGE_GRAPH_COLUMNS = ("all", "originals")
"""Columns of the image→graph logits: all N graphs (as image→text, Eq. 1) or the B originals'
graphs only (reading "as in Eq. 2" for the graph-related logits); docs/loss.md."""


def soft_targets(features: Tensor, threshold: float, exclude: Tensor | None = None) -> Tensor:
    """Row-normalised thresholded self-similarity ŷ of N items (Eqs. 3-5, 8-9).

    ``S = X Xᵀ`` with X the L2-normalised, detached rows of ``features`` (an all-zero row stays
    zero); ``y = (S − τ)/(1 − τ)`` where ``S > τ`` else 0; entries where the boolean N×N
    ``exclude`` is true are 0; the diagonal is 1 by definition; rows are normalised to sum 1.
    With ``threshold >= 1`` the targets are the identity.
    """
    x = F.normalize(features.detach().float(), dim=-1)
    sim = (x @ x.T).clamp(-1.0, 1.0)
    if threshold >= 1.0:
        y = torch.zeros_like(sim)
    else:
        y = torch.where(sim > threshold, (sim - threshold) / (1.0 - threshold), 0.0)
    if exclude is not None:
        y = y.masked_fill(exclude, 0.0)
    y.fill_diagonal_(1.0)
    return y / y.sum(dim=-1, keepdim=True)


def own_negation_pairs(batch: int, device: torch.device | str = "cpu") -> Tensor:
    """The 2B×2B boolean mask of (report, its own hard negative) pairs, both ways, in the
    report index order [originals; negatives]."""
    mask = torch.zeros(2 * batch, 2 * batch, dtype=torch.bool, device=device)
    index = torch.arange(batch, device=device)
    mask[index, index + batch] = True
    mask[index + batch, index] = True
    return mask


def _renormalise_rows(target: Tensor) -> Tensor:
    return target / target.sum(dim=-1, keepdim=True)


def _mean_row_kl(target: Tensor, log_p: Tensor) -> Tensor:
    """Mean over rows of KL(target ‖ p) given log p, with 0·log 0 = 0 (Eqs. 6-7)."""
    return (torch.special.xlogy(target, target) - target * log_p).sum(dim=-1).mean()


class _MixedTarget(NamedTuple):
    """One block of the weighted stream targets: Σ_s w_s ŷ_s and Σ_s w_s · mean_i Σ_j ŷ log ŷ."""

    weighted: Tensor
    neg_entropy: Tensor


def _mix(targets: list[tuple[float, Tensor]]) -> _MixedTarget:
    weighted = sum(weight * target for weight, target in targets)
    neg_entropy = sum(weight * torch.special.xlogy(target, target).sum(dim=-1).mean()
                      for weight, target in targets)
    return _MixedTarget(weighted, neg_entropy)


def _weighted_kl(target: _MixedTarget, logits: Tensor) -> Tensor:
    """Σ_s w_s · mean-row KL(ŷ_s ‖ softmax(logits)), one term of Eq. 10.

    KL is linear in its target's cross-entropy part, so the sum over streams is computed once:
    Σ_s w_s KL(ŷ_s ‖ p) = Σ_s w_s Σ ŷ_s log ŷ_s − (Σ_s w_s ŷ_s) · log p.
    """
    return target.neg_entropy - (target.weighted * logits.log_softmax(dim=-1)).sum(dim=-1).mean()


# --- input checks ------------------------------------------------------------------------------


def _check_matrix(name: str, tensor: object, rows: int | None = None) -> Tensor:
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
    if tensor.dim() != 2 or tensor.shape[0] == 0 or tensor.shape[1] == 0:
        raise ValueError(f"{name} must be a non-empty 2-D tensor (batch, dim), got shape "
                         f"{tuple(tensor.shape)}")
    if rows is not None and tensor.shape[0] != rows:
        raise ValueError(f"{name} has {tensor.shape[0]} rows but image has {rows}")
    return tensor


def _check_same_shape(name: str, tensor: Tensor, like_name: str, like: Tensor) -> None:
    if tensor.shape != like.shape:
        raise ValueError(f"{name} has shape {tuple(tensor.shape)} but {like_name} has shape "
                         f"{tuple(like.shape)}; they must match")


def _check_streams(streams: Iterable[str]) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(streams))
    unknown = [s for s in chosen if s not in STREAMS]
    if unknown:
        raise ValueError(f"unknown stream(s) {unknown}; streams are a subset of {STREAMS}")
    return chosen


def _merge_defaults(name: str, given: Mapping[str, float] | None, defaults: dict[str, float],
                    low: float, high: float) -> dict[str, float]:
    merged = dict(defaults)
    for key, value in (given or {}).items():
        if key not in STREAMS:
            raise ValueError(f"{name} has unknown stream key {key!r}; keys are {STREAMS}")
        if not (isinstance(value, (int, float)) and math.isfinite(value) and low <= value <= high):
            raise ValueError(f"{name}[{key!r}] = {value!r} must be a number in [{low}, {high}]")
        merged[key] = float(value)
    return merged


def _check_positive(name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive number, got {value!r}")


def _check_temperature(value: float | Tensor) -> None:
    """A positive number, or a positive finite scalar tensor (a learned temperature)."""
    if isinstance(value, Tensor):
        if value.numel() != 1 or not (math.isfinite(float(value)) and float(value) > 0):
            raise ValueError(f"temperature must be a positive finite scalar, got {value!r}")
        return
    _check_positive("temperature", value)


def _check_clinic_inputs(image, text, text_neg, graph, graph_neg, clinical, clinical_neg,
                         streams, temperature) -> tuple[str, ...]:
    """Validate the arguments of :func:`clinic_loss`; return the streams as a tuple."""
    image = _check_matrix("image", image)
    _check_same_shape("text", _check_matrix("text", text), "image", image)
    for name, tensor in (("text_neg", text_neg), ("graph", graph), ("graph_neg", graph_neg)):
        if tensor is not None:
            _check_same_shape(name, _check_matrix(name, tensor), "image", image)
    if clinical is not None:
        _check_matrix("clinical", clinical, rows=image.shape[0])
    if clinical_neg is not None:
        if clinical is None:
            raise ValueError("clinical_neg is given without clinical")
        _check_same_shape("clinical_neg", _check_matrix("clinical_neg", clinical_neg),
                          "clinical", clinical)
    for name, tensor in (("graph_neg", graph_neg), ("clinical_neg", clinical_neg)):
        if tensor is not None and text_neg is None:
            raise ValueError(f"{name} is given without text_neg (the hard-negative reports)")
    if graph_neg is not None and graph is None:
        raise ValueError("graph_neg is given without graph")
    if graph is not None and text_neg is not None and graph_neg is None:
        raise ValueError("graph_neg is required when graph and text_neg are given "
                         "(every report, original or negative, needs its graph)")
    streams = _check_streams(streams)
    if "c" in streams and clinical is None:
        raise ValueError("stream 'c' needs clinical (the B×14 label vectors)")
    if "c" in streams and text_neg is not None and clinical_neg is None:
        raise ValueError("stream 'c' with text_neg needs clinical_neg (the negatives' labels)")
    if "g" in streams and graph is None:
        raise ValueError("stream 'g' needs graph (the graph embeddings)")
    _check_temperature(temperature)
    devices = {t.device for t in (image, text, text_neg, graph, graph_neg, clinical, clinical_neg)
               if t is not None}
    if len(devices) > 1:
        raise ValueError(f"all tensors must be on one device, got {sorted(map(str, devices))}")
    return streams


def _stack(originals: Tensor | None, negatives: Tensor | None) -> Tensor | None:
    """Reports in the index order [originals; negatives]."""
    if originals is None or negatives is None:
        return originals
    return torch.cat([originals, negatives])


# --- the paper's loss (Eqs. 1, 2, 6, 7, 10) ---------------------------------------------------


def clinic_loss_terms(
    image: Tensor,
    text: Tensor,
    text_neg: Tensor | None = None,
    graph: Tensor | None = None,
    graph_neg: Tensor | None = None,
    clinical: Tensor | None = None,
    clinical_neg: Tensor | None = None,
    streams: Iterable[str] = (),
    thresholds: Mapping[str, float] | None = None,
    weights: Mapping[str, float] | None = None,
    temperature: float | Tensor = DEFAULT_TEMPERATURE,
    *,
    image_graph: str = "all",
    zero_own_negation: bool = False,
) -> dict[str, Tensor]:
    """The terms of :func:`clinic_loss`, one per direction, each Σ_s w_s · L_s.

    Keys: ``i2t``, ``t2i`` and, with a graph, ``i2g``, ``g2i``, ``t2g``, ``g2t``
    (i: image, t: text, g: graph; ``a2b`` has rows a and columns b). Their sum is the loss.
    Two open readings of the paper (docs/loss.md): ``image_graph`` ("all": image→graph logits
    over all N graphs, as image→text; "originals": over the B originals' graphs, target
    ŷ[:B, :B] renormalised) and ``zero_own_negation`` (a labelled deviation, off by default:
    no soft target between a report and its own hard negative). ``temperature`` may be a
    learned scalar tensor.
    """
    streams = _check_clinic_inputs(image, text, text_neg, graph, graph_neg, clinical,
                                   clinical_neg, streams, temperature)
    if image_graph not in IMAGE_GRAPH_COLUMNS:
        raise ValueError(f"image_graph must be one of {IMAGE_GRAPH_COLUMNS}, got {image_graph!r}")
    thresholds = _merge_defaults("thresholds", thresholds, DEFAULT_THRESHOLDS, -1.0, 1.0)
    weights = _merge_defaults("weights", weights, DEFAULT_WEIGHTS, 0.0, math.inf)
    batch = image.shape[0]
    with torch.autocast(device_type=image.device.type, enabled=False):
        image = F.normalize(image.float(), dim=-1)
        reports = F.normalize(_stack(text, text_neg).float(), dim=-1)
        graphs = None if graph is None else F.normalize(_stack(graph, graph_neg).float(), dim=-1)
        sources = {"t": reports, "c": _stack(clinical, clinical_neg), "g": graphs}
        exclude = (own_negation_pairs(batch, image.device)
                   if zero_own_negation and text_neg is not None else None)
        if streams:
            targets = [(weights[s], soft_targets(sources[s], thresholds[s], exclude))
                       for s in streams]
        else:  # InfoNCE: the identity target makes each KL a cross-entropy
            targets = [(1.0, torch.eye(reports.shape[0], device=reports.device))]
        vs_all = _mix([(w, y[:batch]) for w, y in targets])  # rows ŷ[:B, :N], Eq. 1
        # ŷ[:B, :B] renormalised, Eq. 2
        vs_originals = _mix([(w, _renormalise_rows(y[:batch, :batch])) for w, y in targets])
        vs_reports = _mix(targets)  # all of ŷ, N × N

        terms = {
            "i2t": _weighted_kl(vs_all, image @ reports.T / temperature),
            "t2i": _weighted_kl(vs_originals, reports[:batch] @ image.T / temperature),
        }
        if graphs is not None:
            text_graph = reports @ graphs.T / temperature
            if image_graph == "all":
                terms["i2g"] = _weighted_kl(vs_all, image @ graphs.T / temperature)
            else:
                terms["i2g"] = _weighted_kl(vs_originals, image @ graphs[:batch].T / temperature)
            terms["g2i"] = _weighted_kl(vs_originals, graphs[:batch] @ image.T / temperature)
            terms["t2g"] = _weighted_kl(vs_reports, text_graph)
            terms["g2t"] = _weighted_kl(vs_reports, text_graph.T)
    return terms


def clinic_loss(
    image: Tensor,
    text: Tensor,
    text_neg: Tensor | None = None,
    graph: Tensor | None = None,
    graph_neg: Tensor | None = None,
    clinical: Tensor | None = None,
    clinical_neg: Tensor | None = None,
    streams: Iterable[str] = (),
    thresholds: Mapping[str, float] | None = None,
    weights: Mapping[str, float] | None = None,
    temperature: float = DEFAULT_TEMPERATURE,
) -> Tensor:
    """Total dynamic soft contrastive loss of the paper (Eq. 10), a scalar.

    ``image``, ``text`` (B×D) and the optional ``text_neg`` (hard-negative reports), ``graph``,
    ``graph_neg`` (B×D) are embeddings; ``clinical``, ``clinical_neg`` (B×K, K = 14 CheXpert
    observations) are label vectors. ``streams`` is a subset of ``("t", "c", "g")``;
    ``thresholds`` and ``weights`` are dicts keyed by stream, missing keys falling back to
    :data:`DEFAULT_THRESHOLDS` and :data:`DEFAULT_WEIGHTS`. Raises ``ValueError`` naming the
    argument at fault.
    """
    terms = clinic_loss_terms(image, text, text_neg, graph, graph_neg, clinical, clinical_neg,
                              streams, thresholds, weights, temperature)
    return torch.stack(list(terms.values())).sum()


# --- SoftCLIP baseline (Gao et al., AAAI 2024) -------------------------------------------------


def _neg_kl(self_similarity: Tensor, logits: Tensor) -> Tensor:
    """Mean-row KL between target and prediction restricted to the negatives (the neg-KL).

    The diagonal (the positive) is removed from both distributions and each is renormalised over
    the B − 1 negatives, so the term is blind to how much mass the positive gets.
    """
    batch = logits.shape[0]
    off_diagonal = ~torch.eye(batch, dtype=torch.bool, device=logits.device)
    target = _renormalise_rows(self_similarity[off_diagonal].view(batch, batch - 1))
    return _mean_row_kl(target, logits[off_diagonal].view(batch, batch - 1).log_softmax(dim=-1))


def softclip_loss(
    image: Tensor,
    text: Tensor,
    temperature: float | Tensor = DEFAULT_TEMPERATURE,
    alpha: float = SOFTCLIP_ALPHA,
    self_temperature: float = SOFTCLIP_SELF_TEMPERATURE,
    neg_weight: float = SOFTCLIP_NEG_WEIGHT,
) -> Tensor:
    """SoftCLIP: soft cross-modal alignment from intra-modal self-similarity, a scalar.

    Q_I = softmax(I Iᵀ / τ_self), Q_T = softmax(T Tᵀ / τ_self) from the detached embeddings;
    softened targets (1 − α)·Id + α·Q_I for image→text and (1 − α)·Id + α·Q_T for text→image;
    loss = Σ_directions [KL(target ‖ p) + neg_weight · neg-KL(Q ‖ p)], where neg-KL compares
    the two distributions over the negatives only. α = 0 and neg_weight = 0 give InfoNCE. The
    original uses region features and object tags for Q; here the towers' own embeddings stand
    in (see docs/loss.md).
    """
    image = _check_matrix("image", image)
    _check_same_shape("text", _check_matrix("text", text), "image", image)
    _check_temperature(temperature)
    _check_positive("self_temperature", self_temperature)
    if not (isinstance(alpha, (int, float)) and 0.0 <= alpha <= 1.0):
        raise ValueError(f"alpha must be a number in [0, 1], got {alpha!r}")
    if not (isinstance(neg_weight, (int, float)) and math.isfinite(neg_weight) and neg_weight >= 0):
        raise ValueError(f"neg_weight must be a non-negative number, got {neg_weight!r}")
    batch = image.shape[0]
    with torch.autocast(device_type=image.device.type, enabled=False):
        image = F.normalize(image.float(), dim=-1)
        text = F.normalize(text.float(), dim=-1)
        logits = image @ text.T / temperature
        eye = torch.eye(batch, device=image.device)
        loss = image.new_zeros(())
        for rows, logit_rows in ((image, logits), (text, logits.T)):
            similar = (rows.detach() @ rows.detach().T / self_temperature).softmax(dim=-1)
            soft_target = (1.0 - alpha) * eye + alpha * similar
            loss = loss + _mean_row_kl(soft_target, logit_rows.log_softmax(dim=-1))
            if neg_weight > 0 and batch > 1:
                loss = loss + neg_weight * _neg_kl(similar, logit_rows)
    return loss


# --- distributed wrappers -----------------------------------------------------------------------


def clinic_loss_distributed(
    image: Tensor,
    text: Tensor,
    text_neg: Tensor | None = None,
    graph: Tensor | None = None,
    graph_neg: Tensor | None = None,
    clinical: Tensor | None = None,
    clinical_neg: Tensor | None = None,
    streams: Iterable[str] = (),
    thresholds: Mapping[str, float] | None = None,
    weights: Mapping[str, float] | None = None,
    temperature: float | Tensor = DEFAULT_TEMPERATURE,
    **options: Any,
) -> Tensor:
    """:func:`clinic_loss` over the global batch of all data-parallel ranks; ``options`` are
    :func:`clinic_loss_terms`' keyword-only readings.

    Every rank returns the same global loss; with DDP's gradient averaging the optimiser sees the
    single-process gradient on the concatenated batch (see :mod:`clip2clinic.distributed`).
    Without an initialised process group it equals :func:`clinic_loss`.
    """
    streams = _check_clinic_inputs(image, text, text_neg, graph, graph_neg, clinical,
                                   clinical_neg, streams, temperature)
    batch = gather_batch(image=image, text=text, text_neg=text_neg, graph=graph,
                         graph_neg=graph_neg, clinical=clinical, clinical_neg=clinical_neg)
    terms = clinic_loss_terms(**batch, streams=streams, thresholds=thresholds, weights=weights,
                              temperature=temperature, **options)
    return torch.stack(list(terms.values())).sum()


def softclip_loss_distributed(image: Tensor, text: Tensor, **options: float) -> Tensor:
    """:func:`softclip_loss` over the global batch of all ranks (same convention as above)."""
    _check_same_shape("text", _check_matrix("text", text), "image", _check_matrix("image", image))
    batch = gather_batch(image=image, text=text)
    return softclip_loss(batch["image"], batch["text"], **options)
