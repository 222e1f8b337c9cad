"""Data flows one way through the package (docs/architecture.md):

reports -> data (prepare) -> model -> training -> run dir -> evaluation -> report, with the
inference API reading checkpoints. A module never imports from a stage downstream of it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "clip2clinic"

#: package -> the packages it must not import (its downstream stages).
DOWNSTREAM = {
    "reports": ("data", "model", "training", "evaluation", "inference", "api", "demo", "sweep"),
    "phantom": ("data", "model", "training", "evaluation", "inference", "api", "demo", "sweep"),
    "data": ("training", "evaluation", "inference", "api", "demo", "sweep"),
    "model": ("data", "training", "evaluation", "inference", "api", "demo", "sweep"),
    "training": ("evaluation", "inference", "api", "demo", "sweep"),
    "inference": ("training", "evaluation", "demo", "sweep"),
    "evaluation": ("training", "demo", "sweep"),
}


def imported_packages(folder: Path) -> dict[str, set[str]]:
    """module path -> the clip2clinic subpackages it imports (top level and lazy imports)."""
    found = {}
    for path in folder.rglob("*.py"):
        names = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("clip2clinic."):
                names.add(node.module.split(".")[1])
            elif isinstance(node, ast.Import):
                names |= {a.name.split(".")[1] for a in node.names
                          if a.name.startswith("clip2clinic.")}
        found[str(path.relative_to(SRC))] = names
    return found


@pytest.mark.parametrize("package", sorted(DOWNSTREAM))
def test_no_stage_imports_a_downstream_one(package):
    wrong = {module: sorted(names & set(DOWNSTREAM[package]))
             for module, names in imported_packages(SRC / package).items()
             if names & set(DOWNSTREAM[package])}
    assert not wrong, wrong
