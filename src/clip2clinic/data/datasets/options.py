"""Reader options given on the command line: ``KEY=VALUE[,KEY=VALUE]`` (``evaluate --data
READER:KEY=VALUE=ROOT``, ``prepare --reader-option KEY=VALUE``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from clip2clinic.io import InputError


def parse_reader_options(items: Iterable[str], where: str) -> dict[str, Any]:
    """Reader options from ``KEY=VALUE`` items (each may hold several, comma-separated):
    integers and decimals as numbers, ``a|b`` as a list, ``none`` as None, anything else as
    text (``split=gloria``, ``test_list=/data/probmed.txt``). ``where`` names the option in
    errors."""
    options: dict[str, Any] = {}
    for text in items:
        for item in filter(None, (part.strip() for part in text.split(","))):
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise InputError(f"{where}: reader option {item!r} is not KEY=VALUE")
            options[key.strip()] = _option_value(value.strip())
    return options


def _option_value(value: str) -> Any:
    if value.lower() == "none":
        return None
    if "|" in value:
        return [v for v in value.split("|") if v]
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value
