"""The bundled presets and variants (YAML files in ``presets/`` and ``variants/`` beside this
module, read with :mod:`importlib.resources`) and how to find them: the one registry of
variant and preset names. Import-light, so that the CLI and ``report`` stay fast."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from clip2clinic.io import InputError

KINDS = ("preset", "variant")
#: The reproduction's table order (reference/reproduction_model_card.md), SoftCLIP last; a
#: variant file not listed here comes after these, by name.
TABLE_ORDER: tuple[str, ...] = (
    "baseline", "dt", "dt_c", "n", "n_dt_c", "g", "g_dtcg", "n_g_dtcg", "softclip",
)  # fmt: skip


def configs_dir() -> Path:
    """The folder of the presets and variants: ``$CLIP2CLINIC_CONFIGS`` or the package data
    folder ``clip2clinic/configs`` (``presets/``, ``variants/``)."""
    env = os.environ.get("CLIP2CLINIC_CONFIGS")
    if env:
        return Path(env)
    bundled = resources.files("clip2clinic") / "configs"
    if not isinstance(bundled, Path):  # a zipped install; pip always installs files
        raise InputError(f"bundled configs are not a folder ({bundled}); set CLIP2CLINIC_CONFIGS")
    return bundled


def names(kind: str) -> tuple[str, ...]:
    """The names of the ``kind`` files (preset or variant), variants in :data:`TABLE_ORDER`."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    folder = configs_dir() / f"{kind}s"
    found = [p.stem for p in folder.glob("*.yaml")] if folder.is_dir() else []
    return tuple(sorted(found, key=table_position))


def variants() -> tuple[str, ...]:
    """Every variant a file defines, in the reproduction's table order."""
    return names("variant")


def table_position(variant: str) -> tuple[int, str]:
    """Sort key of a variant name: its row in :data:`TABLE_ORDER`, unknown names after."""
    known = variant in TABLE_ORDER
    return (TABLE_ORDER.index(variant) if known else len(TABLE_ORDER), variant)


def named_config(kind: str, name: str) -> Path:
    """The bundled ``<kind>s/<name>.yaml`` of :func:`configs_dir` (kind: preset or variant)."""
    path = configs_dir() / f"{kind}s" / f"{name}.yaml"
    if not path.is_file():
        choices = sorted(names(kind))
        raise InputError(f"{kind} {name!r}: no {path}; known {kind}s: {choices or 'none found'}")
    return path
