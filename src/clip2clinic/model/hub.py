"""Where a saved ClinicCLIP comes from: a local folder, or a Hugging Face Hub repository.

A hub id (``org/name``) is fetched with :func:`huggingface_hub.snapshot_download`, which keeps
the Hub cache layout (``models--org--name/snapshots/<revision>/``; ``cache_dir``, else
``HF_HUB_CACHE`` as huggingface_hub reads it). Only ``config.json``, ``model.safetensors`` and
the model card are fetched: pickled weights are never downloaded, let alone loaded. With
``HF_HUB_OFFLINE`` set (read at each call) or ``local_files_only``, only the cache is read.
"""

from __future__ import annotations

import os
from pathlib import Path

from clip2clinic.embedded import hub_offline, is_hub_id
from clip2clinic.io import InputError

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "README.md"
#: The files of a checkpoint a download may fetch.
CHECKPOINT_FILES = (CONFIG_NAME, WEIGHTS_NAME, CARD_NAME)


def checkpoint_folder(
    name_or_path: str | os.PathLike,
    *,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
    token: str | bool | None = None,
    force_download: bool = False,
) -> Path:
    """The local folder of a checkpoint named by a folder path or a hub id (downloaded into the
    Hub cache unless offline). Raises InputError naming it when it cannot be had."""
    path = Path(name_or_path)
    if path.is_dir():
        return path
    name = str(name_or_path)
    if not is_hub_id(name) or path.exists():
        raise InputError(f"{name}: no such checkpoint folder, and not a hub id (org/name)")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    offline = local_files_only or hub_offline()
    try:
        folder = snapshot_download(
            name, revision=revision, cache_dir=cache_dir, local_files_only=offline,
            token=token, force_download=force_download, allow_patterns=list(CHECKPOINT_FILES),
            library_name="clip2clinic",
        )  # fmt: skip
    except LocalEntryNotFoundError:
        why = "HF_HUB_OFFLINE is set" if hub_offline() else "local_files_only"
        raise InputError(
            f"{name}: not in the local Hugging Face cache ({why}); download it first "
            f"(huggingface-cli download {name}) or give a local folder"
        ) from None
    except (HfHubHTTPError, OSError) as exc:
        raise InputError(f"{name}: no such folder, and cannot fetch it from the Hugging Face "
                         f"Hub ({exc})") from None
    return Path(folder)
