"""Throughput of the inference API on the embedded preset (random weights: cost, not quality).

Prints images/s of ``Clip2Clinic.embed_images`` on real radiographs (about 640 px PNG, from
../shared/data/images/hannover) beside the time to only read them, texts/s of ``embed_texts`` on
real IU X-ray reports (frozen MiniLM + the text head) side by side with sentence-transformers
encoding the same texts with the same MiniLM folder and max length (the reference; skipped
when sentence-transformers is not installed), once for texts not seen before and once again
(the frozen features are then kept), and the time of a cache hit of
``cached_image_embeddings`` against the first call.

Usage: python benchmarks/bench_api.py [--images 128] [--texts 256] [--repeats 3]
                                      [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from clip2clinic.api import Clip2Clinic
from clip2clinic.data.images import load_image
from clip2clinic.embedded import minilm_dir
from clip2clinic.evaluation.embeddings import cached_image_embeddings
from clip2clinic.model import ClinicCLIP, embedded_config

REPO = Path(__file__).resolve().parents[1]


def timed(function, *args, **kwargs) -> tuple[float, object]:
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - start, result


def sentence_transformers_encoder(max_length: int):
    """sentence-transformers over the bundled MiniLM folder at ``max_length`` tokens (warmed
    up), or None when it is not installed."""
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        print("sentence-transformers is not installed: no reference (pip install it)")
        return None
    model = SentenceTransformer(str(minilm_dir()), device="cpu")
    model.max_seq_length = max_length
    model.encode(["warm-up"])
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=128)
    parser.add_argument("--texts", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3, help="text timings: best of this many")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    args = parser.parse_args()

    torch.manual_seed(0)
    clip = Clip2Clinic(ClinicCLIP(embedded_config()))
    paths = sorted((args.data / "images" / "hannover" / "png").glob("*.png"))[: args.images]
    reports = pd.read_csv(args.data / "iu_xray" / "indiana_reports.csv")
    texts = (reports["findings"].fillna("") + " " + reports["impression"].fillna("")).str.strip()
    texts = [t for t in texts if t][: args.texts]
    clip.embed_texts(["warm-up: load the frozen MiniLM before timing"])
    max_length = clip.model.config.text.max_length

    read_s, _ = timed(lambda: [load_image(p) for p in paths])
    image_s, _ = timed(clip.embed_images, paths)
    text_s = reference_s = float("inf")
    reference = sentence_transformers_encoder(max_length)
    for _ in range(args.repeats):  # interleaved, best of each: the machine's load varies
        clip.texts.inputs.encoder.feature_cache.clear()  # texts not seen before
        text_s = min(text_s, timed(clip.embed_texts, texts)[0])
        if reference is not None:
            reference_s = min(reference_s, timed(reference.encode, texts, batch_size=64)[0])
    again_s, _ = timed(clip.embed_texts, texts)
    print(f"threads: {torch.get_num_threads()}")
    print(f"read only:    {len(paths) / read_s:7.1f} images/s ({len(paths)} images)")
    print(f"embed_images: {len(paths) / image_s:7.1f} images/s (128 px 1-channel Swin, batch 32)")
    print(f"embed_texts:  {len(texts) / text_s:7.1f} texts/s ({len(texts)} IU reports, "
          f"{max_length} tokens at most, batch 64)")
    print(f"  again:      {len(texts) / again_s:7.1f} texts/s (their frozen features kept)")
    if reference is not None:
        print(f"  reference:  {len(texts) / reference_s:7.1f} texts/s (sentence-transformers "
              f"encode, same MiniLM, batch 64); embed_texts / reference = "
              f"{reference_s / text_s:.2f}x")
    with tempfile.TemporaryDirectory() as cache:
        miss_s, _ = timed(cached_image_embeddings, clip, paths, cache)
        hit_s, _ = timed(cached_image_embeddings, clip, paths, cache)
    print(f"cache:        first call {miss_s:.2f} s, second call {hit_s * 1000:.1f} ms")


if __name__ == "__main__":
    main()
