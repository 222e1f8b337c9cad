"""The one engine behind the package's typed configs (training and model): dataclass trees
built from plain data (YAML, ``config.json``, ``--set`` overrides) with errors that name the key
(``optim.lr_heads: expected a number, got 'fast'``), and turned back into plain data.

A field's annotation is its schema: dataclasses nest, ``X | None`` may be null, ``list[X]``,
``tuple[X, ...]`` (a YAML/JSON list) and ``dict[str, X]`` are checked item by item, and numbers
are never parsed from strings. Each dataclass's ``__post_init__`` then checks ranges and choices
(:func:`check_choice`). pydantic could validate the same annotations, but it would change
every message users see and would need lax mode to take YAML lists as tuples, which also turns
"1" into 1; this engine is sixty lines.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from clip2clinic.io import InputError


def build(cls: type, data: Any, where: str = "") -> Any:
    """A ``cls`` dataclass from a mapping, checking keys and value types against its
    annotations; InputError names the key (``where`` prefixes it, e.g. "model")."""
    if not isinstance(data, Mapping):
        raise InputError(f"{where or 'config'}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise InputError(f"{where or 'config'}: unknown key(s) {unknown}; known: {sorted(known)}")
    kwargs = {}
    for name, value in data.items():
        key = f"{where}.{name}" if where else name
        kwargs[name] = check_type(value, hints[name], key)
    return cls(**kwargs)


def check_type(value: Any, hint: Any, key: str) -> Any:
    """``value`` checked against the annotation ``hint`` (dataclasses built, lists of a tuple
    field made tuples); InputError naming ``key`` when it does not fit."""
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return value if isinstance(value, hint) else build(hint, value, key)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return check_type(value, inner, key)
    if hint is Any:
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise InputError(f"{key}: expected a list, got {value!r}")
        items = [check_type(v, args[0], f"{key}[{i}]") for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin is dict:
        if not isinstance(value, Mapping):
            raise InputError(f"{key}: expected a mapping, got {value!r}")
        return {str(k): check_type(v, args[1], f"{key}.{k}") for k, v in value.items()}
    return _check_scalar(value, hint, key)


def _check_scalar(value: Any, hint: Any, key: str) -> Any:
    if hint is bool:
        if not isinstance(value, bool):
            raise InputError(f"{key}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(f"{key}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InputError(f"{key}: expected a number, got {value!r}")
        if not math.isfinite(value):
            raise InputError(f"{key}: expected a finite number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise InputError(f"{key}: expected a string, got {value!r}")
        return value
    raise TypeError(f"{key}: unsupported annotation {hint!r}")  # a bug in a config class


def plain(value: Any) -> Any:
    """Dataclasses, mappings and sequences as plain dicts and lists (JSON and
    ``yaml.safe_dump`` friendly)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain(dataclasses.asdict(value))
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def check_choice(where: str, value: str, choices: Sequence[str]) -> None:
    """InputError naming ``where`` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise InputError(f"{where}: {value!r} is not one of {', '.join(choices)}")
