"""The report's figures: the headline figure (seeds as dots, mean and t interval, chance and
baseline lines, paired differences), ROC with one panel per class and training curves."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from matplotlib.collections import PathCollection
from scipy import stats

from clip2clinic.evaluation import figures


def record(variant, seed, values):
    metrics = {m: {"value": v, "low": v - 0.1, "high": v + 0.1, "n": 50} for m, v in values.items()}
    return {"variant": variant, "seed": seed, "metrics": metrics}


RECORDS = [record("n", 0, {"cxr_align_a": 0.9}), record("baseline", 0, {"cxr_align_a": 0.6}),
           record("n", 1, {"cxr_align_a": 0.8}), record("baseline", 1, {"cxr_align_a": 0.5}),
           record("n", 2, {"cxr_align_a": 0.85})]  # fmt: skip


@pytest.fixture
def captured(monkeypatch):
    """The figures the plot functions would save, kept open for inspection."""
    kept = []
    monkeypatch.setattr(figures, "save_figure", lambda figure, target: kept.append(figure))
    return kept


def test_seed_values_and_their_t_interval():
    values = figures.seed_values(RECORDS, "cxr_align_a")
    assert list(values) == ["baseline", "n"] and values["n"] == [0.9, 0.8, 0.85]
    mean, low, high = figures.mean_interval(values["n"], (math.nan, math.nan))
    half = stats.t.ppf(0.975, 2) * 0.05 / math.sqrt(3)
    assert (mean, low, high) == pytest.approx((0.85, 0.85 - half, 0.85 + half))
    assert figures.mean_interval([0.7], (0.6, 0.8)) == (0.7, 0.6, 0.8)  # one seed: bootstrap


def test_headline_figure_draws_seeds_chance_baseline_and_differences(captured, tmp_path):
    comparison = pd.DataFrame({"variant": ["n"], "metric": ["cxr_align_a/phantom"],
                               "dataset": ["phantom"], "difference": [0.3], "low": [0.2],
                               "high": [0.4], "p_holm": [0.01]})  # fmt: skip
    figures.plot_headline(RECORDS, tmp_path / "h.png", {"cxr_align_a": 0.5}, comparison)
    (figure,) = captured
    top, bottom = figure.axes
    dots = [c for c in top.collections if isinstance(c, PathCollection)]
    assert sorted(len(c.get_offsets()) for c in dots) == [2, 3]  # a dot per seed
    lines = {line.get_label(): line.get_ydata()[0] for line in top.get_lines()
             if line.get_label() in ("chance", "baseline mean")}  # fmt: skip
    assert lines == pytest.approx({"chance": 50.0, "baseline mean": 55.0})
    marker = [line for line in bottom.get_lines() if line.get_marker() == "o"]
    assert marker[0].get_ydata()[0] == pytest.approx(30.0)
    assert marker[0].get_color() == "#c44e52"  # Holm p < 0.05
    assert "vs baseline" in bottom.get_title()


def test_roc_has_one_panel_per_class_and_one_colour_per_variant(captured, tmp_path):
    rows = []
    for variant in ("baseline", "n", "n_g_dtcg"):
        for seed in (0, 1):
            for name in ("Edema", "Cardiomegaly", "Pneumothorax"):
                rows += [{"task": "zeroshot_phantom", "class": name, "fpr": f, "tpr": t,
                          "variant": variant, "run": f"{variant}-{seed}"}
                         for f, t in ((0, 0), (0.2, 0.6 + 0.1 * seed), (1, 1))]  # fmt: skip
    figures.plot_roc(pd.DataFrame(rows), tmp_path / "roc.png")
    (figure,) = captured
    panels = [axis for axis in figure.axes if axis.get_visible()]
    assert [axis.get_title() for axis in panels] == ["Edema", "Cardiomegaly", "Pneumothorax"]
    for axis in panels:
        curves = [line for line in axis.get_lines() if line.get_label() in ("baseline", "n",
                                                                              "n_g_dtcg")]
        assert len(curves) == 3 and len({line.get_color() for line in curves}) == 3
        assert axis.get_legend() is None  # one legend for the figure, below the panels
        # the mean curve over the two seeds at fpr 0.2
        assert curves[0].get_ydata()[20] == pytest.approx(0.65)
    assert len(figure.legends) == 1


def test_training_curves_come_from_the_run_logs(captured, tmp_path):
    records = []
    for variant in ("baseline", "n"):
        run = tmp_path / variant
        (run / "logs").mkdir(parents=True)
        (run / "evaluation").mkdir()
        pd.DataFrame({"step": [1, 2, 3, 4], "epoch": [0, 0, 1, 1], "loss": [5, 4, 3.5, 3],
                      "val_loss": [None, 4.2, None, 3.6]}).to_csv(run / "logs" / "metrics.csv",
                                                                  index=False)  # fmt: skip
        records.append({**record(variant, 0, {}), "run": str(run)})
        (run / "evaluation" / "metrics.json").write_text(json.dumps(records[-1]))
    logs = figures.load_training_logs([tmp_path / "baseline", tmp_path / "n"], records)
    assert len(logs) == 8 and set(logs["variant"]) == {"baseline", "n"}
    figures.plot_training_curves(logs, tmp_path / "t.png")
    (figure,) = captured
    panels = [axis for axis in figure.axes if axis.get_visible()]
    assert [axis.get_title() for axis in panels] == ["baseline", "n"]
    validation = [line for line in panels[0].get_lines() if line.get_label() == "validation"]
    assert list(validation[0].get_ydata()) == [4.2, 3.6]


def test_chance_levels_from_the_per_case_files(tmp_path):
    folder = tmp_path / "run" / "evaluation"
    folder.mkdir(parents=True)
    pd.DataFrame({"paired_report": list(range(20)) * 2}).to_parquet(folder / "r.parquet")
    pd.DataFrame({"candidates": [4, 4, 2]}).to_parquet(folder / "n.parquet")
    record_ = {"tasks": {"retrieval_phantom": {"cases": "r.parquet"},
                         "normal_detection_phantom": {"cases": "n.parquet"}}}
    (folder / "metrics.json").write_text(json.dumps({**record_, "metrics": {}}))
    levels = figures.chance_levels([tmp_path / "run"], [record_])
    assert levels["retrieval_top5"] == pytest.approx(5 / 20)
    assert levels["normal_detection_acc"] == pytest.approx((0.25 + 0.25 + 0.5) / 3)
    assert levels["cxr_align_a"] == 0.5
