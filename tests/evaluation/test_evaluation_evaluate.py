"""``clip2clinic evaluate`` and ``report`` end to end on a tiny trained checkpoint."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from clip2clinic.cli import main
from clip2clinic.data.manifest import read_manifest
from clip2clinic.evaluation import evaluate as evaluate_module
from clip2clinic.evaluation.cxr_align import build_cxr_align, save_cxr_align
from clip2clinic.evaluation.evaluate import Options, parse_tasks
from clip2clinic.evaluation.protocol import get_protocol
from clip2clinic.evaluation.sources import parse_data
from clip2clinic.io import InputError
from clip2clinic.model import ClinicCLIP
from tests.data.datasets.test_datasets_chestxray14 import build_nih
from tests.data.datasets.test_datasets_chexpert import build_chexpert
from tests.data.datasets.test_datasets_rsna import build_rsna
from tests.data.datasets.test_datasets_siim import build_siim
from tests.reports.labeler.test_labeler_chexbert import write_tiny_chexbert

CONTRACT = ("cxr_align_a", "cxr_align_b", "zeroshot_mean_auc", "retrieval_top5",
            "normal_detection_acc")  # fmt: skip


def test_every_manifest_task_writes_metrics_with_intervals(tiny_run, tiny_prepared_phantom,
                                                          capsys):  # fmt: skip
    args = ["evaluate", "--checkpoint", str(tiny_run), "--data",
            f"phantom={tiny_prepared_phantom}", "--quiet"]  # fmt: skip
    assert main(args) == 0
    out = tiny_run / "evaluation"
    record = json.loads((out / "metrics.json").read_text())
    assert record["variant"] == "n" and record["seed"] == 0
    assert record["checkpoint"].endswith("checkpoints/final")
    for name in (*CONTRACT, "adversarial_acc", "retrieval_f1", "probe_ft10_mean_auc",
                 "probe_ft100_mean_auc"):  # fmt: skip
        metric = record["metrics"][name]
        value = metric["value"]
        assert value is None or 0.0 <= value <= 1.0, name
        if value is not None and metric["low"] is not None:
            assert metric["low"] <= value <= metric["high"], name
    assert all(record["metrics"][name]["n"] > 0 for name in CONTRACT)
    for name in CONTRACT:  # one dataset: the headline is that dataset's estimate
        assert record["metrics"][name] == record["metrics"][f"{name}/phantom"], name
    # 5 test images: too few positives to fit a probe, reported as NaN rather than a crash
    assert record["metrics"]["probe_ft10_mean_auc"]["value"] is None
    for task in ("cxr_align", "retrieval", "adversarial", "normal_detection", "zeroshot",
                 "probes"):  # fmt: skip
        assert not pd.read_csv(out / f"{task}_phantom.csv").empty, task
    built = json.loads((out / "cxr_align_phantom.json").read_text())["phantom"]
    assert record["metrics"]["cxr_align_a"]["n"] == len(built)
    details = record["tasks"]["cxr_align_phantom"]["details"]
    assert details["entries_in_file"] == details["entries_scored"] == len(built)
    assert details["dropped_ids"] == [] and details["max_length"] > 0
    assert details["cases"] == len(built) and details["images"] >= len(built)
    assert set(pd.read_csv(out / "roc.csv")["task"]) == {"zeroshot_phantom"}
    assert "cxr_align_a" in capsys.readouterr().out
    check_per_case_results(out, record, read_manifest(tiny_prepared_phantom, split="test"))


IDS = ["patient_id", "study_id", "image_id"]
#: Per-case columns each task writes after the ids.
CASE_COLUMNS = {
    "cxr_align": ["case_id", "chosen", "sim_report", "sim_negation", "sim_omitted",
                  "correct_a", "correct_b"],
    "retrieval": ["paired_report", "retrieved_report", "retrieved_study_id", "rank", "hit_at_5"],
    "adversarial": ["kind", "positive", "adversarial", "true_right", "adversarial_right", "right"],
    "normal_detection": ["rank", "tied", "correct", "candidates"],
    "zeroshot": ["class", "label", "score"],
    "probes": ["setting", "class", "seed", "label", "score"],
}  # fmt: skip


def check_per_case_results(out, record, test):
    """Every task writes its cases with their ids, and they add up to the metrics."""
    metrics = record["metrics"]
    for task, columns in CASE_COLUMNS.items():
        assert record["tasks"][f"{task}_phantom"]["cases"] == f"{task}_phantom_cases.parquet"
        cases = pd.read_parquet(out / f"{task}_phantom_cases.parquet")
        assert list(cases.columns[:3]) == IDS and set(columns) <= set(cases.columns), task
        assert set(cases["image_id"]) <= set(test["image_id"].astype(str)), task
        rows = test.set_index(test["image_id"].astype(str)).loc[cases["image_id"]]
        assert list(rows["patient_id"].astype(str)) == list(cases["patient_id"]), task
        assert list(rows["study_id"].astype(str)) == list(cases["study_id"]), task
    align = pd.read_parquet(out / "cxr_align_phantom_cases.parquet")
    assert list(align["correct_a"]) == list(align["sim_report"] > align["sim_negation"])
    per_case = align.groupby("case_id")[["correct_a", "correct_b"]].mean()
    assert per_case["correct_a"].mean() == pytest.approx(metrics["cxr_align_a"]["value"])
    assert per_case["correct_b"].mean() == pytest.approx(metrics["cxr_align_b"]["value"])
    retrieval = pd.read_parquet(out / "retrieval_phantom_cases.parquet")
    assert len(retrieval) == len(test)
    assert retrieval["hit_at_5"].mean() == pytest.approx(metrics["retrieval_top5"]["value"])
    pairs = pd.read_parquet(out / "adversarial_phantom_cases.parquet")
    headline = pairs.loc[pairs["headline"], "right"].mean()  # ProbMed's pairs (paper protocol)
    assert headline == pytest.approx(metrics["adversarial_acc"]["value"])
    assert pairs["right"].mean() == pytest.approx(metrics["adversarial_acc_all"]["value"])
    trials = pd.read_parquet(out / "normal_detection_phantom_cases.parquet")
    assert trials["correct"].mean() == pytest.approx(metrics["normal_detection_acc"]["value"])
    scores = pd.read_parquet(out / "zeroshot_phantom_cases.parquet")
    assert len(scores) == len(test) * 13 and scores["score"].between(0, 1).all()
    probes = pd.read_parquet(out / "probes_phantom_cases.parquet")
    assert set(probes["setting"]) == {"ft10", "ft100"}
    assert len(probes) == len(test) * 13 * 4  # FT10 x 3 seeds, FT100 once


def test_a_second_run_reads_the_embedding_cache(tiny_run, tiny_prepared_phantom, tmp_path,
                                               monkeypatch):  # fmt: skip
    data = parse_data([f"phantom={tiny_prepared_phantom}"])
    first = evaluate_module.evaluate(tiny_run, data, ["retrieval"], out=tmp_path, progress=False)

    def fail(*args, **kwargs):
        raise AssertionError("the model ran although its embeddings are cached")

    monkeypatch.setattr(ClinicCLIP, "encode_image", fail)
    monkeypatch.setattr(evaluate_module.Clip2Clinic, "embed_texts", fail)
    again = evaluate_module.evaluate(tiny_run, data, ["retrieval"], out=tmp_path, progress=False)
    assert again["metrics"] == first["metrics"]
    assert set(again["metrics"]) >= {"retrieval_top5", "retrieval_r1"}


def test_reader_datasets_zero_shot_and_5x200(tiny_run, tmp_path):
    rsna = build_rsna(tmp_path / "rsna")
    write_detailed_classes(rsna)
    folder = build_chexpert(tmp_path / "chexpert")
    released = pd.read_csv(folder / "train.csv", dtype=str).iloc[[0, 1, 3, 4]]
    released.to_csv(tmp_path / "chexpert" / "chexpert_5x200.csv", index=False)
    data = parse_data([f"rsna={rsna}", f"chexpert5x200={tmp_path / 'chexpert'}"])
    record = evaluate_module.evaluate(
        tiny_run, data, parse_tasks("zeroshot,chexpert5x200,probes"), out=tmp_path / "e",
        progress=False,
    )  # fmt: skip
    metrics = record["metrics"]
    assert {"zeroshot_mean_auc/rsna", "zeroshot_mean_auc/rsna_ab", "zeroshot_mean_auc",
            "chexpert5x200_acc/chexpert5x200", "chexpert5x200_acc"} <= set(metrics)
    rsna_ab = pd.read_csv(tmp_path / "e" / "zeroshot_rsna_ab.csv")
    rsna_test = (pd.read_csv(tmp_path / "e" / "zeroshot_rsna.csv")["n"]).item()
    assert rsna_ab["n"].item() < rsna_test  # normal images are left out of RSNA-ab
    assert metrics["chexpert5x200_acc"]["n"] == 2  # the 2 of 4 listed images on disk
    assert metrics["chexpert5x200_acc"] == metrics["chexpert5x200_acc/chexpert5x200"]
    assert 0.0 <= metrics["chexpert5x200_acc"]["value"] <= 1.0
    table = pd.read_csv(tmp_path / "e" / "zeroshot_rsna.csv")
    assert list(table["class"]) == ["Pneumonia"]
    five = pd.read_parquet(tmp_path / "e" / "chexpert5x200_chexpert5x200_cases.parquet")
    assert len(five) == 2 and list(five.columns[:3]) == IDS
    assert five["correct"].mean() == metrics["chexpert5x200_acc"]["value"]
    assert list(five["correct"]) == list(five["class"] == five["predicted"])
    ab = pd.read_parquet(tmp_path / "e" / "zeroshot_rsna_ab_cases.parquet")
    assert (ab["label"].notna().sum()) == rsna_ab["n"].item()  # normal images: label NaN
    probes = pd.read_parquet(tmp_path / "e" / "probes_rsna_cases.parquet")  # the test images
    assert list(probes.columns[:3]) == IDS
    assert set(probes["image_id"]) == set(pd.read_parquet(
        tmp_path / "e" / "zeroshot_rsna_cases.parquet")["image_id"])  # fmt: skip


def write_detailed_classes(root):
    """RSNA's detailed class file: boxes -> Lung Opacity, else alternately not normal/normal."""
    labels = pd.read_csv(root / "stage_2_train_labels.csv").drop_duplicates("patientId")
    names = ["Lung Opacity" if t else ("Normal" if i % 2 else "No Lung Opacity / Not Normal")
             for i, t in enumerate(labels["Target"])]  # fmt: skip
    pd.DataFrame({"patientId": labels["patientId"], "class": names}).to_csv(
        root / "stage_2_detailed_class_info.csv", index=False
    )


def test_report_summarises_evaluated_runs(tiny_run, tiny_prepared_phantom, tmp_path):
    out = tmp_path / "results_summary.csv"
    assert main(["evaluate", "--checkpoint", str(tiny_run), "--data", str(tiny_prepared_phantom),
                 "--tasks", "cxr_align,retrieval", "--out", str(tmp_path / "ev"),
                 "--quiet"]) == 0  # fmt: skip
    assert main(["report", str(tmp_path / "ev" / "metrics.json"), "--out", str(out)]) == 0
    summary = pd.read_csv(out)
    assert list(summary["variant"]) == ["n"]
    assert {"cxr_align_a", "cxr_align_a_low", "retrieval_top5"} <= set(summary.columns)


def test_bad_arguments_are_clear_errors(tiny_run, capsys):
    with pytest.raises(InputError, match="unknown task 'zero'"):
        parse_tasks("zero,retrieval")
    assert main(["evaluate", "--checkpoint", str(tiny_run / "nope"), "--data", "x.parquet"]) == 2
    assert "no such checkpoint" in capsys.readouterr().err


def test_validation_split_for_choosing_settings(tiny_run, tiny_prepared_phantom, tmp_path):
    data = parse_data([f"phantom={tiny_prepared_phantom}"])
    record = evaluate_module.evaluate(tiny_run, data, parse_tasks("retrieval,probes"),
                                      out=tmp_path, progress=False,
                                      options=Options(split="validate"))
    assert record["split"] == "validate"
    assert "retrieval_top5" in record["metrics"]
    assert not any(name.startswith("probe") for name in record["metrics"])  # no test peeking


def manifest_copy(manifest, target, **columns):
    """A copy of ``manifest`` at ``target`` with the given string ``columns`` replaced (one
    value per row), sharing its image cache."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from clip2clinic.data.corpus import PreparedCorpus

    table = pq.read_table(manifest)
    for column, values in columns.items():
        index = table.schema.get_field_index(column)
        table = table.set_column(index, table.schema.field(index), pa.array(values, pa.string()))
    target.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, target)
    PreparedCorpus(target).cache.symlink_to(PreparedCorpus(manifest).cache,
                                            target_is_directory=True)
    return target


def manifest_with_more_test_rows(manifest, target):
    """A copy of ``manifest`` whose validate rows are test rows too (a larger test split)."""
    splits = pd.read_parquet(manifest, columns=["split"])["split"]
    return manifest_copy(manifest, target, split=["test" if s == "validate" else s
                                                  for s in splits])


def test_two_datasets_of_different_size_keep_both_datasets_metrics(tiny_run,
                                                                   tiny_prepared_phantom,
                                                                   tmp_path):  # fmt: skip
    large = manifest_with_more_test_rows(tiny_prepared_phantom, tmp_path / "big" / "m.parquet")
    data = parse_data([f"small={tiny_prepared_phantom}", f"large={large}"])
    tasks = parse_tasks("cxr_align,retrieval,adversarial,normal_detection,zeroshot")
    record = evaluate_module.evaluate(tiny_run, data, tasks, out=tmp_path / "e", progress=False)
    metrics = record["metrics"]
    for name in ("cxr_align_a", "cxr_align_b", "retrieval_top5", "retrieval_f1",
                 "adversarial_acc", "normal_detection_acc", "zeroshot_mean_auc"):  # fmt: skip
        small, big = metrics[f"{name}/small"], metrics[f"{name}/large"]
        assert small["n"] < big["n"], name  # each dataset's own cases, not the last one's
        headline = metrics[name]  # the aggregate: both datasets, each weighing the same
        assert headline["n"] == small["n"] + big["n"], name
        assert headline["value"] == pytest.approx((small["value"] + big["value"]) / 2), name
    saved = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert set(saved["metrics"]) == set(metrics)
    assert saved["tasks"]["retrieval_large"]["metrics"][0].endswith("/large")


def test_the_protocol_is_recorded_and_its_reader_choices_reach_the_cli(tiny_run, tmp_path):
    rsna = build_rsna(tmp_path / "rsna")
    write_detailed_classes(rsna)
    nih = build_nih(tmp_path / "nih")
    chosen = ["00000002_001.png", "00000011_000.png", "00000012_002.png", "00000012_001.png"]
    (tmp_path / "probmed.txt").write_text("\n".join(chosen) + "\n")
    siim = build_siim(tmp_path / "siim")
    out = tmp_path / "e"
    assert main(["evaluate", "--checkpoint", str(tiny_run), "--data", f"rsna={rsna}",
                 "--data", f"chestxray14:test_list={tmp_path / 'probmed.txt'}={nih}",
                 "--data", f"siim:split=dedup={siim}", "--tasks", "zeroshot,adversarial,probes",
                 "--out", str(out), "--quiet"]) == 0  # fmt: skip
    record = json.loads((out / "metrics.json").read_text())
    assert record["protocol"]["name"] == "paper" and record["protocol"]["prompts"] == "cxr_clip"
    tasks = record["tasks"]
    # RSNA and RSNA-ab: BioViL's pair, as CXR-CLIP's evaluator
    for name in ("zeroshot_rsna", "zeroshot_rsna_ab"):
        assert tasks[name]["protocol"]["classes"]["Pneumonia"] == {
            "positive": ["Findings suggesting pneumonia."],
            "negative": ["No evidence of pneumonia"]}, name  # fmt: skip
    assert tasks["zeroshot_chestxray14"]["protocol"]["classes"]["Effusion"] == {
        "positive": ["Effusion"], "negative": ["No Effusion"]}  # fmt: skip
    # ChestX-ray14: the supplied test list, stated; adversarial runs on it, ProbMed's headline
    adversarial = tasks["adversarial_chestxray14"]["protocol"]
    assert "probmed.txt (4 images)" in adversarial["source"]
    assert adversarial["headline"] == "hallucinated"
    pairs = pd.read_parquet(out / "adversarial_chestxray14_cases.parquet")
    assert set(pairs["image_id"]) <= set(chosen) and set(pairs["kind"]) <= {"negated",
                                                                          "hallucinated"}
    headline = pairs[pairs["kind"] == "hallucinated"]
    assert record["metrics"]["adversarial_acc/chestxray14"]["value"] == pytest.approx(
        headline["right"].mean())
    assert record["metrics"]["adversarial_acc/chestxray14"]["n"] <= len(headline)
    # the user's reader option overrides the protocol's (SIIM: GLoRIA's split by default)
    assert tasks["zeroshot_siim"]["protocol"]["reader_options"] == {"split": "dedup"}
    assert tasks["zeroshot_rsna"]["protocol"]["reader_options"] == {}
    # FT10/FT100 probes for RSNA-ab too (normal images left out)
    assert {"probe_ft10_mean_auc/rsna_ab", "probe_ft100_mean_auc/rsna_ab"} <= set(
        record["metrics"])
    probes_ab = pd.read_csv(out / "probes_rsna_ab.csv")
    assert set(probes_ab["class"]) == {"Pneumonia"}


def test_the_clip2clinic_protocol_keeps_todays_choices(tiny_run, tmp_path):
    siim = build_siim(tmp_path / "siim")
    options = Options(protocol=get_protocol("clip2clinic"))
    record = evaluate_module.evaluate(tiny_run, parse_data([f"siim={siim}"]), ["zeroshot"],
                                      out=tmp_path / "e", options=options, progress=False)
    assert record["protocol"]["name"] == "clip2clinic"
    used = record["tasks"]["zeroshot_siim"]["protocol"]
    assert used["reader_options"] == {"split": "dedup"} and used["prompts"] == "ensemble"
    assert len(used["classes"]["Pneumothorax"]["positive"]) == 4


def test_5x200_records_its_set_and_prompt_weights(tiny_run, tmp_path):
    folder = build_chexpert(tmp_path / "chexpert")
    released = pd.read_csv(folder / "train.csv", dtype=str).iloc[[0, 1, 3, 4]]
    released.to_csv(tmp_path / "chexpert" / "chexpert_5x200.csv", index=False)
    data = parse_data([f"chexpert5x200={tmp_path / 'chexpert'}"])
    for protocol, effusion in (("paper", 54), ("clip2clinic", 36)):
        record = evaluate_module.evaluate(tiny_run, data, ["chexpert5x200"],
                                          out=tmp_path / protocol, progress=False,
                                          options=Options(protocol=get_protocol(protocol)))
        notes = record["tasks"]["chexpert5x200_chexpert5x200"]["protocol"]
        assert notes["source"].startswith("released file") and "chexpert_5x200.csv" in notes[
            "source"]
        assert notes["n_prompts"]["Pleural Effusion"] == effusion
        assert "constants.py" in notes["prompt_source"]


def openi_manifest(manifest, target):
    """A copy of ``manifest`` that reads as an Open-i corpus, every third image lateral."""
    n = len(pd.read_parquet(manifest, columns=["split"]))
    return manifest_copy(manifest, target, dataset=["openi"] * n,
                         view=["Lateral" if i % 3 == 2 else "Frontal" for i in range(n)])


def test_openi_scores_every_frontal_pair_under_the_paper_protocol(tiny_run,
                                                                  tiny_prepared_phantom,
                                                                  tmp_path):  # fmt: skip
    manifest = openi_manifest(tiny_prepared_phantom, tmp_path / "openi" / "m.parquet")
    frame = pd.read_parquet(manifest)
    data = parse_data([f"openi={manifest}"])
    tasks = ["retrieval", "normal_detection", "zeroshot"]
    paper = evaluate_module.evaluate(tiny_run, data, tasks, out=tmp_path / "p", progress=False)
    ours = evaluate_module.evaluate(tiny_run, data, tasks, out=tmp_path / "o", progress=False,
                                    options=Options(protocol=get_protocol("clip2clinic")))
    frontal = frame[frame["view"] == "Frontal"]
    assert paper["metrics"]["retrieval_top5/openi"]["n"] == len(frontal)
    assert paper["tasks"]["retrieval_openi"]["protocol"] == {
        "openi_pairs": "all_frontal", "pairs": len(frontal), "labeler": "manifest"}
    assert ours["metrics"]["retrieval_top5/openi"]["n"] == int((frame["split"] == "test").sum())
    cases = pd.read_parquet(tmp_path / "p" / "retrieval_openi_cases.parquet")
    assert set(cases["image_id"]) == set(frontal["image_id"])
    assert paper["tasks"]["normal_detection_openi"]["protocol"]["k_protocol"] == 2999
    # zero-shot is not a pair task: it keeps the test split, laterals included
    assert (paper["metrics"]["zeroshot_mean_auc/openi"]["n"]
            == ours["metrics"]["zeroshot_mean_auc/openi"]["n"])  # fmt: skip


def test_retrieval_labels_from_chexbert(tiny_run, tiny_prepared_phantom, tmp_path):
    from clip2clinic.evaluation.retrieval import _label_scores
    from clip2clinic.reports.labeler import get_labeler

    checkpoint, _ = write_tiny_chexbert(tmp_path / "chexbert")
    out = tmp_path / "e"
    assert main(["evaluate", "--checkpoint", str(tiny_run), "--data",
                 f"phantom={tiny_prepared_phantom}", "--tasks", "retrieval", "--labeler",
                 "chexbert", "--chexbert-checkpoint", str(checkpoint), "--out", str(out),
                 "--quiet"]) == 0  # fmt: skip
    record = json.loads((out / "metrics.json").read_text())
    assert record["protocol"]["labeler"] == "chexbert"
    assert record["tasks"]["retrieval_phantom"]["protocol"]["labeler"] == f"chexbert {checkpoint}"
    # the label scores are those of CheXbert's labels of the paired and retrieved reports
    test = read_manifest(tiny_prepared_phantom, split="test")
    studies = test.drop_duplicates("study_id").reset_index(drop=True)
    labels = get_labeler("chexbert", str(checkpoint)).label_many(studies["report"]).to_numpy()
    cases = pd.read_parquet(out / "retrieval_phantom_cases.parquet")
    paired = labels[cases["paired_report"]] == 1
    retrieved = labels[cases["retrieved_report"]] == 1
    precision, recall, f1 = _label_scores(paired, retrieved)
    assert cases["f1"].to_numpy() == pytest.approx(f1)
    assert cases["precision"].to_numpy() == pytest.approx(precision)
    assert record["metrics"]["retrieval_f1"]["value"] == pytest.approx(f1.mean())
    assert main(["evaluate", "--checkpoint", str(tiny_run), "--data",
                 f"phantom={tiny_prepared_phantom}", "--labeler", "chexbert"]) == 2


def test_embedding_options_reach_the_loader_and_keep_the_numbers(tiny_run, tiny_prepared_phantom,
                                                                 tmp_path, capsys):  # fmt: skip
    common = ["evaluate", "--checkpoint", str(tiny_run), "--data",
              f"phantom={tiny_prepared_phantom}", "--tasks", "retrieval", "--quiet"]  # fmt: skip
    assert main([*common, "--out", str(tmp_path / "a")]) == 0
    assert main([*common, "--out", str(tmp_path / "b"), "--workers", "2", "--batch-size", "3",
                 "--precision", "fp32"]) == 0  # fmt: skip
    first, second = (json.loads((tmp_path / x / "metrics.json").read_text()) for x in "ab")
    for name, metric in first["metrics"].items():
        assert second["metrics"][name] == pytest.approx(metric, abs=1e-6), name
    capsys.readouterr()
    assert main([*common, "--out", str(tmp_path / "c"), "--precision", "fp8"]) == 2
    assert "--precision: 'fp8'" in capsys.readouterr().err


def test_a_released_style_cxr_align_file_counts_scored_and_dropped_entries(
    tiny_run, tiny_prepared_phantom, tmp_path
):
    test = read_manifest(tiny_prepared_phantom, split="test")
    benchmark = build_cxr_align(test, "mimic")
    kept = next(iter(benchmark["mimic"].values()))
    benchmark["mimic"]["not-here"] = {**kept, "image_ids": ["nope"], "image_paths": ["x.jpg"]}
    benchmark["mimic"]["dicom-1"] = {k: kept[k] for k in ("chosen", "report", "negation",
                                                         "omitted")}  # fmt: skip
    save_cxr_align(benchmark, tmp_path / "released.json")
    data = parse_data([f"phantom={tiny_prepared_phantom}", f"phantom={tmp_path / 'released.json'}"])
    record = evaluate_module.evaluate(tiny_run, data, ["cxr_align"], out=tmp_path / "e",
                                      progress=False)  # fmt: skip
    details = json.loads((tmp_path / "e" / "metrics.json").read_text())["tasks"][
        "cxr_align_phantom"]["details"]  # fmt: skip
    assert details["file"] == str(tmp_path / "released.json")
    assert details["entries_in_file"] == len(benchmark["mimic"])
    assert details["entries_scored"] == len(benchmark["mimic"]) - 2
    assert details["dropped_ids"] == ["mimic/dicom-1", "mimic/not-here"]
    assert record["metrics"]["cxr_align_a"]["n"] == details["entries_scored"]
