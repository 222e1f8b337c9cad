import numpy as np
import pytest

from clip2clinic.evaluation.retrieval import distinct_reports, score_retrieval
from clip2clinic.observations import CHEXPERT_CLASSES

EDEMA, CARDIO, EFFUSION, ATELECTASIS = (
    CHEXPERT_CLASSES.index(c) for c in ("Edema", "Cardiomegaly", "Pleural Effusion", "Atelectasis")
)


def unit(rng, n, d=64):
    x = rng.normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def labels_with(positives_per_row):
    labels = np.full((len(positives_per_row), len(CHEXPERT_CLASSES)), np.nan, np.float32)
    for row, positives in enumerate(positives_per_row):
        labels[row, list(positives)] = 1
    return labels


def two_groups(n):
    """First half Edema, second half Cardiomegaly."""
    return labels_with([[EDEMA]] * (n // 2) + [[CARDIO]] * (n - n // 2))


def test_a_perfect_embedding_scores_one_everywhere():
    rng = np.random.default_rng(0)
    image = unit(rng, 30)
    labels = two_groups(30)
    result = score_retrieval(image, image, labels, labels)
    for name in (
        "retrieval_top5",
        "retrieval_r1",
        "retrieval_r5",
        "retrieval_r10",
        "retrieval_precision",
        "retrieval_recall",
        "retrieval_f1",
    ):
        assert result.metrics[name].value == 1.0, name
    assert (result.table["rank"] == 1).all()
    assert (result.table["retrieved_report"] == result.table["paired_report"]).all()


def test_a_flipped_embedding_scores_zero():
    """Each image's nearest report is another study's with disjoint labels."""
    rng = np.random.default_rng(1)
    image = unit(rng, 20)
    labels = two_groups(20)
    reports = np.roll(image, -10, axis=0)  # report j looks like image j + 10
    result = score_retrieval(image, reports, labels, labels)
    assert result.metrics["retrieval_r1"].value == 0.0
    for name in ("retrieval_precision", "retrieval_recall", "retrieval_f1"):
        assert result.metrics[name].value == 0.0, name


def test_a_random_embedding_scores_about_chance():
    rng = np.random.default_rng(2)
    image, reports = unit(rng, 300), unit(rng, 300)
    labels = two_groups(300)
    result = score_retrieval(image, reports, labels, labels)
    for k in (1, 5, 10):
        estimate = result.metrics[f"retrieval_r{k}"]
        assert estimate.low <= k / 300 <= estimate.high, k
    assert result.metrics["retrieval_top5"] == result.metrics["retrieval_r5"]
    f1 = result.metrics["retrieval_f1"]  # half of the reports share the query's one label
    assert f1.low < 0.5 < f1.high


def test_tied_scores_count_as_a_random_tie_break():
    image = np.tile(np.eye(1, 8, dtype=np.float32), (20, 1))  # every score the same
    labels = two_groups(20)
    result = score_retrieval(image, image, labels, labels)
    assert result.metrics["retrieval_r1"].value == pytest.approx(1 / 20)
    assert result.metrics["retrieval_r5"].value == pytest.approx(5 / 20)


def test_images_of_one_study_share_its_report():
    rng = np.random.default_rng(3)
    reports = unit(rng, 3)
    image = np.repeat(reports, 2, axis=0) + 0.05 * rng.normal(size=(6, 64)).astype(np.float32)
    image /= np.linalg.norm(image, axis=1, keepdims=True)
    labels = two_groups(3)
    result = score_retrieval(
        image, reports, labels[[0, 0, 1, 1, 2, 2]], labels, k=(1,), pair_index=[0, 0, 1, 1, 2, 2]
    )
    assert result.metrics["retrieval_r1"].value == 1.0
    assert "retrieval_r10" not in result.metrics and "retrieval_top5" in result.metrics
    assert list(result.table["paired_report"]) == [0, 0, 1, 1, 2, 2]


def test_identical_report_texts_are_one_candidate():
    rng = np.random.default_rng(4)
    base = unit(rng, 3)
    # rows 0 and 1 are the same template text, embedded with a little jitter
    jitter = base[0] + 0.01 * rng.normal(size=64).astype(np.float32)
    reports = np.stack([base[0], jitter / np.linalg.norm(jitter), base[1], base[2]])
    image = np.stack([base[0], base[0], base[1], base[2]])  # image 1 is closest to row 0
    texts = ["No acute process.", " No acute  process. ", "Mild edema.", "Small effusion."]
    labels = labels_with([[], [], [EDEMA], [EFFUSION]])
    apart = score_retrieval(image, reports, labels, labels)
    merged = score_retrieval(image, reports, labels, labels, report_texts=texts)
    assert apart.metrics["retrieval_r1"].value == 0.75
    assert merged.metrics["retrieval_r1"].value == 1.0
    assert list(merged.table["paired_report"]) == [0, 0, 2, 3]  # rows of the input


def test_distinct_reports_keeps_first_rows_in_order():
    keep, index = distinct_reports(["b", "a", "b ", "c", "a"])
    assert list(keep) == [0, 1, 3] and list(index) == [0, 1, 0, 2, 1]


def test_label_scores_count_only_positives():
    """Query {Edema, Effusion}; retrieved {Edema, Cardiomegaly} plus an uncertain
    Atelectasis, which does not count: TP 1, precision 1/2, recall 1/2, F1 1/2. A query and
    a report with no positives agree perfectly."""
    image = np.eye(2, 8, dtype=np.float32)
    query = labels_with([[EDEMA, EFFUSION], []])
    query[0, ATELECTASIS] = 0
    reports = labels_with([[EDEMA, CARDIO], []])
    reports[0, ATELECTASIS] = -1
    result = score_retrieval(image, image, query, reports)
    table = result.table
    assert list(table["precision"]) == [0.5, 1.0] and list(table["recall"]) == [0.5, 1.0]
    assert list(table["f1"]) == [0.5, 1.0]
    assert result.metrics["retrieval_f1"].value == 0.75


def test_bad_inputs_are_refused():
    rng = np.random.default_rng(5)
    x = unit(rng, 4)
    labels = two_groups(4)
    with pytest.raises(ValueError, match="pair_index"):
        score_retrieval(x, x[:2], labels, labels[:2], pair_index=[0, 1, 2, 1])
    with pytest.raises(ValueError, match="labels_query"):
        score_retrieval(x, x, labels[:, :5], labels)
    with pytest.raises(ValueError, match="report texts"):
        score_retrieval(x, x, labels, labels, report_texts=["a"])
    with pytest.raises(ValueError, match="NaN"):
        score_retrieval(x * np.nan, x, labels, labels)
