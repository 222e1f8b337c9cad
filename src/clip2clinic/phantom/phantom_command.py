"""``clip2clinic phantom --out DIR --studies N --image-size S --seed K``."""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "phantom",
        help="write a synthetic chest X-ray corpus in the MIMIC-CXR-JPG layout",
        description="Draw a synthetic MIMIC-CXR-JPG corpus: radiograph-like JPEGs whose "
        "findings follow a ground truth, MIMIC-style free-text reports, the metadata, split "
        "and CheXpert tables, and phantom_truth.jsonl. Deterministic by seed; an interrupted "
        "run resumes.",
    )
    parser.add_argument("--out", "--output", required=True, help="output folder (empty, new, or a "
                        "phantom corpus made with the same settings)")
    parser.add_argument("--studies", type=int, default=1000, help="clinical studies (default "
                        "1000)")
    parser.add_argument("--image-size", type=int, default=256,
                        help="image side in pixels (default 256)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--extra-normal", type=int, default=0,
                        help="extra normal studies that all share the report \"No active lung "
                        "lesion.\" (the paper's Table 3 imbalance experiment)")
    parser.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from clip2clinic.phantom import generate_phantom

    summary = generate_phantom(
        args.out, studies=args.studies, image_size=args.image_size, seed=args.seed,
        extra_normal=args.extra_normal, workers=args.workers, progress=args.progress,
    )
    print(json.dumps(summary, indent=1))
    return 0
