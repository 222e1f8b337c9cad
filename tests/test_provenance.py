"""Provenance records: versions, the code's git commit, data hashes, seed and device, in a
training run's config.yaml (tests/test_training_run_log.py) and an evaluation's metrics.json."""

from __future__ import annotations

import hashlib
import json
import subprocess

import pytest

from clip2clinic.evaluation.evaluate import evaluate
from clip2clinic.evaluation.sources import DataSources
from clip2clinic.provenance import file_sha256, git_commit, provenance
from clip2clinic.training.trainer import train
from tests.training_fixtures import tiny_config


def test_file_sha256_matches_hashlib(tmp_path):
    path = tmp_path / "manifest.parquet"
    path.write_bytes(b"x" * (3 << 20) + b"tail")
    assert file_sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest()


def test_git_commit_of_a_checkout_and_of_a_folder_outside_one(tmp_path):
    assert git_commit(tmp_path) is None  # not a checkout
    repo = tmp_path / "repo"
    (repo / "pkg").mkdir(parents=True)
    (repo / "pkg" / "code.py").write_text("x = 1\n")
    (repo / "untracked").mkdir()

    def git(*args):
        return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                              text=True).stdout.strip()

    try:
        git("init", "-q")
        git("add", "pkg")
        git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "one")
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("git is not usable here")
    assert git_commit(repo / "pkg") == {"commit": git("rev-parse", "HEAD"), "dirty": False}
    (repo / "pkg" / "code.py").write_text("x = 2\n")
    assert git_commit(repo / "pkg")["dirty"] is True
    # an installed package inside some repository is not that repository's code
    assert git_commit(repo / "untracked") is None


def test_provenance_leaves_out_what_it_does_not_know(tmp_path):
    record = provenance({"train": tmp_path / "missing.parquet"})
    assert {"time", "versions"} <= set(record)
    assert not {"manifests", "seed", "device"} & set(record)


def test_metrics_json_records_the_evaluation_provenance(tiny_prepared_phantom, tmp_path):
    train(tiny_config(tmp_path, tiny_prepared_phantom, "baseline", "train.epochs=1"))
    evaluate(tmp_path / "run", DataSources(manifests={"phantom": tiny_prepared_phantom}),
             tasks=("retrieval",), progress=False)
    record = json.loads((tmp_path / "run" / "evaluation" / "metrics.json").read_text())
    provenance = record["provenance"]
    assert provenance["manifests"]["phantom"]["sha256"] == file_sha256(tiny_prepared_phantom)
    assert (provenance["seed"], provenance["device"]) == (0, "cpu")
    assert provenance["versions"]["torch"] and provenance["versions"]["transformers"]
