"""Paths read from files stay inside their root: a manifest's cached image, a dataset CSV's
image path. ``..`` or an absolute path is refused with the row named, before anything is read."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clip2clinic.data.datasets import CheXpert
from clip2clinic.data.manifest import SCHEMA, read_manifest, write_manifest
from clip2clinic.io import InputError, check_inside_root, read_table
from clip2clinic.observations import CHEXPERT_CLASSES

pytestmark = pytest.mark.faults


def manifest_row(image_id: str, image_cache: str) -> dict:
    labels = np.full(len(CHEXPERT_CLASSES), np.nan, dtype=np.float32)
    row = {name: "" for name in SCHEMA.names}
    return {**row, "image_id": image_id, "split": "train", "image_cache": image_cache,
            "labels": labels, "hard_negative_labels": labels, "text_id": 0,
            "hard_negative_text_id": 0, "omitted_text_id": 0}  # fmt: skip


@pytest.mark.parametrize("escape", ["../../outside.png", "/etc/hostname", "images/../../x.png"])
def test_manifest_image_cache_outside_the_cache_is_refused(tmp_path, escape):
    path = tmp_path / "manifest.parquet"
    frame = pd.DataFrame([manifest_row("ok", "images/a.png"), manifest_row("evil", escape)])
    write_manifest(frame, path, tmp_path)
    with pytest.raises(InputError, match=r"image evil: path .* outside its root"):
        read_manifest(path)


def test_manifest_with_relative_paths_reads(tmp_path):
    path = tmp_path / "manifest.parquet"
    write_manifest(pd.DataFrame([manifest_row("ok", "images/a.png"), manifest_row("x", "")]),
                   path, tmp_path)
    assert list(read_manifest(path)["image_id"]) == ["ok", "x"]


def test_dataset_csv_path_outside_the_root_is_refused(tmp_path):
    folder = tmp_path / "CheXpert-v1.0-small"
    folder.mkdir()
    header = ["Path", "Frontal/Lateral", "AP/PA", *CHEXPERT_CLASSES]
    good = ["CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg", "Frontal", "AP"]
    bad = ["CheXpert-v1.0-small/../../../home/user/.ssh/id_rsa", "Frontal", "AP"]
    blanks = [""] * len(CHEXPERT_CLASSES)
    for name in ("train.csv", "valid.csv"):
        table = pd.DataFrame([good + blanks, bad + blanks], columns=header)
        table.to_csv(folder / name, index=False)
    with pytest.raises(InputError, match=r"train.csv: column 'Path': row 2: path"):
        CheXpert(tmp_path)


def test_read_table_checks_only_path_columns(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("id,file,note\n1,a/b.png,../not a path\n2,C:\\x.png,\n")
    assert len(read_table(path, path_columns=[])) == 2
    with pytest.raises(InputError, match=r"column 'file': row 2"):
        read_table(path, path_columns=["file"])


def test_check_inside_root_accepts_names_with_dots():
    check_inside_root(["a..b/c.png", "x/.hidden/y", "", None], "here")
    check_inside_root([], "here")
