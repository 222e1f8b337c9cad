"""``prepare`` on a damaged or contended cache: reused files are checked and re-created (one bad
file never aborts it), two runs on one --out cannot interleave, and a manifest paired with a
text cache of another run is refused."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pandas as pd
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file

from clip2clinic.data.corpus import PreparedCorpus
from clip2clinic.data.manifest import dataset_root, read_manifest, write_manifest
from clip2clinic.data.prepare import PrepareOptions, prepare
from clip2clinic.io import InputError
from clip2clinic.training.data import load_graphs, open_text_cache

pytestmark = pytest.mark.faults


@pytest.fixture
def prepared_copy(tiny_prepared_phantom, tmp_path):
    """(phantom root, a private copy of the prepared manifest)."""
    shutil.copytree(tiny_prepared_phantom.parent, tmp_path / "prepared")
    copy = tmp_path / "prepared" / tiny_prepared_phantom.name
    return tiny_prepared_phantom.parent.parent / "phantom", copy


def options(root, manifest) -> PrepareOptions:
    return PrepareOptions("mimic", str(root), str(manifest), image_size=64, workers=1)


def test_damaged_cache_files_are_recreated_on_reuse(prepared_copy):
    root, manifest = prepared_copy
    cache = PreparedCorpus(manifest).cache
    before = read_manifest(manifest)
    truncated, deleted = (cache / p for p in before["image_cache"].iloc[:2])
    truncated.write_bytes(truncated.read_bytes()[:100])
    deleted.unlink()
    chunk = sorted((cache / "stages").glob("images-*.parquet"))[0]
    chunk.write_bytes(b"not parquet")
    features = cache / "text_features.safetensors"
    features.write_bytes(features.read_bytes()[:1000])
    graphs = PreparedCorpus(manifest).graph_cache_file  # as in a corpus prepared before it
    packed = load_file(str(graphs))
    graphs.unlink()

    prepare(options(root, manifest))

    after = read_manifest(manifest)
    assert after["image_id"].tolist() == before["image_id"].tolist()
    for path in (truncated, deleted):
        with Image.open(path) as image:
            image.load()  # decodes in full again
    with safe_open(str(features), framework="pt") as handle:
        assert handle.get_slice("features").get_shape()[0] > 0
    open_text_cache(manifest, "head")
    remade = load_file(str(graphs))  # made again, the same
    assert remade.keys() == packed.keys()
    assert all(torch.equal(remade[name], packed[name]) for name in packed)
    load_graphs(manifest)


def test_a_second_prepare_on_the_same_out_fails_clearly(prepared_copy):
    root, manifest = prepared_copy
    lock = PreparedCorpus(manifest).lock_file
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from clip2clinic.io import exclusive_lock\n"
         "with exclusive_lock(sys.argv[1], 'x'):\n    print('held', flush=True); time.sleep(60)\n",
         str(lock)], stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(InputError, match=rf"in use by pid {holder.pid}"):
            prepare(options(root, manifest))
    finally:
        holder.kill()
        holder.wait()
    prepare(options(root, manifest))  # the lock died with its holder


def test_manifest_with_another_runs_text_cache_is_refused(prepared_copy):
    _, manifest = prepared_copy
    frame = read_manifest(manifest)
    frame.loc[0, "report"] = "A report from another prepare run."
    write_manifest(pd.DataFrame(frame), manifest, dataset_root(manifest))
    with pytest.raises(InputError, match="come from different prepare runs"):
        open_text_cache(manifest, "head")
