"""``prepare --shards``: the image cache as WebDataset tar shards, and the training loader
that reads them shard by shard (per-rank / per-worker splitting, seeded shuffle buffer)."""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
import webdataset

from clip2clinic.cli import main
from clip2clinic.data.corpus import PreparedCorpus
from clip2clinic.data.images import ImageLoadError, load_image
from clip2clinic.data.manifest import read_manifest
from clip2clinic.data.prepare import PrepareOptions, prepare
from clip2clinic.data.shards import is_shard_member, split_pointer
from clip2clinic.data.transforms import GREY
from clip2clinic.phantom import generate_phantom
from clip2clinic.training.data import Collate, ManifestDataset, open_text_cache
from clip2clinic.training.shard_loader import ShardLoader, ShardStream, is_sharded
from clip2clinic.training.trainer import Trainer
from tests.training_fixtures import tiny_config


@pytest.fixture(scope="module")
def phantom(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("phantom")
    generate_phantom(root, studies=40, image_size=64, seed=5)
    return root


@pytest.fixture(scope="module")
def sharded(phantom: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sharded") / "manifest.parquet"
    assert main(["prepare", "mimic", "--root", str(phantom), "--out", str(out),
                 "--image-size", "64", "--shard-size", "5", "--workers", "1"]) == 0
    return out


def test_shards_hold_the_same_pixels_as_the_file_cache(phantom: Path, sharded: Path,
                                                       tmp_path: Path) -> None:
    files = tmp_path / "files" / "manifest.parquet"
    prepare(PrepareOptions("mimic", str(phantom), str(files), image_size=64, workers=1,
                           text_features=False))
    by_file = read_manifest(files).set_index("image_id")["image_cache"]
    by_shard = read_manifest(sharded).set_index("image_id")["image_cache"]
    assert sorted(by_file.index) == sorted(by_shard.index)
    assert by_shard.map(is_shard_member).all()
    for image_id in by_file.index:
        a = load_image(PreparedCorpus(files).cache / by_file[image_id])
        b = load_image(PreparedCorpus(sharded).cache / by_shard[image_id])
        np.testing.assert_array_equal(a, b)


def test_shards_are_per_split_webdataset_tars(sharded: Path) -> None:
    manifest = read_manifest(sharded)
    cache = PreparedCorpus(sharded).cache
    shards = manifest["image_cache"].map(lambda p: split_pointer(p)[0])
    for split, names in shards.groupby(manifest["split"]):
        assert all(f"-{split}-" in name for name in names)
    assert shards.value_counts().max() <= 5
    # webdataset itself reads a shard: one sample per image, its key and PNG bytes
    first = sorted(set(shards))[0]
    samples = list(webdataset.WebDataset(str(cache / first), shardshuffle=False))
    members = {split_pointer(p)[1] for p in manifest["image_cache"][shards == first]}
    assert {f"{s['__key__']}.png" for s in samples} == members
    assert not list(cache.glob("images/**/*.png"))  # no per-file cache beside the shards


def test_a_missing_member_is_a_named_error(sharded: Path) -> None:
    pointer = read_manifest(sharded)["image_cache"].iloc[0]
    shard, _ = split_pointer(pointer)
    with pytest.raises(ImageLoadError, match="no member"):
        load_image(PreparedCorpus(sharded).cache / f"{shard}#nope.png")
    with pytest.raises(ImageLoadError, match="no such shard"):
        load_image(PreparedCorpus(sharded).cache / "shards/none.tar#x.png")


def _dataset(manifest: Path) -> ManifestDataset:
    return ManifestDataset(manifest, open_text_cache(manifest, "full"), 32, GREY,
                           augment={"scale": [0.8, 1.0]}, seed=0)


@pytest.mark.parametrize("world", [1, 2])
def test_every_item_once_per_epoch_across_ranks_and_workers(sharded: Path, world: int) -> None:
    dataset = _dataset(sharded)
    assert is_sharded(dataset)
    seen: list[list[int]] = []
    for epoch in (0, 1):
        indices = []
        for rank in range(world):
            stream = ShardStream(dataset, seed=7, rank=rank, world=world, buffer=8)
            stream.set_epoch(epoch)
            loader = torch.utils.data.DataLoader(stream, batch_size=None, num_workers=2)
            indices += [item["index"] for item in loader]
        assert sorted(indices) == list(range(len(dataset)))
        seen.append(indices)
    assert seen[0] != seen[1]  # shard order and buffer are reshuffled each epoch


def test_the_stream_is_seeded(sharded: Path) -> None:
    def order(seed: int) -> list[int]:
        stream = ShardStream(_dataset(sharded), seed=seed, buffer=8)
        return [item["index"] for item in stream]

    assert order(1) == order(1)
    assert order(1) != order(2)


def test_batches_per_epoch_fit_the_smallest_rank(sharded: Path) -> None:
    dataset = _dataset(sharded)
    one = ShardLoader(ShardStream(dataset, 0), 8, Collate())
    assert one.batches_per_epoch == len(dataset) // 8
    two = ShardLoader(ShardStream(dataset, 0, rank=1, world=2), 8, Collate())
    for epoch in (0, 1, 2):
        two.set_epoch(epoch)
        batches = list(two)
        assert len(batches) == two.batches_per_epoch >= 1
        assert all(batch.size == 4 for batch in batches)
    two.set_epoch(0, start=1)  # resume: the same batches after the first
    resumed = [batch.clinical for batch in two]
    two.set_epoch(0)
    assert all(torch.equal(a, b.clinical) for a, b in zip(resumed, list(two)[1:], strict=True))


def test_a_damaged_shard_drops_only_its_rows(sharded: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "manifest.parquet"
    shutil.copy(sharded, copy)
    shutil.copytree(PreparedCorpus(sharded).cache, PreparedCorpus(copy).cache)
    dataset = _dataset(copy)
    victim = PreparedCorpus(copy).cache / split_pointer(dataset.image_paths[0])[0]
    with tarfile.open(victim) as tar:
        count = len(tar.getmembers())
    victim.write_bytes(victim.read_bytes()[:700])  # the first member's PNG cut short
    items = list(ShardStream(dataset, 0, buffer=4))
    assert sum(item is None for item in items) == count
    assert len(items) == len(dataset)


def test_training_one_epoch_from_shards(sharded: Path, tmp_path: Path) -> None:
    config = tiny_config(tmp_path, sharded, "n_g_dtcg", "train.epochs=1",
                         "data.num_workers=2")
    trainer = Trainer(config)
    assert isinstance(trainer.loader, ShardLoader)
    result = trainer.fit()
    assert result.finished and result.step == trainer.loader.batches_per_epoch


def test_rerun_remakes_a_damaged_shard_whole(phantom: Path, tmp_path: Path) -> None:
    out = tmp_path / "manifest.parquet"
    options = PrepareOptions("mimic", str(phantom), str(out), image_size=32, shard_size=7,
                             text_features=False, workers=1)
    prepare(options)
    pointers = read_manifest(out)["image_cache"]
    victim = PreparedCorpus(out).cache / split_pointer(pointers.iloc[0])[0]
    size = victim.stat().st_size
    victim.write_bytes(victim.read_bytes()[:1000])
    prepare(options)
    assert victim.stat().st_size == size
    assert read_manifest(out)["image_cache"].tolist() == pointers.tolist()
    for pointer in pointers:
        load_image(PreparedCorpus(out).cache / pointer)
