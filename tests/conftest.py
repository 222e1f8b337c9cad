"""Shared fixtures. ``shared_data`` is the real data beside the checkout (../shared/data);
tests that need it skip with a clear reason where it is absent (a user's clone)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("CLIP2CLINIC_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to ../shared/data; skips the test where it is not beside the checkout."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA} (set CLIP2CLINIC_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def bad_inputs(shared_data: Path) -> Path:
    """The fault corpus of ../shared/data/bad_inputs."""
    return shared_data / "bad_inputs"


@pytest.fixture(scope="session")
def tiny_prepared_phantom(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A prepared 40-study phantom (64 px images, MiniLM token ids and features, graphs):
    the manifest path. Built once per session for the training tests."""
    from clip2clinic.data.prepare import PrepareOptions, prepare
    from clip2clinic.phantom import generate_phantom

    root = tmp_path_factory.mktemp("tiny_phantom")
    generate_phantom(root / "phantom", studies=40, image_size=64, seed=5)
    manifest = root / "prepared" / "manifest.parquet"
    prepare(PrepareOptions("mimic", str(root / "phantom"), str(manifest), image_size=64,
                           workers=1))
    return manifest


@pytest.fixture(scope="session")
def tiny_run(tiny_prepared_phantom: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1-epoch run of variant ``n`` on :func:`tiny_prepared_phantom`: the run folder. Tests
    evaluate it into their own ``tmp_path`` (only the evaluate module's first test writes the
    run's default ``evaluation/``)."""
    from clip2clinic.training.trainer import train
    from tests.training_fixtures import tiny_config

    folder = tmp_path_factory.mktemp("tiny_run")
    train(tiny_config(folder, tiny_prepared_phantom, "n", "train.epochs=1"))
    return folder / "run"


@pytest.fixture
def refused_connections(monkeypatch: pytest.MonkeyPatch) -> list:
    """Every outgoing socket connection is recorded and refused: the list of addresses tried."""
    import socket

    attempts: list = []

    def refuse(self, address):
        attempts.append(address)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    return attempts
