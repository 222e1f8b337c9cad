"""kill -9 at a random point of ``prepare``, ``train`` and the text commands, then the same command
again: the outputs equal those of an uninterrupted run, and no temporary file is left behind.
The kill times are drawn from a seeded generator (``CLIP2CLINIC_KILL_SEED`` to vary them)."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from clip2clinic.data.corpus import PreparedCorpus
from clip2clinic.data.manifest import read_manifest
from clip2clinic.run_dir import RunDir
from tests.training_fixtures import tiny_config_file

pytestmark = [pytest.mark.faults, pytest.mark.slow]

RANDOM = random.Random(int(os.environ.get("CLIP2CLINIC_KILL_SEED", "15")))


def clip2clinic(*args: str) -> list[str]:
    return [sys.executable, "-m", "clip2clinic", *map(str, args)]


def timed(command: list[str], cwd: Path) -> float:
    """Run ``command`` to the end; its wall time in seconds."""
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, timeout=600, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def killed_then_rerun(command: list[str], took: float, cwd: Path,
                      ready: Callable[[], bool] | None = None,
                      finished: Callable[[], bool] | None = None) -> None:
    """Start ``command`` and SIGKILL it at a random point, then run it again to the end.

    The point is 20-90% of ``took`` (its uninterrupted wall time), or, with ``ready``, a
    random fraction of a second after ``ready()`` turns true. A run that ends before its kill
    (a loaded machine) is tried again with half the delay, up to four times. ``finished``:
    true when the killed run had already written its last output (then it is not re-run)."""
    fraction = RANDOM.uniform(0.2, 0.9)
    for _ in range(4):
        process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        deadline = time.perf_counter() + fraction * took
        while process.poll() is None and not (ready() if ready else
                                              time.perf_counter() >= deadline):
            time.sleep(0.02)
        if ready is not None:
            time.sleep(RANDOM.uniform(0.0, 0.3))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait()
            break
        fraction /= 2
    else:
        pytest.fail("the command always finished before it could be killed")
    if finished is None or not finished():  # killed after its last write: nothing to redo
        timed(command, cwd)


def same_tensors(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def temp_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp") or p.name.startswith(".tmp-")]


@pytest.mark.parametrize("command", ["label", "graph", "negate", "clean"])
def test_text_command_killed_and_rerun_writes_the_same_output(command, tmp_path, shared_data):
    reports = pd.read_csv(shared_data / "iu_xray" / "indiana_reports.csv", dtype=str)
    source = tmp_path / "reports.csv"
    pd.concat([reports] * 3, ignore_index=True).assign(
        uid=lambda f: range(len(f))).to_csv(source, index=False)
    text = ["--format", "iu"] if command == "clean" else ["--text-column", "findings"]
    args = [command, source, *text, "--id-column", "uid", "--output"]
    took = timed(clip2clinic(*args, tmp_path / "reference.out"), tmp_path)
    output = tmp_path / "out" / "result.out"
    killed_then_rerun(clip2clinic(*args, output), took, tmp_path)
    assert output.read_bytes() == (tmp_path / "reference.out").read_bytes()
    assert temp_files(tmp_path) == []


def test_prepare_killed_and_rerun_gives_the_same_corpus(tiny_prepared_phantom, tmp_path):
    """(The session's phantom is only read: both runs prepare it afresh.)"""
    root = tiny_prepared_phantom.parent.parent / "phantom"

    def command(manifest: Path) -> list[str]:
        return clip2clinic("prepare", "mimic", "--root", root, "--out", manifest,
                           "--image-size", 64, "--workers", 1)

    reference = tmp_path / "reference" / "manifest.parquet"
    took = timed(command(reference), tmp_path)
    manifest = tmp_path / "prepared" / "manifest.parquet"
    killed_then_rerun(command(manifest), took, tmp_path)
    pd.testing.assert_frame_equal(read_manifest(manifest), read_manifest(reference))
    expected, cache = PreparedCorpus(reference).cache, PreparedCorpus(manifest).cache
    assert (cache / "graph_nodes.json").read_bytes() == (expected / "graph_nodes.json").read_bytes()
    for name in ("text_features.safetensors", "text_tokens.safetensors"):
        # safetensors writes its header's metadata in a per-process order: compare contents
        assert same_tensors(load_file(cache / name), load_file(expected / name)), name
    assert temp_files(tmp_path) == []


def test_train_killed_and_rerun_gives_the_same_weights(tiny_prepared_phantom, tmp_path):
    config = tiny_config_file(tmp_path / "config")
    manifest = tmp_path / "prepared" / tiny_prepared_phantom.name
    shutil.copytree(tiny_prepared_phantom.parent, manifest.parent)

    def command(out: Path) -> list[str]:
        return clip2clinic("train", "--variant", "n_g_dtcg", "--config", config, "--manifest",
                           manifest, "--out", out, "--set", "train.checkpoint_every=1",
                           "--set", "model.text.head.dropout=0.3")

    took = timed(command(tmp_path / "reference"), tmp_path)
    steps = [step for step, _ in RunDir(tmp_path / "reference").step_checkpoints()]
    checkpoints = tmp_path / "run" / "checkpoints"
    kill_after = RunDir(tmp_path / "run").step(RANDOM.choice(steps[:-2]))
    killed_then_rerun(command(tmp_path / "run"), took, tmp_path, ready=kill_after.is_dir,
                      finished=(checkpoints / "final").is_dir)  # a finished run is not redone
    final = load_file(tmp_path / "run" / "checkpoints" / "final" / "model.safetensors")
    expected = load_file(tmp_path / "reference" / "checkpoints" / "final" / "model.safetensors")
    assert same_tensors(final, expected)
    assert temp_files(tmp_path / "run") == []
