"""Reading the rule data files that ship beside the text modules (labeler, cleanup)."""

from __future__ import annotations

from pathlib import Path


def read_lines(path: Path) -> list[str]:
    """Non-empty, non-comment lines of a data file (missing file: no lines)."""
    if not path.is_file():
        return []
    lines = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            lines.append(line)
    return lines
