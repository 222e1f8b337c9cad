"""Where a result came from: package versions, the code's git commit, the data's hash, the
device. Recorded in a run's ``config.yaml`` (training) and in ``metrics.json`` (evaluation)."""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
from collections.abc import Mapping
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import clip2clinic

#: Distributions whose versions decide a result.
PACKAGES = ("clip2clinic", "torch", "transformers", "accelerate")
_CHUNK = 1 << 20


def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of a file's bytes, read in chunks (a corpus manifest may be large)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def package_versions() -> dict[str, str | None]:
    """Installed versions of :data:`PACKAGES` (the imported clip2clinic's own for it)."""
    versions: dict[str, str | None] = {"clip2clinic": clip2clinic.__version__}
    for name in PACKAGES[1:]:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    versions["python"] = platform.python_version()
    return versions


def git_commit(folder: str | os.PathLike | None = None) -> dict[str, Any] | None:
    """``{"commit", "dirty"}`` of the git checkout whose tracked files hold ``folder``
    (default: this package's source), or None when the code does not run from a checkout (an
    installed package, even inside some repository, has untracked files) or git is missing."""
    folder = Path(folder) if folder is not None else Path(clip2clinic.__file__).parent

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(folder), *args], capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()

    try:
        if not git("ls-files", "--", "."):
            return None
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no", "--", "."))
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": dirty}


def provenance(manifests: Mapping[str, str | os.PathLike] | None = None,
               seed: int | None = None, device: str | None = None,
               processes: int | None = None) -> dict[str, Any]:
    """A plain (YAML/JSON friendly) record: UTC time, package versions, the git commit of
    the code when run from a checkout, the SHA-256 of each manifest (name -> path), the seed,
    the device and the number of processes (None fields are left out)."""
    record: dict[str, Any] = {
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": package_versions(),
        "git": git_commit(),
        "manifests": {name: {"path": str(path), "sha256": file_sha256(path)}
                      for name, path in (manifests or {}).items() if Path(path).is_file()},
        "seed": seed,
        "device": device,
        "processes": processes,
    }
    return {key: value for key, value in record.items() if value not in (None, {})}


def device_name(device: Any) -> str:
    """``cpu``, or ``cuda:0 (NVIDIA H200)`` for a GPU: the device and what it is."""
    import torch

    device = torch.device(device)
    if device.type == "cuda" and torch.cuda.is_available():
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)
