"""RunDir / EvaluationDir: the one owner of a run's layout."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from clip2clinic.io import InputError
from clip2clinic.run_dir import EvaluationDir, RunDir

SRC = Path(__file__).resolve().parents[1] / "src" / "clip2clinic"


def _checkpoint(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"x")
    (folder / "config.json").write_text("{}")
    return folder


def test_steps_sorted_and_newest_checkpoint_prefers_final(tmp_path):
    run = RunDir(tmp_path / "run")
    assert run.step_checkpoints() == [] and run.newest_checkpoint() is None
    for step in (200, 10):
        _checkpoint(run.step(step))
    (run.step(300)).mkdir()  # incomplete: no files
    (run.checkpoints / "step-abc").mkdir()  # not a step folder
    assert [s for s, _ in run.step_checkpoints()] == [10, 200, 300]
    assert run.newest_checkpoint() == run.step(200)
    assert not run.finished
    _checkpoint(run.final)
    assert run.finished and run.newest_checkpoint() == run.final
    run.prune(keep_last=1)
    assert [s for s, _ in run.step_checkpoints()] == [300]


def test_identity_from_config_else_folder_name(tmp_path):
    run = RunDir(tmp_path / "n_dt_c-seed2")
    run.path.mkdir()
    assert run.identity() == {"run": str(run.path), "variant": "n_dt_c-seed2", "seed": None,
                              "image_size": None}
    run.config_file.write_text("variant: n\ntrain: {seed: 3}\ndata: {image_size: 96}\n")
    assert run.identity()["variant"] == "n" and run.identity()["seed"] == 3
    assert run.identity()["image_size"] == 96
    assert RunDir.containing(run.final) == run
    assert RunDir.containing(tmp_path / "loose_checkpoint") is None


def test_read_config_errors_name_the_file(tmp_path):
    with pytest.raises(InputError, match="not a clip2clinic run directory"):
        RunDir(tmp_path).read_config()
    (tmp_path / "config.yaml").write_text("a: [unclosed\n")
    with pytest.raises(InputError, match="config.yaml: unreadable"):
        RunDir(tmp_path).read_config()


def test_evaluation_dir_of_run_folder_or_file(tmp_path):
    run = RunDir(tmp_path / "run")
    _checkpoint(run.final)
    assert EvaluationDir.of(run.path) == run.evaluation
    assert run.evaluation_of("test") == run.evaluation
    assert run.evaluation_of("validate").path.name == "evaluation_validate"
    run.evaluation.path.mkdir()
    run.evaluation.metrics_file.write_text("{}")
    assert run.evaluation.done
    assert EvaluationDir.of(run.evaluation.metrics_file) == run.evaluation
    assert EvaluationDir.of(run.evaluation.path) == run.evaluation
    copied = tmp_path / "copied_results"  # an evaluate --out folder, outside any run
    copied.mkdir()
    (copied / "metrics.json").write_text("{}")
    assert EvaluationDir.of(copied).path == copied


def test_no_other_module_spells_a_file_inside_a_run():
    """The run's file names appear as string literals only in run_dir.py."""
    owned = {"config.yaml", "checkpoints", "final", "metrics.json", "roc.csv", "evaluation",
             "logs", "metrics.csv",
             "evaluation_validate", "_cases.parquet"}
    found = []
    for path in SRC.rglob("*.py"):
        if path.name == "run_dir.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and node.value in owned:
                found.append(f"{path.relative_to(SRC)}:{node.lineno} {node.value!r}")
    assert not found, "run layout spelled outside run_dir.py: " + ", ".join(found)
