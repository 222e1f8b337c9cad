import json
import math

import pandas as pd
import pytest

from clip2clinic.cli import main
from clip2clinic.evaluation.summary import (
    load_metrics,
    markdown_table,
    summary_frame,
    write_report,
)
from clip2clinic.io import InputError


def write_run(root, name, variant, seed, values, roc=False):
    folder = root / name / "evaluation"
    folder.mkdir(parents=True)
    metrics = {
        metric: {"value": v, "low": v - 0.05, "high": v + 0.05, "n": 100}
        for metric, v in values.items()
    }
    record = {"run": str(root / name), "variant": variant, "seed": seed, "metrics": metrics}
    (folder / "metrics.json").write_text(json.dumps(record))
    if roc:
        pd.DataFrame(
            {"task": "zeroshot_phantom", "class": "Edema", "fpr": [0, 0.5, 1], "tpr": [0, 0.9, 1]}
        ).to_csv(folder / "roc.csv", index=False)
    return root / name


def test_seeds_of_a_variant_become_one_row(tmp_path):
    runs = [
        write_run(tmp_path, "n-s0", "n", 0, {"cxr_align_a": 0.9, "retrieval_top5": 0.4}),
        write_run(tmp_path, "n-s1", "n", 1, {"cxr_align_a": 0.8}),
        write_run(tmp_path, "base", "baseline", 0, {"cxr_align_a": 0.6, "extra": 0.3}),
    ]
    summary = summary_frame([load_metrics(r) for r in runs])
    assert list(summary["variant"]) == ["baseline", "n"]  # the reproduction's order
    n = summary.set_index("variant").loc["n"]
    assert n["seeds"] == 2 and n["cxr_align_a"] == pytest.approx(0.85)
    assert n["cxr_align_a_low"] == pytest.approx(0.80)
    assert n["cxr_align_a_seed_sd"] == pytest.approx(0.0707, abs=1e-3)
    assert n["retrieval_top5"] == pytest.approx(0.4)  # one seed has it
    assert math.isnan(n["extra"])
    assert list(summary.columns[:4]) == ["variant", "seeds", "runs", "cxr_align_a"]
    table = markdown_table(summary, ["cxr_align_a", "extra"])
    assert "| n | 2 | 85.0 [80.0, 90.0] | n/a |" in table


def test_report_command_writes_csv_markdown_and_plots(tmp_path, capsys):
    runs = [
        write_run(tmp_path, "a", "baseline", 0, {"cxr_align_a": 0.7, "cxr_align_b": 0.6}, roc=True),
        write_run(tmp_path, "b", "n_g_dtcg", 0, {"cxr_align_a": 0.95, "cxr_align_b": 0.7}),
    ]
    out = tmp_path / "out" / "results_summary.csv"
    assert main(["report", *map(str, runs), "--out", str(out)]) == 0
    frame = pd.read_csv(out)
    assert frame.loc[frame.variant == "n_g_dtcg", "cxr_align_a"].item() == pytest.approx(0.95)
    assert out.with_suffix(".md").read_text().startswith("| variant | seeds | cxr_align_a")
    for name in ("results_summary_headline.png", "results_summary_roc.png"):
        assert (out.parent / name).read_bytes()[:4] == b"\x89PNG"
    assert "95.0 [90.0, 100.0]" in capsys.readouterr().out


def test_missing_or_malformed_metrics_are_clear_errors(tmp_path, capsys):
    with pytest.raises(InputError, match="run `clip2clinic evaluate"):
        load_metrics(tmp_path / "nowhere")
    bad = tmp_path / "bad" / "evaluation"
    bad.mkdir(parents=True)
    (bad / "metrics.json").write_text(json.dumps({"metrics": {"cxr_align_a": {"value": 1}}}))
    assert main(["report", str(tmp_path / "bad"), "--out", str(tmp_path / "s.csv")]) == 2
    assert "not a clip2clinic metrics file" in capsys.readouterr().err
    with pytest.raises(InputError, match="no evaluated runs"):
        write_report([], tmp_path / "s.csv")


def test_report_builds_per_dataset_tables_in_the_papers_layouts(tmp_path):
    values = {"cxr_align_a": 0.9, "cxr_align_a/mimic": 0.95, "cxr_align_a/openi": 0.85,
              "cxr_align_b/mimic": 0.7, "retrieval_top5/openi": 0.1, "retrieval_f1/openi": 0.3,
              "zeroshot_mean_auc/rsna": 0.8, "probe_ft10_mean_auc/rsna": 0.85,
              "chexpert5x200_acc/chexpert5x200": 0.5}  # fmt: skip
    runs = [write_run(tmp_path, "a", "baseline", 0, values),
            write_run(tmp_path, "b", "n", 0, {**values, "cxr_align_a/mimic": 0.99})]
    out = tmp_path / "results_summary.csv"
    write_report(runs, out)
    frame = pd.read_csv(out).set_index("variant")
    assert frame.loc["n", "cxr_align_a/mimic"] == pytest.approx(0.99)
    assert frame.loc["n", "cxr_align_a/openi_low"] == pytest.approx(0.80)
    text = out.with_suffix(".md").read_text()
    headline, _, tables = text.partition("## ")
    assert headline.startswith("| variant | seeds | cxr_align_a |") and "/" not in headline
    assert ("## CXR-Align (Table 6)\n\n| variant | seeds | mimic A | mimic B | openi A |\n"
            in text)
    assert "| n | 1 | 99.0 [94.0, 104.0] | 70.0 [65.0, 75.0] | 85.0 [80.0, 90.0] |" in text
    assert "| variant | seeds | openi @5 | openi F1 |" in text
    assert "| variant | seeds | chexpert5x200 ZS acc | rsna ZS AUC | rsna FT10 |" in text


def test_the_summary_drops_duplicate_metrics_and_orders_columns_as_the_paper(tmp_path):
    values = {"retrieval_r5": 0.2, "retrieval_top5": 0.2, "retrieval_r5/phantom": 0.2,
              "retrieval_top5/phantom": 0.2, "zeroshot_mean_auc": 0.7,
              "zeroshot_mean_auc/phantom": 0.7, "adversarial_acc": 0.4, "retrieval_r1": 0.05,
              "probe_ft10_mean_auc": 0.6, "zeroshot_mean_acc": 0.6, "cxr_align_b": 0.6,
              "cxr_align_a": 0.7, "normal_detection_acc": 0.3, "other": 0.1}  # fmt: skip
    out = tmp_path / "results_summary.csv"
    write_report([write_run(tmp_path, "a", "baseline", 0, values)], out)
    columns = [c for c in pd.read_csv(out).columns
               if not c.endswith(("_low", "_high", "_seed_sd"))]  # fmt: skip
    assert columns == ["variant", "seeds", "runs", "cxr_align_a", "cxr_align_b",
                       "zeroshot_mean_auc", "retrieval_top5", "normal_detection_acc",
                       "zeroshot_mean_acc", "probe_ft10_mean_auc", "retrieval_r1",
                       "adversarial_acc", "other"]  # fmt: skip
    # the per-dataset layouts of the paper still show the one dataset
    assert "| variant | seeds | phantom ZS AUC |" in out.with_suffix(".md").read_text()
