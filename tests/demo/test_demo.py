"""`clip2clinic demo` end to end at a tiny size (a 60-study phantom, a tiny model, 2 steps per
variant) and its resumption; the metrics themselves are tested in tests/test_evaluation_*."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from clip2clinic.cli import main
from clip2clinic.demo import pipeline
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
    text = (out / "results_summary.md").read_text()
    # the paired differences from the baseline (compare), in the table and the headline figure
    compared = pd.read_csv(out / "compare_baseline" / "compare.csv")
    assert set(compared["variant"]) == {"n_g_dtcg"}
    assert set(compared["baseline_variant"]) == {"baseline"}
    assert "## Paired differences from the baseline (headline metrics)" in text
    assert "| n_g_dtcg | baseline | 1 | cxr_align_a/phantom |" in text
    for figure in ("headline", "roc", "training"):
        assert (out / f"results_summary_{figure}.png").read_bytes()[:4] == b"\x89PNG", figure
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


def test_stage_lines_are_logged_whether_or_not_bars_are_drawn(tiny_demo, caplog):
    """The stage lines are INFO log lines, so a batch job's log has them (bars are drawn only
    on a terminal) and --quiet (WARNING level) hides them."""
    out, _ = tiny_demo
    with caplog.at_level("INFO", logger="clip2clinic.demo"):
        run_demo(out, variants=["baseline", "n_g_dtcg"], size=TINY, progress=False)
    stages = [r.getMessage() for r in caplog.records if r.getMessage().startswith("[demo]")]
    assert any("[1/5] phantom" in line for line in stages)
    assert any(line.startswith("[demo] done in") for line in stages)
