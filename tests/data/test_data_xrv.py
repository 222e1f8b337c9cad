"""The torchxrayvision adapter: our readers on tiny official-layout trees as xrv-style datasets
(xrv's pathology order, range and label reading), and an xrv-style dataset back into the arrays
our zero-shot scorer takes, scored with a tiny checkpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from clip2clinic.api import Clip2Clinic
from clip2clinic.data.datasets import ChestXray14, CheXpert
from clip2clinic.data.datasets.chestxray14 import NIH_PATHOLOGIES
from clip2clinic.data.xrv import (
    XRV_PATHOLOGIES,
    XrvDataset,
    from_xrv,
    xrv_labels,
    xrv_normalize,
    xrv_to_grey,
)
from clip2clinic.evaluation.zeroshot import zero_shot_binary
from tests.api_fixtures import film, make_checkpoint
from tests.data.datasets.test_datasets_chestxray14 import build_nih
from tests.data.datasets.test_datasets_chexpert import build_chexpert, train_rows
from tests.image_files import write_png

CHEXPERT_ONLY = ("Lung Lesion", "Fracture", "Lung Opacity", "Enlarged Cardiomediastinum")


@pytest.fixture(scope="module")
def nih_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = build_nih(tmp_path_factory.mktemp("nih") / "ChestX-ray14")
    # one tall image: dark bands above and below a bright centre square
    tall = np.zeros((40, 20), np.uint8)
    tall[10:30] = 255
    write_png(next(root.glob("images_001/images/00000001_000.png")), tall)
    return root


def test_the_constants_are_xrvs() -> None:
    assert len(XRV_PATHOLOGIES) == 18 == len(set(XRV_PATHOLOGIES))
    assert XRV_PATHOLOGIES[:3] == ("Atelectasis", "Consolidation", "Infiltration")
    assert XRV_PATHOLOGIES[-1] == "Enlarged Cardiomediastinum"
    assert set(NIH_PATHOLOGIES) <= set(XRV_PATHOLOGIES)  # xrv names NIH's classes as NIH does
    pixels = np.array([0, 51, 255], np.uint8)
    assert xrv_normalize(pixels).tolist() == pytest.approx([-1024.0, -614.4, 1024.0])
    assert xrv_normalize(pixels).dtype == np.float32
    with pytest.raises(ValueError, match="above the expected bound"):
        xrv_normalize(np.array([300]), 255)


def test_chestxray14_tree_as_xrv_samples(nih_root: Path) -> None:
    reader = ChestXray14(nih_root)
    data = XrvDataset(reader, size=32)
    assert data.missing == 1 and len(data) == len(reader) - 1 == len(data.csv)
    assert data.pathologies == list(XRV_PATHOLOGIES)
    assert data.labels.shape == (len(data), 18) and data.labels.dtype == np.float32
    for i, name in enumerate(NIH_PATHOLOGIES):  # same labels, xrv's column order
        np.testing.assert_array_equal(data.labels[:, XRV_PATHOLOGIES.index(name)],
                                      reader.labels[: len(data), i])  # fmt: skip
    for name in CHEXPERT_ONLY:  # classes NIH does not have
        assert np.isnan(data.labels[:, XRV_PATHOLOGIES.index(name)]).all()

    first = data[0]
    assert set(first) == {"idx", "lab", "img"} and first["idx"] == 0
    assert first["img"].shape == (1, 32, 32) and first["img"].dtype == np.float32
    # the tall image's centre square is its bright band: all at the top of xrv's range
    assert (first["img"] == 1024.0).all()
    seventh = data[6]["img"]  # a 16 x 16 flat image of grey level 6, upsampled to 32
    assert seventh == pytest.approx(np.full((1, 32, 32), (2 * 6 / 255 - 1) * 1024), abs=1e-3)
    np.testing.assert_array_equal(data[-1]["lab"], data.labels[-1])
    with pytest.raises(IndexError):
        data[len(data)]

    batch = next(iter(torch.utils.data.DataLoader(data, batch_size=4)))
    assert batch["img"].shape == (4, 1, 32, 32) and batch["lab"].shape == (4, 18)


def test_chexpert_labels_read_the_xrv_way(tmp_path: Path) -> None:
    reader = CheXpert(build_chexpert(tmp_path))
    data = XrvDataset(reader, size=8)
    assert data[0]["img"].shape == (1, 8, 8)
    labels = xrv_labels(reader.pathologies, reader.labels)
    frame = reader.label_frame()
    column = XRV_PATHOLOGIES.index

    assert frame.loc[4, "Lung Opacity"] == -1 and np.isnan(labels[4, column("Lung Opacity")])
    assert frame.loc[0, "Fracture"] == 0 and labels[0, column("Fracture")] == 0
    effusion = frame["Pleural Effusion"].to_numpy()
    known = ~np.isnan(effusion) & (effusion != -1)
    np.testing.assert_array_equal(labels[known, column("Effusion")], effusion[known])
    healthy = len(train_rows()) - 1  # the "No Finding" row: its blanks become negatives
    assert np.isnan(frame.loc[healthy, "Cardiomegaly"])
    assert labels[healthy, column("Cardiomegaly")] == 0
    assert labels[healthy, column("Effusion")] == 0
    for name in ("Infiltration", "Emphysema", "Nodule", "Mass", "Hernia"):  # not in CheXpert
        assert np.isnan(labels[:, column(name)]).all()
    np.testing.assert_array_equal(data.labels, labels)


def test_our_adapter_round_trips_through_from_xrv(nih_root: Path) -> None:
    data = XrvDataset(ChestXray14(nih_root), size=24)
    arrays = from_xrv(data)
    assert arrays.classes == [p for p in XRV_PATHOLOGIES if p in NIH_PATHOLOGIES]
    assert len(arrays.images) == len(data) and arrays.labels.shape == (len(data), 14)
    assert arrays.images[0].shape == (24, 24) and arrays.images[0].dtype == np.uint8
    assert (arrays.images[0] == 255).all() and (arrays.images[6] == 6).all()
    np.testing.assert_array_equal(arrays.labels[:, arrays.classes.index("Hernia")],
                                  data.labels[:, XRV_PATHOLOGIES.index("Hernia")])  # fmt: skip
    chosen = from_xrv(data, classes=["Mass", "Effusion"])
    assert chosen.classes == ["Mass", "Effusion"] and chosen.labels.shape == (len(data), 2)
    with pytest.raises(ValueError, match="Pleural Effusion"):
        from_xrv(data, classes=["Pleural Effusion"])


class FakeXrvDataset:
    """Stands in for an xrv dataset after ``relabel_dataset``: ``pathologies``, ``labels`` with a
    NaN column for a class it lacks, items whose ``img`` is a tensor (as xrv's transforms give)."""

    def __init__(self, count: int = 12) -> None:
        self.pathologies = np.array(["Effusion", "Pneumothorax", "Hernia"])  # xrv uses np arrays
        rng = np.random.default_rng(3)
        self.labels = np.stack([np.arange(count) % 2, rng.integers(0, 2, count),
                                np.full(count, np.nan)], axis=1).astype(np.float32)  # fmt: skip
        self.labels[2, 1] = np.nan
        self.films = [film(40, 36, seed) for seed in range(count)]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict:
        img = xrv_normalize(self.films[index])[None]
        return {"idx": index, "lab": self.labels[index], "img": torch.from_numpy(img)}


def test_our_model_scored_on_an_xrv_style_dataset(tmp_path: Path) -> None:
    fake = FakeXrvDataset()
    arrays = from_xrv(fake)
    assert arrays.classes == ["Effusion", "Pneumothorax"]  # Hernia has no known label
    for grey, original in zip(arrays.images, fake.films, strict=True):
        np.testing.assert_array_equal(grey, original)  # xrv's range undone exactly
    clip = Clip2Clinic.from_pretrained(make_checkpoint("demo", tmp_path / "model"))
    embeddings = clip.embed_images(arrays.images)
    result = zero_shot_binary(embeddings, arrays.labels, arrays.classes, clip.embed_texts,
                              "fake_xrv", n_boot=20)  # fmt: skip
    table = result.table.set_index("class")
    assert list(table.index) == ["Effusion", "Pneumothorax"]
    assert table.loc["Effusion", "n_positive"] == 6 and table.loc["Pneumothorax", "n_excluded"] == 1
    assert table["auc"].between(0, 1).all()
    assert 0 <= result.metrics["zeroshot_mean_auc"].value <= 1


def test_xrv_to_grey_checks_the_shape() -> None:
    assert xrv_to_grey(np.full((1, 2, 3), 5000.0)).tolist() == [[255] * 3] * 2  # clipped
    with pytest.raises(ValueError, match="1 x H x W"):
        xrv_to_grey(np.zeros((3, 4, 4)))
