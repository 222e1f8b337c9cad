"""``--data`` parsing and the task registry's shape (no model needed)."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from clip2clinic.evaluation import (
    adversarial,
    cxr_align,
    normal_detection,
    probes,
    retrieval,
    zeroshot,
)
from clip2clinic.evaluation.evaluate import REGISTRY, TASKS, parse_tasks
from clip2clinic.evaluation.sources import parse_data
from clip2clinic.io import InputError

TASK_MODULES = (cxr_align, retrieval, adversarial, normal_detection, zeroshot, probes)


def test_data_specs_sort_into_manifests_datasets_and_cxr_align_files():
    data = parse_data(["mimic=a/m.parquet", "b/openi.parquet", "RSNA=/data/rsna",
                       "mimic=c/align.json"])  # fmt: skip
    assert data.manifests == {"mimic": Path("a/m.parquet"), "openi": Path("b/openi.parquet")}
    assert data.datasets == {"rsna": Path("/data/rsna")}
    assert data.cxr_align_file("mimic") == Path("c/align.json")
    assert data.cxr_align_file("openi") is None  # two manifests: only its own file counts
    only = parse_data(["x.parquet", "released.json"])
    assert only.cxr_align_file("x") == Path("released.json")  # the only manifest takes it


def test_bad_data_specs_are_clear_errors():
    with pytest.raises(InputError, match=r"READER\[:KEY=VALUE,...\]=ROOT"):
        parse_data(["somewhere/else"])
    with pytest.raises(InputError, match="at least one prepared manifest"):
        parse_data(["align.json"])
    with pytest.raises(InputError, match="would share the metric names"):
        parse_data(["mimic=a.parquet", "MIMIC=b.parquet"])
    with pytest.raises(InputError, match="would share the metric names"):
        parse_data(["rsna=a.parquet", "rsna=/data/rsna"])


def test_reader_options_ride_on_the_data_spec():
    data = parse_data(["siim:split=dedup=/data/siim",
                       "chestxray14:test_list=/l/probmed.txt,views=PA|AP,seed=3=/data/cxr14",
                       "rsna=/data/rsna"])  # fmt: skip
    assert data.datasets == {"siim": Path("/data/siim"), "chestxray14": Path("/data/cxr14"),
                             "rsna": Path("/data/rsna")}  # fmt: skip
    assert data.dataset_options == {
        "siim": {"split": "dedup"},
        "chestxray14": {"test_list": "/l/probmed.txt", "views": ["PA", "AP"], "seed": 3},
    }
    with pytest.raises(InputError, match="'split' is not KEY=VALUE"):
        parse_data(["siim:split=/data/siim"])


def test_registry_holds_every_task_module_in_cli_order():
    assert TASKS == ("cxr_align", "retrieval", "adversarial", "normal_detection", "zeroshot",
                     "chexpert5x200", "probes")  # fmt: skip
    assert parse_tasks("probes,cxr_align") == ["cxr_align", "probes"]
    registered = {id(task) for task in REGISTRY}
    for module in TASK_MODULES:
        assert id(module.TASK) in registered, module.__name__
    assert {t.name for t in REGISTRY if t.on_corpus} == TASKS_ON_MANIFESTS
    assert {t.name for t in REGISTRY if t.on_dataset} == {"adversarial", "zeroshot",
                                                          "chexpert5x200", "probes"}


TASKS_ON_MANIFESTS = {"cxr_align", "retrieval", "adversarial", "normal_detection", "zeroshot",
                      "probes"}  # fmt: skip


@pytest.mark.parametrize("module", TASK_MODULES, ids=lambda m: m.__name__.rsplit(".", 1)[1])
def test_task_modules_do_not_import_the_orchestration(module):
    tree = ast.parse(inspect.getsource(module))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                 for alias in node.names}  # fmt: skip
    imported |= {f"{node.module}.{alias.name}" for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) for alias in node.names}  # fmt: skip
    assert "clip2clinic.evaluation.evaluate" not in imported
