"""``clip2clinic compare``: paired differences on per-case results, planted answers on written
runs, then the command end to end on two tiny trained and evaluated runs."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from clip2clinic.cli import main
from clip2clinic.evaluation.compare import compare_runs
from clip2clinic.evaluation.paired import delong_test, seed_interval
from clip2clinic.evaluation.summary import write_report
from clip2clinic.io import InputError
from clip2clinic.training.trainer import train
from tests.training_fixtures import tiny_config


def write_run(root, name, variant, seed, cases, fingerprint=None):
    """A run folder with metrics.json naming each ``<task>_phantom`` per-case Parquet file."""
    folder = root / name / "evaluation"
    folder.mkdir(parents=True)
    tasks = {}
    for task, frame in cases.items():
        frame.to_parquet(folder / f"{task}_phantom_cases.parquet", index=False)
        tasks[f"{task}_phantom"] = {"csv": f"{task}_phantom.csv", "dataset": "phantom",
                                    "cases": f"{task}_phantom_cases.parquet"}  # fmt: skip
    record = {"run": str(root / name), "variant": variant, "seed": seed, "tasks": tasks,
              "fingerprint": fingerprint or f"{name}-fingerprint", "metrics": {}}  # fmt: skip
    (folder / "metrics.json").write_text(json.dumps(record))
    return root / name


def ids(n, per_patient=2):
    return pd.DataFrame({"patient_id": [f"p{i // per_patient}" for i in range(n)],
                         "study_id": [f"s{i}" for i in range(n)],
                         "image_id": [f"i{i}" for i in range(n)]})  # fmt: skip


def align(correct_a, correct_b=None):
    n = len(correct_a)
    frame = ids(n).assign(case_id=[f"phantom/s{i}" for i in range(n)],
                          correct_a=np.asarray(correct_a, dtype=bool))
    return frame.assign(correct_b=frame["correct_a"] if correct_b is None else correct_b)


def zeroshot(labels, scores, classes=("Edema", "Atelectasis")):
    n = len(labels)
    frame = ids(n).loc[np.repeat(np.arange(n), len(classes))].reset_index(drop=True)
    return frame.assign(**{"class": list(classes) * n, "label": np.ravel(labels),
                           "score": np.ravel(scores)})  # fmt: skip


def test_identical_runs_give_difference_zero_and_p_one(tmp_path):
    rng = np.random.default_rng(0)
    labels = (rng.random((30, 2)) < 0.4).astype(float)
    cases = {"cxr_align": align(rng.random(30) < 0.6),
             "zeroshot": zeroshot(labels, rng.random((30, 2))),
             "retrieval": ids(30).assign(hit_at_1=rng.random(30) < 0.3, hit_at_5=True,
                                         hit_at_10=True),
             "chexpert5x200": ids(30).assign(correct=rng.random(30) < 0.5)}  # fmt: skip
    runs = [write_run(tmp_path, "a", "baseline", 0, cases),
            write_run(tmp_path, "b", "n", 0, cases)]  # fmt: skip
    table, _ = compare_runs([runs[1], runs[0] / "evaluation" / "metrics.json"], runs[0],
                            n_boot=50)  # fmt: skip
    assert {"cxr_align_a/phantom", "cxr_align_b/phantom", "retrieval_top5/phantom",
            "zeroshot_auc_edema/phantom", "zeroshot_mean_auc/phantom",
            "chexpert5x200_acc/phantom"} <= set(table["metric"])
    assert (table[["difference", "low", "high"]] == 0).all().all()
    assert (table["p"] == 1).all() and (table["p_holm"] == 1).all()
    assert (table["variant"] == "n").all() and (table["baseline_variant"] == "baseline").all()


def test_a_run_right_on_every_discordant_case_gets_mcnemars_exact_p(tmp_path):
    base = [False] * 8 + [True] * 12
    runs = [write_run(tmp_path, "a", "baseline", 0, {"cxr_align": align(base)}),
            write_run(tmp_path, "b", "n", 0, {"cxr_align": align([True] * 20)})]  # fmt: skip
    table, _ = compare_runs(runs, n_boot=200)
    row = table.set_index("metric").loc["cxr_align_a/phantom"]
    assert (row["better"], row["worse"], row["fractional"]) == (8, 0, 0)
    assert row["p"] == pytest.approx(2 * 0.5**8)
    assert row["difference"] == pytest.approx(0.4) and row["low"] > 0
    assert (row["n"], row["patients"]) == (20, 10)
    # Holm over the two tests (A and B): the smaller p doubled, the other at least that
    assert table["p_holm"].max() == pytest.approx(2 * 2 * 0.5**8)


def test_a_multi_image_case_split_between_images_is_left_out_of_mcnemar(tmp_path):
    base = align([False, True, True])
    run = align([True, True, True])
    for frame in (base, run):  # the first two images are one study's (one case)
        frame.loc[1, "case_id"] = frame.loc[0, "case_id"]
    runs = [write_run(tmp_path, "a", "baseline", 0, {"cxr_align": base}),
            write_run(tmp_path, "b", "n", 0, {"cxr_align": run})]  # fmt: skip
    row = compare_runs(runs, n_boot=20)[0].set_index("metric").loc["cxr_align_a/phantom"]
    assert row["n"] == 2 and row["fractional"] == 1  # 0.5 vs 1: not a McNemar pair
    assert row["difference"] == pytest.approx(0.25) and row["p"] == 1.0


def test_zero_shot_aucs_use_delong_on_the_matched_images(tmp_path):
    rng = np.random.default_rng(4)
    labels = (rng.random((40, 2)) < 0.5).astype(float)
    labels[3, 1] = math.nan  # left out of Atelectasis only
    base, run = rng.random((40, 2)) + 0.3 * labels, rng.random((40, 2)) + labels
    shuffled = zeroshot(labels, run).sample(frac=1, random_state=0)  # row order does not matter
    runs = [write_run(tmp_path, "a", "baseline", 0, {"zeroshot": zeroshot(labels, base)}),
            write_run(tmp_path, "b", "g", 0, {"zeroshot": shuffled})]  # fmt: skip
    table = compare_runs(runs, n_boot=100)[0].set_index("metric")
    keep = ~np.isnan(labels[:, 1])
    expected = delong_test(labels[keep, 1] == 1, base[keep, 1], run[keep, 1])
    row = table.loc["zeroshot_auc_atelectasis/phantom"]
    assert row["p"] == pytest.approx(expected.p) and row["n"] == 39
    assert row["difference"] == pytest.approx(expected.difference)
    assert row["baseline"] == pytest.approx(expected.baseline)
    mean = table.loc["zeroshot_mean_auc/phantom"]
    assert mean["difference"] == pytest.approx(
        (table.loc["zeroshot_auc_edema/phantom", "difference"] + expected.difference) / 2)
    assert mean["low"] <= mean["difference"] <= mean["high"]


def test_runs_sharing_no_case_are_refused(tmp_path):
    other = align([True] * 4)
    other["image_id"] = [f"x{i}" for i in range(4)]
    runs = [write_run(tmp_path, "a", "baseline", 0, {"cxr_align": align([True] * 4)}),
            write_run(tmp_path, "b", "n", 0, {"cxr_align": other})]  # fmt: skip
    with pytest.raises(InputError, match="share no case"):
        compare_runs(runs)
    runs.append(write_run(tmp_path, "c", "g", 0, {"retrieval": ids(3).assign(hit_at_5=True)}))
    with pytest.raises(InputError, match="no per-case results of a common task"):
        compare_runs([runs[0], runs[2]])


def test_seeds_of_a_variant_give_a_t_interval_across_seeds(tmp_path):
    runs = []
    for seed, extra in ((0, 2), (1, 4), (2, 7)):  # the run is right on 2, 4, 7 more of 20
        base = [False] * 10 + [True] * 10
        runs.append(write_run(tmp_path, f"base{seed}", "baseline", seed,
                              {"cxr_align": align(base)}))  # fmt: skip
        runs.append(write_run(tmp_path, f"n{seed}", "n", seed,
                              {"cxr_align": align([True] * extra + base[extra:])}))  # fmt: skip
    table, per_run = compare_runs(runs, n_boot=50)
    row = table.set_index("metric").loc["cxr_align_a/phantom"]
    differences = [0.1, 0.2, 0.35]
    mean = sum(differences) / 3
    sd = math.sqrt(sum((d - mean) ** 2 for d in differences) / 2)
    half = 4.302652729911275 * sd / math.sqrt(3)
    assert row["seeds"] == 3 and row["difference"] == pytest.approx(mean)
    assert (row["low"], row["high"]) == (pytest.approx(mean - half), pytest.approx(mean + half))
    assert row["p"] == pytest.approx(seed_interval(differences).p)
    mine = per_run[per_run["metric"] == "cxr_align_a/phantom"]
    assert list(mine["seed"]) == list(mine["baseline_seed"]) == [0, 1, 2]  # paired by seed
    assert list(mine["difference"]) == pytest.approx(differences)
    assert row["low"] != pytest.approx(mine["low"].mean())  # not the mean of per-seed bounds
    with pytest.raises(InputError, match="seeds of one variant must differ"):
        compare_runs([*runs, write_run(tmp_path, "again", "n", 0, {"cxr_align": align(base)})])


def test_one_checkpoint_twice_is_refused_by_report_and_compare(tmp_path, capsys):
    cases = {"cxr_align": align([True, False])}
    runs = [write_run(tmp_path, "a", "n", 0, cases, fingerprint="f" * 64),
            write_run(tmp_path, "b", "n", 1, cases, fingerprint="f" * 64)]  # fmt: skip
    for folder in runs:  # report needs a metric
        path = folder / "evaluation" / "metrics.json"
        record = json.loads(path.read_text())
        record["metrics"] = {"cxr_align_a": {"value": 0.5, "low": 0.1, "high": 0.9, "n": 2}}
        path.write_text(json.dumps(record))
    with pytest.raises(InputError, match="same checkpoint"):
        write_report(runs, tmp_path / "summary.csv")
    assert main(["compare", *map(str, runs), "--out", str(tmp_path / "c")]) == 2
    assert "same checkpoint (fingerprint ffffffffffff)" in capsys.readouterr().err


def test_report_baseline_adds_the_paired_differences_against_that_variant(tmp_path, capsys):
    """Runs listed with the n runs first: --baseline picks the baseline variant's runs, pairs
    them by seed, and the report carries the differences; an absent variant is one error."""
    runs = []
    for seed, extra in ((0, 2), (1, 4)):  # n is right on 2, 4 more of 20 cases
        base = [False] * 10 + [True] * 10
        mine = [True] * extra + base[extra:]
        runs.append(write_run(tmp_path, f"n{seed}", "n", seed, {"cxr_align": align(mine)}))
        runs.append(write_run(tmp_path, f"base{seed}", "baseline", seed,
                              {"cxr_align": align(base)}))  # fmt: skip
        for folder, correct in ((runs[-2], mine), (runs[-1], base)):  # report needs metrics
            path = folder / "evaluation" / "metrics.json"
            record = json.loads(path.read_text())
            value = sum(correct) / 20
            record["metrics"] = {"cxr_align_a": {"value": value, "low": value - 0.1,
                                                 "high": value + 0.1, "n": 20}}  # fmt: skip
            path.write_text(json.dumps(record))
    out = tmp_path / "report" / "summary.csv"
    assert main(["report", *map(str, runs), "--out", str(out), "--baseline", "baseline"]) == 0
    table = pd.read_csv(tmp_path / "report" / "summary_vs_baseline" / "compare.csv")
    row = table.set_index("metric").loc["cxr_align_a/phantom"]
    assert (row["variant"], row["baseline_variant"], row["seeds"]) == ("n", "baseline", 2)
    assert row["difference"] == pytest.approx((0.1 + 0.2) / 2)  # paired by seed
    per_run = pd.read_csv(tmp_path / "report" / "summary_vs_baseline" / "compare_runs.csv")
    assert (per_run["seed"] == per_run["baseline_seed"]).all()
    assert set(per_run["seed"]) == {0, 1} and set(per_run["variant"]) == {"n"}
    markdown = out.with_suffix(".md").read_text()
    assert "Paired differences from the baseline" in markdown and "cxr_align_a" in markdown
    printed = capsys.readouterr().out
    assert "comparison_csv:" in printed and "comparison_forest_plot:" in printed

    plain = tmp_path / "plain" / "summary.csv"
    assert main(["report", *map(str, runs), "--out", str(plain)]) == 0
    assert "Paired differences" not in plain.with_suffix(".md").read_text()
    assert not (tmp_path / "plain" / "summary_vs_baseline").exists()
    assert main(["report", *map(str, runs), "--out", str(plain), "--baseline", "dt"]) == 2
    assert "no run of variant 'dt' to compare with; the runs are of baseline, n" in (
        capsys.readouterr().err)


# --- end to end on two tiny trained runs --------------------------------------------------------


@pytest.fixture(scope="module")
def baseline_run(tiny_prepared_phantom, tmp_path_factory):
    folder = tmp_path_factory.mktemp("compare_run")
    train(tiny_config(folder, tiny_prepared_phantom, "baseline", "train.epochs=1"))
    return folder / "run"


def test_compare_end_to_end_on_two_evaluated_runs(baseline_run, tiny_run,
                                                  tiny_prepared_phantom, tmp_path, capsys):
    tasks = "cxr_align,retrieval,adversarial,normal_detection,zeroshot"
    for run in (baseline_run, tiny_run):
        assert main(["evaluate", "--checkpoint", str(run), "--data",
                     f"phantom={tiny_prepared_phantom}", "--tasks", tasks, "--out",
                     str(tmp_path / run.parent.name), "--quiet"]) == 0  # fmt: skip
    metrics = [tmp_path / run.parent.name / "metrics.json" for run in (tiny_run, baseline_run)]
    out = tmp_path / "comparison"
    assert main(["compare", *map(str, metrics), "--baseline", str(metrics[1]), "--out", str(out),
                 "--resamples", "100"]) == 0  # fmt: skip
    table = pd.read_csv(out / "compare.csv")
    assert set(table["variant"]) == {"n"} and set(table["baseline_variant"]) == {"baseline"}
    assert {"cxr_align_a/phantom", "retrieval_top5/phantom", "adversarial_acc/phantom",
            "normal_detection_acc/phantom"} <= set(table["metric"])
    evaluated = {name: json.loads(path.read_text())["metrics"]
                 for name, path in zip(("run", "baseline"), metrics, strict=True)}  # fmt: skip
    for row in table.itertuples():  # each side is the run's own metric on the shared cases
        if not row.metric.startswith("zeroshot_auc_"):
            assert row.value == pytest.approx(evaluated["run"][row.metric]["value"]), row.metric
            assert row.baseline == pytest.approx(evaluated["baseline"][row.metric]["value"])
        assert row.difference == pytest.approx(row.value - row.baseline), row.metric
        assert row.low <= row.difference + 1e-12 and row.difference <= row.high + 1e-12
        assert 0 <= row.p <= row.p_holm <= 1, row.metric
    assert set(table.loc[table["metric"].str.startswith("zeroshot"), "test"]) == {"delong"}
    assert set(table.loc[table["metric"].str.startswith("cxr_align"), "test"]) == {"mcnemar"}
    assert (out / "compare_forest.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "compare.md").read_text().startswith("| variant | vs |")
    assert "cxr_align_a/phantom" in capsys.readouterr().out
    assert len(pd.read_csv(out / "compare_runs.csv")) == len(table)
