"""The paper's loss (Eqs. 1-10) and SoftCLIP against hand computations and a loop reference.

The reference below is written from the paper's equations with plain Python loops over
double-precision floats, independently of the vectorised torch code under test.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from clip2clinic.losses import (
    DEFAULT_THRESHOLDS,
    DEFAULT_WEIGHTS,
    clinic_loss,
    clinic_loss_distributed,
    clinic_loss_terms,
    clinical_vectors,
    own_negation_pairs,
    soft_targets,
    softclip_loss,
    softclip_loss_distributed,
)

VARIANTS = {  # name: (hard negatives, graph, streams), as in DESIGN.md
    "baseline": (False, False, ()),
    "dt": (False, False, ("t",)),
    "dt_c": (False, False, ("t", "c")),
    "n": (True, False, ()),
    "n_dt_c": (True, False, ("t", "c")),
    "g": (False, True, ()),
    "g_dtcg": (False, True, ("t", "c", "g")),
    "n_g_dtcg": (True, True, ("t", "c", "g")),
}


# --- an independent reference: loops over Python floats -----------------------------------------


def ref_unit(rows):
    out = []
    for row in rows:
        norm = math.sqrt(sum(v * v for v in row))
        out.append([v / norm for v in row] if norm > 0 else [0.0 for _ in row])
    return out


def ref_dot(a, b):
    return sum(x * y for x, y in zip(a, b, strict=True))


def ref_soft_targets(rows, tau, excluded=()):
    """Eqs. 3-5: thresholded, rescaled similarity, diagonal 1, rows summing to 1; the (i, j)
    pairs in ``excluded`` get no target."""
    x = ref_unit(rows)
    n = len(x)
    y = [[0.0] * n for _ in range(n)]
    for i in range(n):
        for j in range(n):
            s = min(1.0, ref_dot(x[i], x[j]))
            if i == j:
                y[i][j] = 1.0
            elif s > tau and (i, j) not in excluded:
                y[i][j] = (s - tau) / (1 - tau)
        total = sum(y[i])
        y[i] = [v / total for v in y[i]]
    return y


def ref_mean_kl(targets, logits):
    """Mean over rows of KL(q ‖ softmax(l)), skipping q = 0 entries (0·log 0 = 0)."""
    total = 0.0
    for q, row in zip(targets, logits, strict=True):
        top = max(row)
        log_z = top + math.log(sum(math.exp(v - top) for v in row))
        total += sum(qj * (math.log(qj) - (lj - log_z)) for qj, lj in zip(q, row, strict=True)
                     if qj > 0)
    return total / len(targets)


def ref_logits(rows, cols, tau):
    a, b = ref_unit(rows), ref_unit(cols)
    return [[ref_dot(r, c) / tau for c in b] for r in a]


def ref_clinic_loss(image, text, text_neg=None, graph=None, graph_neg=None, clinical=None,
                    clinical_neg=None, streams=(), thresholds=None, weights=None, tau=0.1,
                    image_graph="all", zero_own_negation=False):
    th = {**DEFAULT_THRESHOLDS, **(thresholds or {})}
    w = {**DEFAULT_WEIGHTS, **(weights or {})}
    b = len(image)
    reports = text + (text_neg or [])
    graphs = None if graph is None else graph + (graph_neg or [])
    n = len(reports)
    source = {"t": reports, "c": None if clinical is None else clinical + (clinical_neg or []),
              "g": graphs}
    own = ({(i, i + b) for i in range(b)} | {(i + b, i) for i in range(b)}
           if zero_own_negation and text_neg else set())
    if streams:
        targets = [(w[s], ref_soft_targets(source[s], th[s], own)) for s in streams]
    else:
        targets = [(1.0, [[1.0 if i == j else 0.0 for j in range(n)] for i in range(n)])]

    def first_rows(y):  # ŷ[:B, :N]
        return y[:b]

    def originals(y):  # ŷ[:B, :B] renormalised
        return [[v / sum(row[:b]) for v in row[:b]] for row in y[:b]]

    def term(logits, pick):
        return sum(weight * ref_mean_kl(pick(y), logits) for weight, y in targets)

    loss = term(ref_logits(image, reports, tau), first_rows)
    loss += term(ref_logits(text, image, tau), originals)
    if graphs is not None:
        if image_graph == "all":
            loss += term(ref_logits(image, graphs, tau), first_rows)
        else:  # the B originals' graphs only, as Eq. 2
            loss += term(ref_logits(image, graph, tau), originals)
        loss += term(ref_logits(graph, image, tau), originals)
        loss += term(ref_logits(reports, graphs, tau), lambda y: y)
        loss += term(ref_logits(graphs, reports, tau), lambda y: y)
    return loss


def ref_softclip(image, text, tau, alpha, self_tau, neg_weight):
    b = len(image)
    logits_it = ref_logits(image, text, tau)
    logits_ti = ref_logits(text, image, tau)
    loss = 0.0
    for own, logits in ((image, logits_it), (text, logits_ti)):
        sim = ref_logits(own, own, self_tau)
        q = []
        for row in sim:
            z = sum(math.exp(v) for v in row)
            q.append([math.exp(v) / z for v in row])
        soft = [[(1 - alpha) * (i == j) + alpha * q[i][j] for j in range(b)] for i in range(b)]
        loss += ref_mean_kl(soft, logits)
        neg_q = []
        neg_l = []
        for i in range(b):
            others = [q[i][j] for j in range(b) if j != i]
            neg_q.append([v / sum(others) for v in others])
            neg_l.append([logits[i][j] for j in range(b) if j != i])
        loss += neg_weight * ref_mean_kl(neg_q, neg_l)
    return loss


# --- fixtures -----------------------------------------------------------------------------------


def unit(x: torch.Tensor) -> torch.Tensor:
    return F.normalize(x, dim=-1)


def make_batch(batch=3, dim=6, seed=0, correlated=True):
    """Embeddings with shared structure (so soft labels are non-trivial) and label vectors."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(batch, dim, generator=g)
    shared = torch.randn(1, dim, generator=g) * (1.5 if correlated else 0.0)

    def noisy(scale):
        return unit(base + shared + scale * torch.randn(batch, dim, generator=g))

    labels = (torch.rand(batch, 14, generator=g) > 0.6).float()
    labels_neg = labels.clone()
    labels_neg[:, 0] = 1 - labels_neg[:, 0]
    return {
        "image": noisy(0.5), "text": noisy(0.3), "text_neg": noisy(0.6),
        "graph": noisy(0.4), "graph_neg": noisy(0.7),
        "clinical": labels, "clinical_neg": labels_neg,
    }


def variant_inputs(data, negatives, graph):
    keys = ["image", "text", "clinical"]
    keys += ["text_neg", "clinical_neg"] if negatives else []
    keys += ["graph"] if graph else []
    keys += ["graph_neg"] if graph and negatives else []
    return {k: data[k] for k in keys}


def as_lists(inputs):
    return {k: v.double().tolist() for k, v in inputs.items()}


# --- hand-computed cases ------------------------------------------------------------------------


def test_two_perfect_pairs_give_hand_computed_infonce():
    e = torch.eye(2)
    # logits/τ are 10 on the diagonal, 0 elsewhere: each row's loss is log(1 + e^-10)
    expected = 2 * math.log(1 + math.exp(-10))
    assert clinic_loss(e, e).item() == pytest.approx(expected, abs=1e-6)  # float32 near 10


def test_hard_negative_equal_to_the_positive_halves_its_probability():
    e = torch.eye(2)
    swapped = e.flip(0)  # the negative of report 0 equals report 1 and vice versa
    # image→text rows see logits [10, 0, 0, 10]: -log(e^10 / (2 e^10 + 2)) = log(2 + 2 e^-10)
    expected = math.log(2 + 2 * math.exp(-10)) + math.log(1 + math.exp(-10))
    assert clinic_loss(e, e, text_neg=swapped).item() == pytest.approx(expected, rel=1e-5)


def test_text_soft_labels_hand_computed():
    cos = 0.95
    text = torch.tensor([[1.0, 0.0], [cos, math.sqrt(1 - cos**2)]])
    # S12 = 0.95 > τ_t = 0.9: y12 = 0.05 / 0.1 = 0.5, rows [2/3, 1/3] and [1/3, 2/3]
    q = [2 / 3, 1 / 3]
    p0 = 1 / (1 + math.exp(-0.5))  # softmax of logits [10, 9.5]
    kl = q[0] * math.log(q[0] / p0) + q[1] * math.log(q[1] / (1 - p0))
    loss = clinic_loss(text, text, streams=("t",), thresholds={"t": 0.9})
    assert loss.item() == pytest.approx(2 * kl, rel=1e-4)  # both rows give kl; 2 directions
    targets = soft_targets(text, 0.9)
    assert torch.allclose(targets, torch.tensor([[2 / 3, 1 / 3], [1 / 3, 2 / 3]]))


# --- against the loop reference -----------------------------------------------------------------


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_matches_loop_reference(variant):
    negatives, graph, streams = VARIANTS[variant]
    inputs = variant_inputs(make_batch(), negatives, graph)
    thresholds = {"t": 0.3, "c": 0.2, "g": 0.25}
    weights = {"t": 0.5, "c": 2.0, "g": 1.5}
    lists = as_lists(inputs)
    for s in streams:  # the case must exercise soft labels, not only the diagonal
        source = {"t": lists["text"], "c": lists["clinical"], "g": lists.get("graph")}[s]
        y = ref_soft_targets(source, thresholds[s])
        assert any(y[i][j] > 0 for i in range(len(y)) for j in range(len(y)) if i != j)
    expected = ref_clinic_loss(**lists, streams=streams, thresholds=thresholds, weights=weights)
    got = clinic_loss(**inputs, streams=streams, thresholds=thresholds, weights=weights)
    assert got.item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("image_graph", ["all", "originals"])
@pytest.mark.parametrize("zero_own_negation", [False, True])
def test_open_readings_match_loop_reference(image_graph, zero_own_negation):
    inputs = make_batch()
    streams, thresholds = ("t", "c", "g"), {"t": 0.3, "c": 0.2, "g": 0.25}
    expected = ref_clinic_loss(**as_lists(inputs), streams=streams, thresholds=thresholds,
                               image_graph=image_graph, zero_own_negation=zero_own_negation)
    terms = clinic_loss_terms(**inputs, streams=streams, thresholds=thresholds,
                              image_graph=image_graph, zero_own_negation=zero_own_negation)
    assert torch.stack(list(terms.values())).sum().item() == pytest.approx(expected, rel=1e-5)
    default = clinic_loss_terms(**inputs, streams=streams, thresholds=thresholds)
    # each reading changes the loss: the image→graph term, or every soft term
    assert (terms["i2g"] != default["i2g"]) == (image_graph == "originals" or zero_own_negation)
    assert torch.allclose(terms["t2i"], default["t2i"])  # Eq. 2 never sees the negatives


def test_zero_own_negation_removes_only_the_pair_targets():
    text = unit(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    negatives = unit(torch.tensor([[1.0, 0.05], [0.05, 1.0]]))  # each near its own report
    reports = torch.cat([text, negatives])
    plain = soft_targets(reports, 0.9)
    zeroed = soft_targets(reports, 0.9, own_negation_pairs(2))
    assert plain[0, 2] > 0 and plain[2, 0] > 0
    assert zeroed[0, 2] == 0 and zeroed[2, 0] == 0 and zeroed[1, 3] == 0
    assert torch.allclose(zeroed, torch.eye(4))


def test_a_learned_temperature_tensor_is_accepted_and_gets_a_gradient():
    inputs = make_batch()
    log_t = torch.tensor(math.log(0.1), requires_grad=True)
    loss = clinic_loss(**inputs, streams=("t", "c"), temperature=log_t.exp())
    assert loss.item() == pytest.approx(clinic_loss(**inputs, streams=("t", "c")).item(),
                                        rel=1e-6)
    loss.backward()
    assert log_t.grad is not None and log_t.grad != 0
    assert softclip_loss(inputs["image"], inputs["text"], temperature=log_t.exp()).item() > 0
    for bad in (torch.tensor(-0.1), torch.tensor(float("nan")), torch.ones(2)):
        with pytest.raises(ValueError, match="temperature"):
            clinic_loss(**inputs, temperature=bad)


def test_terms_are_the_six_directions_and_sum_to_the_loss():
    inputs = make_batch()
    terms = clinic_loss_terms(**inputs, streams=("t", "c", "g"))
    assert list(terms) == ["i2t", "t2i", "i2g", "g2i", "t2g", "g2t"]
    total = clinic_loss(**inputs, streams=("t", "c", "g"))
    assert torch.stack(list(terms.values())).sum().item() == pytest.approx(total.item())
    assert list(clinic_loss_terms(inputs["image"], inputs["text"])) == ["i2t", "t2i"]


def test_no_streams_is_cross_entropy_in_every_direction():
    d = make_batch(batch=5, dim=8, seed=3)
    tau = 0.1
    labels = torch.arange(5)
    reports = torch.cat([d["text"], d["text_neg"]])
    graphs = torch.cat([d["graph"], d["graph_neg"]])
    ce = F.cross_entropy
    expected = (ce(d["image"] @ reports.T / tau, labels)
                + ce(d["text"] @ d["image"].T / tau, labels)
                + ce(d["image"] @ graphs.T / tau, labels)
                + ce(d["graph"] @ d["image"].T / tau, labels)
                + ce(reports @ graphs.T / tau, torch.arange(10))
                + ce(graphs @ reports.T / tau, torch.arange(10)))
    got = clinic_loss(d["image"], d["text"], d["text_neg"], d["graph"], d["graph_neg"])
    assert got.item() == pytest.approx(expected.item(), rel=1e-5)
    plain = ce(d["image"] @ d["text"].T / tau, labels) + ce(d["text"] @ d["image"].T / tau, labels)
    assert clinic_loss(d["image"], d["text"]).item() == pytest.approx(plain.item(), rel=1e-5)


# --- soft-target properties ---------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 9), dim=st.integers(1, 6), tau=st.floats(-0.9, 0.99),
       seed=st.integers(0, 10_000), binary=st.booleans())
def test_soft_targets_are_distributions_with_dominant_diagonal(n, dim, tau, seed, binary):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dim, generator=g)
    if binary:  # label-like vectors, some of them all-zero
        x = (x > 0.5).float()
    y = soft_targets(x, tau)
    assert torch.isfinite(y).all() and (y >= 0).all()
    assert torch.allclose(y.sum(dim=1), torch.ones(n), atol=1e-5)
    assert (y.diagonal().unsqueeze(1) >= y - 1e-6).all()  # the diagonal is each row's maximum
    assert torch.equal(y > 0, (y > 0).T)  # who shares labels with whom is symmetric


def test_zero_clinical_vectors_stay_zero_and_keep_their_own_label():
    clinical = torch.zeros(4, 14)
    clinical[0, 3] = clinical[1, 3] = 1.0  # two identical label sets; rows 2, 3 all zero
    y = soft_targets(clinical, 0.5)
    assert torch.isfinite(y).all()
    assert torch.allclose(y[0], torch.tensor([0.5, 0.5, 0.0, 0.0]))
    assert torch.equal(y[2:], torch.eye(4)[2:])  # empty vectors share with nobody
    d = make_batch(batch=4)
    image = d["image"].clone().requires_grad_()
    loss = clinic_loss(image, d["text"], clinical=clinical, streams=("c",))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(image.grad).all()


def test_duplicate_reports_share_labels_fully():
    text = unit(torch.randn(3, 5, generator=torch.Generator().manual_seed(1)))
    text = torch.cat([text, text[:1]])  # report 3 duplicates report 0
    y = soft_targets(text, 0.9)
    assert y[0, 3].item() == pytest.approx(y[0, 0].item())
    assert y[3, 0].item() == pytest.approx(y[3, 3].item())


def test_threshold_one_collapses_to_identity_and_infonce():
    d = make_batch(batch=4)
    dup = torch.cat([d["text"][:3], d["text"][:1]])  # even exact duplicates stay apart
    assert torch.equal(soft_targets(dup, 1.0), torch.eye(4))
    ones = {"t": 1.0, "c": 1.0, "g": 1.0}
    weights = {"t": 0.5, "c": 1.0, "g": 2.0}
    soft = clinic_loss(**d, streams=("t", "c", "g"), thresholds=ones, weights=weights)
    infonce = clinic_loss(**d)
    assert soft.item() == pytest.approx(3.5 * infonce.item(), rel=1e-5)


# --- gradients ----------------------------------------------------------------------------------


def test_gradient_flows_to_embeddings_but_not_through_the_targets():
    d = make_batch(batch=4, dim=6, seed=5)
    th = {"t": 0.2, "g": 0.2}
    leaves = {k: d[k].clone().requires_grad_() for k in ("image", "text", "graph")}
    loss = clinic_loss(**leaves, streams=("t", "g"), thresholds=th)
    loss.backward()
    for name, leaf in leaves.items():
        assert leaf.grad is not None and leaf.grad.abs().sum() > 0, name

    # The same loss with the targets built beforehand as constants: equal gradients mean the
    # loss sends no gradient through the soft targets.
    ref = {k: d[k].clone().requires_grad_() for k in ("image", "text", "graph")}
    y_t, y_g = soft_targets(d["text"], 0.2), soft_targets(d["graph"], 0.2)
    i, t, g = (unit(ref[k]) for k in ("image", "text", "graph"))

    def kl(target, logits):
        log_p = logits.log_softmax(-1)
        return (torch.special.xlogy(target, target) - target * log_p).sum(-1).mean()

    manual = sum(kl(y, i @ t.T / 0.1) + kl(y, t @ i.T / 0.1) + kl(y, i @ g.T / 0.1)
                 + kl(y, g @ i.T / 0.1) + kl(y, t @ g.T / 0.1) + kl(y, g @ t.T / 0.1)
                 for y in (y_t, y_g))
    manual.backward()
    assert manual.item() == pytest.approx(loss.item(), rel=1e-5)
    for name in leaves:
        assert torch.allclose(leaves[name].grad, ref[name].grad, atol=1e-5), name
    assert not soft_targets(leaves["text"], 0.2).requires_grad


def test_hard_negatives_change_image_to_text_but_not_text_to_image():
    d = make_batch(batch=4, seed=2)
    common = {"streams": ("t", "c"), "thresholds": {"t": 0.2, "c": 0.2}}
    without = clinic_loss_terms(d["image"], d["text"], clinical=d["clinical"], **common)
    with_neg = clinic_loss_terms(d["image"], d["text"], d["text_neg"], clinical=d["clinical"],
                                 clinical_neg=d["clinical_neg"], **common)
    assert with_neg["i2t"].item() != pytest.approx(without["i2t"].item(), rel=1e-3)
    assert with_neg["t2i"].item() == pytest.approx(without["t2i"].item(), rel=1e-6)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_aligned_pairs_cost_less_than_shuffled(variant):
    negatives, graph, streams = VARIANTS[variant]
    g = torch.Generator().manual_seed(7)
    d = {k: unit(torch.randn(8, 16, generator=g)) for k in ("text", "text_neg", "graph_neg")}
    d["image"] = unit(d["text"] + 0.1 * torch.randn(8, 16, generator=g))
    d["graph"] = unit(d["text"] + 0.1 * torch.randn(8, 16, generator=g))
    d["clinical"] = (torch.rand(8, 14, generator=g) > 0.7).float()
    d["clinical_neg"] = (torch.rand(8, 14, generator=g) > 0.7).float()
    inputs = variant_inputs(d, negatives, graph)
    aligned = clinic_loss(**inputs, streams=streams)
    shuffled = clinic_loss(**{**inputs, "image": inputs["image"].roll(1, dims=0)}, streams=streams)
    assert aligned < shuffled


# --- input handling -----------------------------------------------------------------------------


def test_unnormalised_and_bf16_inputs():
    d = make_batch(batch=4)
    full = clinic_loss(**d, streams=("t", "c", "g"))
    scaled = clinic_loss(**{**d, "image": 3 * d["image"], "text": 0.5 * d["text"]},
                         streams=("t", "c", "g"))
    assert scaled.item() == pytest.approx(full.item(), rel=1e-5)
    half = clinic_loss(**{k: v.bfloat16() for k, v in d.items()}, streams=("t", "c", "g"))
    assert half.dtype == torch.float32
    assert half.item() == pytest.approx(full.item(), rel=0.05)


def _bad(**changes):
    d = make_batch(batch=3, dim=4)
    return {**d, **changes}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"text": torch.zeros(2, 4)}, "text has shape"),
        ({"text_neg": torch.zeros(3, 5)}, "text_neg has shape"),
        ({"graph": torch.zeros(3)}, "graph must be a non-empty 2-D"),
        ({"clinical": torch.zeros(2, 14)}, "clinical has 2 rows"),
        ({"clinical_neg": torch.zeros(3, 13)}, "clinical_neg has shape"),
        ({"text_neg": None, "graph_neg": None}, "clinical_neg is given without text_neg"),
        ({"graph_neg": None}, "graph_neg is required"),
        ({"graph": None}, "graph_neg is given without graph"),
        ({"clinical": None, "clinical_neg": None, "streams": ("c",)}, "stream 'c' needs clinical"),
        ({"clinical_neg": None, "streams": ("c",)}, "needs clinical_neg"),
        ({"graph": None, "graph_neg": None, "streams": ("g",)}, "stream 'g' needs graph"),
        ({"streams": ("t", "x")}, "unknown stream"),
        ({"thresholds": {"text": 0.5}}, "thresholds has unknown stream key 'text'"),
        ({"thresholds": {"t": 1.5}}, r"thresholds\['t'\]"),
        ({"weights": {"c": -1.0}}, r"weights\['c'\]"),
        ({"temperature": 0.0}, "temperature must be a positive"),
        ({"image": [[1.0, 0.0]]}, "image must be a torch.Tensor"),
    ],
)
def test_bad_inputs_name_the_argument(kwargs, message):
    args = _bad(**kwargs)
    error = TypeError if message.endswith("torch.Tensor") else ValueError
    with pytest.raises(error, match=message):
        clinic_loss(**args)


# --- SoftCLIP and the single-process distributed wrappers --------------------------------------


def test_softclip_matches_loop_reference():
    d = make_batch(batch=4, dim=6, seed=11)
    options = {"temperature": 0.1, "alpha": 0.3, "self_temperature": 0.2, "neg_weight": 0.7}
    expected = ref_softclip(d["image"].double().tolist(), d["text"].double().tolist(),
                            0.1, 0.3, 0.2, 0.7)
    assert softclip_loss(d["image"], d["text"], **options).item() == pytest.approx(expected,
                                                                                    rel=1e-5)


def test_softclip_without_softening_is_infonce():
    d = make_batch(batch=5, seed=4)
    logits = d["image"] @ d["text"].T / 0.1
    labels = torch.arange(5)
    expected = F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)
    got = softclip_loss(d["image"], d["text"], alpha=0.0, neg_weight=0.0)
    assert got.item() == pytest.approx(expected.item(), rel=1e-5)
    assert got.item() == pytest.approx(clinic_loss(d["image"], d["text"]).item(), rel=1e-5)


def test_softclip_targets_are_detached_and_inputs_checked():
    d = make_batch(batch=4)
    image = d["image"].clone().requires_grad_()
    softclip_loss(image, d["text"]).backward()
    assert torch.isfinite(image.grad).all() and image.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="alpha"):
        softclip_loss(d["image"], d["text"], alpha=1.5)
    with pytest.raises(ValueError, match="text has shape"):
        softclip_loss(d["image"], d["text"][:2])


def test_distributed_wrappers_equal_plain_losses_without_a_process_group():
    d = make_batch(batch=4)
    streams = ("t", "c", "g")
    assert torch.equal(clinic_loss_distributed(**d, streams=iter(streams)),
                       clinic_loss(**d, streams=streams))
    assert torch.equal(softclip_loss_distributed(d["image"], d["text"], alpha=0.1),
                       softclip_loss(d["image"], d["text"], alpha=0.1))


# --- the clinical vector (Eq. 3): how CheXpert outputs become C ---------------------------------

NAN = float("nan")


def _row(**values):
    """A 14-value CheXpert row (blank unless given), keyed by column index."""
    row = [NAN] * 14
    for index, value in values.items():
        row[int(index[1:])] = value
    return row


def test_clinical_encodings_tell_a_negated_finding_from_a_normal_report():
    normal = _row(c0=1.0)  # No Finding
    negated = _row(c0=1.0, c9=0.0)  # "No pneumothorax."
    positive = _row(c9=1.0)
    uncertain = _row(c9=-1.0)
    labels = torch.tensor([normal, negated, positive, uncertain]).numpy()
    binary = clinical_vectors(labels, 0.5, "binary")
    assert (binary[0] == binary[1]).all()  # today's reading: identical
    unit_binary = F.normalize(torch.from_numpy(binary), dim=-1)
    assert torch.allclose(unit_binary[2], unit_binary[3])  # 0.5·e_X normalises to e_X
    signed = clinical_vectors(labels, 0.5, "signed")
    assert signed[1, 9] == -1 and signed[1, 0] == 1 and signed[0, 9] == 0
    assert signed[3, 9] == 0.5
    onehot = clinical_vectors(labels, 0.5, "onehot")
    assert onehot.shape == (4, 42)
    assert onehot[1, 0] == 1 and onehot[1, 14 + 9] == 1 and onehot[3, 28 + 9] == 1
    unit_onehot = F.normalize(torch.from_numpy(onehot), dim=-1)
    for encoded in (unit_onehot, F.normalize(torch.from_numpy(signed), dim=-1)):
        assert not torch.allclose(encoded[0], encoded[1])
    assert not torch.allclose(unit_onehot[2], unit_onehot[3])  # uncertain is not positive
    # the clinical stream at τ_c 0.9 shares a target between normal and negated only in binary
    for encoded, shared in ((binary, True), (signed, False), (onehot, False)):
        y = soft_targets(torch.from_numpy(encoded[:2]), 0.9)
        assert (y[0, 1] > 0).item() == shared
    with pytest.raises(ValueError, match="unknown clinical encoding"):
        clinical_vectors(labels, 0.5, "ternary")


def test_clinical_vectors_map_chexpert_values():
    labels = torch.tensor([[1, 0, -1, NAN], [NAN, NAN, NAN, NAN]]).numpy()
    assert clinical_vectors(labels, 0.5, "binary").tolist() == [[1, 0, 0.5, 0], [0, 0, 0, 0]]
    assert clinical_vectors(labels, 1.0, "binary")[0].tolist() == [1, 0, 1, 0]
    assert clinical_vectors(labels, 0.5, "signed").tolist() == [[1, -1, 0.5, 0], [0, 0, 0, 0]]
    onehot = clinical_vectors(labels, 0.5)  # the default, chosen on validation data
    assert onehot.tolist() == [[1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0], [0] * 12]
