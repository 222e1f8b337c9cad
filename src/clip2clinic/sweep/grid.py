"""The grid of a sweep: ``--grid KEY=V1,V2`` options → named settings (lists of ``--set``
overrides), in a stable order."""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from clip2clinic.io import InputError


@dataclass(frozen=True)
class Setting:
    """One point of the grid: its ``key=value`` overrides and a folder-safe name."""

    overrides: tuple[str, ...]

    @property
    def name(self) -> str:
        """``clinical_encoding-signed__thresholds.t-0.9`` (the ``loss.`` prefix dropped)."""
        parts = []
        for override in self.overrides:
            key, _, value = override.partition("=")
            key = key.removeprefix("loss.")
            parts.append(f"{key}-{value}")
        return re.sub(r"[^A-Za-z0-9._-]+", "_", "__".join(parts)) or "default"

    @property
    def label(self) -> str:
        """The overrides as a reader sees them in tables and plots."""
        return ", ".join(o.removeprefix("loss.") for o in self.overrides) or "(defaults)"


def split_values(text: str) -> list[str]:
    """``a,b,[1, 2],{t: 1, c: 0.5}`` → the four values: commas inside brackets or braces
    do not split."""
    values, depth, current = [], 0, ""
    for char in text:
        if char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        if char == "," and depth == 0:
            values.append(current.strip())
            current = ""
        else:
            current += char
    values.append(current.strip())
    return [v for v in values if v]


def parse_grid(specs: Sequence[str]) -> list[Setting]:
    """The cartesian product of ``KEY=V1,V2,...`` specs (keys as ``--set`` takes them), in the
    order given; no spec gives one setting, the defaults."""
    axes = []
    for spec in specs:
        key, sep, text = spec.partition("=")
        key = key.strip()
        values = split_values(text)
        if not sep or not key or not values:
            raise InputError(f"--grid {spec!r}: expected KEY=V1,V2,... (e.g. "
                             "loss.clinical_encoding=binary,signed)")
        if key in (k for k, _ in axes):
            raise InputError(f"--grid: {key} is given twice")
        axes.append((key, values))
    return [Setting(tuple(f"{key}={value}" for (key, _), value in zip(axes, combo, strict=True)))
            for combo in itertools.product(*(values for _, values in axes))]
