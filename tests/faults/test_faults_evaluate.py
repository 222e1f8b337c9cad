"""``evaluate`` never silently wrong: a run without a final checkpoint is refused unless
``--allow-partial`` (then its newest step is scored, with a warning), and one task's failure is
reported (exit 1, ``failed`` in metrics.json) while the other tasks' results are written."""

from __future__ import annotations

import json

import pytest

from clip2clinic.cli import main
from clip2clinic.evaluation import evaluate as evaluate_module
from clip2clinic.evaluation.tasks import Task
from clip2clinic.training.trainer import train
from tests.training_fixtures import tiny_config

pytestmark = pytest.mark.faults


@pytest.fixture(scope="module")
def unfinished_run(tiny_prepared_phantom, tmp_path_factory):
    folder = tmp_path_factory.mktemp("unfinished")
    train(tiny_config(folder, tiny_prepared_phantom, "baseline", "train.stop_after_steps=2",
                      "train.checkpoint_every=1"))
    return folder / "run"


def evaluate_args(run, manifest, *more: str) -> list[str]:
    return ["evaluate", "--checkpoint", str(run), "--data", f"phantom={manifest}", "--quiet",
            "--n-boot", "20", *more]


def test_a_run_without_final_checkpoint_needs_allow_partial(unfinished_run,
                                                            tiny_prepared_phantom, capsys):
    args = evaluate_args(unfinished_run, tiny_prepared_phantom, "--tasks", "cxr_align")
    assert main(args) == 2
    assert "no final checkpoint" in capsys.readouterr().err
    assert main([*args, "--allow-partial"]) == 0
    record = json.loads((unfinished_run / "evaluation" / "metrics.json").read_text())
    assert record["checkpoint"].endswith("step-000002")


def test_one_failing_task_is_reported_and_the_others_written(unfinished_run,
                                                             tiny_prepared_phantom,
                                                             monkeypatch, tmp_path, capsys):
    def broken(corpus, context):
        raise ValueError("a bug in this task")
        yield  # a generator, like every runner

    tasks = {task.name: task for task in evaluate_module.REGISTRY}
    monkeypatch.setattr(evaluate_module, "REGISTRY", (
        tasks["cxr_align"], Task("retrieval", on_corpus=broken), tasks["normal_detection"]))
    out = tmp_path / "evaluation"
    args = evaluate_args(unfinished_run, tiny_prepared_phantom, "--allow-partial", "--tasks",
                         "cxr_align,retrieval,normal_detection", "--out", str(out))
    assert main(args) == 1
    assert "retrieval on phantom: ValueError: a bug in this task" in capsys.readouterr().err
    record = json.loads((out / "metrics.json").read_text())
    assert record["failed"] == {"retrieval on phantom": "ValueError: a bug in this task"}
    assert "cxr_align_a" in record["metrics"] and "normal_detection_acc" in record["metrics"]
    assert (out / "cxr_align_phantom.csv").is_file()
    assert (out / "normal_detection_phantom.csv").is_file()
