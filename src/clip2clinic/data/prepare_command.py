"""``clip2clinic prepare DATASET --root DIR --out MANIFEST``."""

from __future__ import annotations

import argparse
import json
import os

from clip2clinic.data.datasets import READERS
from clip2clinic.embedded import MINILM_SOURCE

#: Images per shard of ``prepare --shards``: MIMIC-CXR-JPG's 377,110 images in about 380
#: shards of 30-60 MB at a 256 px shorter side.
DEFAULT_SHARD_SIZE = 1000


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "prepare",
        help="clean, label, graph and negate reports; cache images and texts; write a manifest",
        description="Run the report pipeline once over a dataset, cache resized images and "
        "tokenised texts, and write the Parquet manifest that training reads. Resumable: a "
        "re-run reuses finished chunks and cached images.",
    )
    parser.add_argument("dataset", choices=sorted(READERS), help="dataset reader")
    parser.add_argument("--root", required=True, help="dataset root in its official layout")
    parser.add_argument("--out", "--output", required=True,
                        help="manifest path (e.g. out/manifest.parquet); caches go beside it")
    parser.add_argument("--reports-root", help="MIMIC: folder holding files/pXX/... .txt reports")
    parser.add_argument("--all-views", action="store_true",
                        help="MIMIC, CheXpert Plus: keep lateral views too (default: "
                        "frontal only)")
    parser.add_argument("--reader-option", action="append", default=[], metavar="KEY=VALUE",
                        help="an option of the dataset reader, repeatable (e.g. chexpert_plus "
                        "test=patients, chestxray14 test_list=FILE; docs/datasets.md)")
    parser.add_argument("--image-size", type=int, default=256,
                        help="shorter side of cached images (default 256)")
    parser.add_argument("--shards", action="store_true",
                        help="write the image cache as WebDataset tar shards (a few hundred "
                        "files for a cluster's shared file system) instead of one PNG per image")
    parser.add_argument("--shard-size", type=int, default=None, metavar="N",
                        help=f"images per shard (implies --shards; default {DEFAULT_SHARD_SIZE})")
    parser.add_argument("--text-model", default=MINILM_SOURCE,
                        help="tokenizer/frozen text model: hub name, folder or package:<module> "
                        "(default: the bundled MiniLM)")
    parser.add_argument("--max-length", type=int, default=64, help="tokens per text")
    parser.add_argument("--no-text-features", action="store_true",
                        help="skip caching the frozen text model's token features")
    parser.add_argument("--seed", type=int, default=0, help="seed of the hard negatives")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="processes (default: all cores)")
    parser.set_defaults(func=run)


def _shard_size(args: argparse.Namespace) -> int | None:
    """Images per shard, None for the per-file cache; a size below 1 is an error."""
    if args.shard_size is None:
        return DEFAULT_SHARD_SIZE if args.shards else None
    if args.shard_size < 1:
        raise SystemExit(f"prepare: --shard-size must be at least 1, got {args.shard_size}")
    return args.shard_size


def run(args: argparse.Namespace) -> int:
    from clip2clinic.data.corpus import PreparedCorpus
    from clip2clinic.data.datasets.options import parse_reader_options
    from clip2clinic.data.prepare import PrepareOptions, prepare  # torch: lazy

    reader_options = parse_reader_options(args.reader_option, "prepare --reader-option")
    if args.reports_root:
        reader_options["reports_root"] = args.reports_root
    if args.all_views:
        reader_options["views"] = None
    report = prepare(PrepareOptions(
        dataset=args.dataset, root=args.root, out=args.out, reader_options=reader_options,
        image_size=args.image_size, shard_size=_shard_size(args), text_model=args.text_model,
        max_length=args.max_length,
        text_features=not args.no_text_features, seed=args.seed, workers=args.workers,
    ))
    summary = {k: report[k] for k in ("images_listed", "images_cached", "images_skipped",
                                      "skip_reasons", "studies", "splits", "texts")}
    print(json.dumps(summary, indent=2))
    print(f"manifest: {args.out}\nprepare report: {PreparedCorpus(args.out).report_file}")
    return 0
