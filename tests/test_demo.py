"""`clip2clinic demo` end to end at a tiny size (a 60-study phantom, a tiny model, 2 steps per
variant), its resumption, and the interim scorer's metrics on embeddings with known answers."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import roc_auc_score

from clip2clinic.cli import main
from clip2clinic.demo import pipeline, scoring
from clip2clinic.demo.pipeline import DemoSize, run_demo
from clip2clinic.evaluation.summary import HEADLINE
from clip2clinic.io import InputError

#: A tiny model (32 px Swin, 16-wide text head) and 2 optimizer steps of 20 pairs per variant.
TINY = DemoSize(
    studies=60, phantom_image_size=64, image_size=32, epochs=1, batch_size=20,
    overrides=(
        "model.image.config={image_size: 32, patch_size: 4, embed_dim: 8, depths: [1, 1], "
        "num_heads: [1, 2], window_size: 4}",
        "model.text.head={width: 16, layers: 1, heads: 2, ff_dim: 32}",
        "model.embed_dim=32", "model.graph.hidden_dim=16",
    ),
)  # fmt: skip


@pytest.fixture(scope="module")
def tiny_demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    summary = run_demo(out, variants=["baseline", "n_g_dtcg"], size=TINY, progress=False)
    return out, summary


def test_demo_writes_one_summary_row_per_variant_with_the_headline_fractions(tiny_demo):
    out, summary = tiny_demo
    assert summary == out / "results_summary.csv"
    table = pd.read_csv(summary)
    assert table["variant"].tolist() == ["baseline", "n_g_dtcg"]
    for metric in HEADLINE:
        values = table[metric].dropna()
        assert ((values >= 0) & (values <= 1)).all(), metric
    assert table[list(HEADLINE)].notna().any().all()
    assert (out / "results_summary.md").is_file()
    for variant in ("baseline", "n_g_dtcg"):
        run = out / "runs" / f"{variant}-seed0"
        assert (run / "checkpoints" / "final" / "model.safetensors").is_file()
        record = json.loads((run / "evaluation" / "metrics.json").read_text())
        assert (record["variant"], record["seed"], record["split"]) == (variant, 0, "test")


def test_a_rerun_skips_every_finished_stage(tiny_demo, monkeypatch):
    out, summary = tiny_demo
    metrics = out / "runs" / "baseline-seed0" / "evaluation" / "metrics.json"
    before = metrics.stat().st_mtime_ns

    def fail(*args, **kwargs):
        raise AssertionError("a finished stage ran again")

    monkeypatch.setattr("clip2clinic.data.prepare.prepare", fail)
    monkeypatch.setattr("clip2clinic.training.trainer.train", fail)
    monkeypatch.setattr(pipeline, "evaluate_run", fail)
    assert run_demo(out, variants=["baseline", "n_g_dtcg"], size=TINY, progress=False) == summary
    assert metrics.stat().st_mtime_ns == before


def test_unknown_variants_and_bad_seed_counts_are_refused(tmp_path, capsys):
    with pytest.raises(InputError, match="unknown variant"):
        run_demo(tmp_path, variants=["baseline", "clip"], size=TINY, progress=False)
    with pytest.raises(InputError, match="seeds"):
        run_demo(tmp_path, seeds=0, size=TINY, progress=False)
    assert main(["demo", "--out", str(tmp_path), "--variants", "nope"]) == 2
    assert "unknown variant" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_pairwise_auc_matches_scikit_learn_with_ties():
    rng = np.random.default_rng(0)
    for _ in range(20):
        positive = rng.integers(0, 2, 40).astype(bool)
        scores = rng.integers(0, 4, 40).astype(float)
        assert scoring.pairwise_auc(positive, scores) == pytest.approx(
            roc_auc_score(positive, scores))
    assert math.isnan(scoring.pairwise_auc(np.ones(5, bool), np.arange(5.0)))


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _fake_data(rows: pd.DataFrame) -> scoring.EvalData:
    empty = scoring.TextInputs(torch.zeros(0, 1, 1), torch.zeros(0, 1))
    return scoring.EvalData(rows, torch.zeros(len(rows)), empty, empty, empty,
                            (rows["chosen"] != "").to_numpy(), empty, empty, empty, ())


def test_cxr_align_counts_abnormal_images_that_prefer_their_report():
    rows = pd.DataFrame({"chosen": ["Edema", "Edema", "", "Fracture"],
                         "report": ["a", "b", "c", "d"], "omitted": ["x", "y", "c", "d"]})
    image = _unit(np.eye(4, dtype=np.float32) + 0.1)
    report = image.copy()  # each image matches its report exactly
    other = _unit(np.roll(image, 1, axis=1))
    texts = {"report": report, "omitted": other, "negation_train": other,
             # abnormal rows 0, 1, 3: the first negation is the report itself (a tie: wrong)
             "negation_eval": np.stack([report[0], other[1], other[3]])}
    metrics = scoring.cxr_align(image, texts, _fake_data(rows))
    assert metrics["cxr_align_a"].value == pytest.approx(2 / 3)
    assert metrics["cxr_align_a"].n == 3
    assert metrics["cxr_align_a_train_pool"].value == 1.0
    # Task B leaves out row 3, whose omitted report equals the report
    assert (metrics["cxr_align_b"].value, metrics["cxr_align_b"].n) == (1.0, 2)


def test_retrieval_and_normal_detection_rank_distinct_reports():
    rows = pd.DataFrame({"chosen": ["", "", "Edema", "Fracture"],
                         "report": ["normal", "normal", "edema", "fracture"]})
    report = _unit(np.array([[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float32))
    # image 0 looks normal, image 1 looks like edema, images 2 and 3 like their reports
    image = _unit(np.array([[1, 0.1, 0], [0.1, 1, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float32))
    metrics = scoring.retrieval_and_normals(image, report, _fake_data(rows))
    assert metrics["retrieval_top5"].value == 1.0  # 3 distinct reports: all in the top 5
    assert metrics["normal_detection_acc"].value == 0.5
    assert metrics["normal_detection_acc"].n == 2
