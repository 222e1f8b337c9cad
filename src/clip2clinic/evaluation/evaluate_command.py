"""``clip2clinic evaluate --checkpoint RUN --tasks ... --data ...`` (see docs/evaluation.md)."""

from __future__ import annotations

import argparse

TASK_HELP = ("cxr_align, retrieval, adversarial, normal_detection, zeroshot, chexpert5x200, "
             "probes, or all")  # fmt: skip


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="score a checkpoint: CXR-Align, zero-shot, 5x200, probes, retrieval, adversarial "
        "pairs, normal case detection",
        description="Embeds each dataset once (cached per checkpoint), runs the tasks and writes "
        "metrics.json (every metric with a bootstrap 95%% interval), one CSV per task and "
        "dataset, the per-case results as Parquet and roc.csv into --out (default "
        "RUN/evaluation).",
    )
    parser.add_argument("--checkpoint", required=True, metavar="RUN",
                        help="a run directory (its final or newest checkpoint) or a checkpoint "
                        "folder (model.safetensors + config.json)")
    parser.add_argument("--data", action="append", required=True, metavar="SPEC",
                        help="[NAME=]manifest.parquet (a prepared corpus), "
                        "READER[:KEY=VALUE,...]=ROOT (rsna, siim, vindr, chestxray14, chexpert, "
                        "chexpert5x200, with reader options, e.g. siim:split=dedup=ROOT, "
                        "chestxray14:test_list=probmed.txt=ROOT) or [NAME=]cxr_align.json (a "
                        "CXR-Align file to score); repeatable")
    parser.add_argument("--protocol", default="paper", choices=("paper", "clip2clinic"),
                        help="the evaluation protocol: the paper's (CXR-CLIP/GLoRIA/ProbMed "
                        "choices; default) or clip2clinic's own; recorded in metrics.json")
    parser.add_argument("--protocol-choice", action="append", default=[], metavar="KEY=VALUE",
                        help="override one protocol choice, e.g. prompts=ensemble, "
                        "adversarial=all, five_by_200=unique, vindr_classes=all, "
                        "chexpert_blank=unknown, openi_pairs=split, siim_split=dedup "
                        "(docs/evaluation.md); repeatable")
    parser.add_argument("--labeler", choices=("manifest", "chexbert"),
                        help="retrieval's report labels: the manifest's (default) or CheXbert's "
                        "(as the paper; needs --chexbert-checkpoint)")
    parser.add_argument("--chexbert-checkpoint", metavar="FILE",
                        help="CheXbert weights (.safetensors, with its tokenizer and config.json "
                        "beside it) for --labeler chexbert")
    parser.add_argument("--tasks", default="all", help=f"comma-separated: {TASK_HELP}")
    parser.add_argument("--out", "--output", help="output folder (default RUN/evaluation)")
    parser.add_argument("--cache", help="embedding cache folder (default OUT/embeddings)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the benchmark draws and the bootstrap")
    parser.add_argument("--split", default="test", choices=("test", "validate"),
                        help="the manifests' split to score (validate: for choosing settings; "
                        "no probes)")
    parser.add_argument("--n-boot", type=int, default=1000,
                        help="bootstrap resamples of each interval")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cuda")
    parser.add_argument("--batch-size", type=int, default=32,
                        help="images per forward pass when embedding")
    parser.add_argument("--workers", type=int, default=0,
                        help="image reader processes of the embedding DataLoader")
    parser.add_argument("--precision", default="auto",
                        help="embedding precision: auto (bf16 on a GPU that supports it, else "
                        "fp16), fp32, bf16 or fp16; always fp32 on CPU")
    parser.add_argument("--allow-partial", action="store_true",
                        help="score the newest step checkpoint of a run that did not finish")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from clip2clinic.evaluation.embeddings import EmbedSettings
    from clip2clinic.evaluation.evaluate import (
        EvaluationIncomplete,
        Options,
        evaluate,
        parse_data,
        parse_tasks,
    )
    from clip2clinic.evaluation.protocol import get_protocol

    choices = list(args.protocol_choice)
    if args.labeler:
        choices.append(f"labeler={args.labeler}")
    if args.chexbert_checkpoint:
        choices.append(f"chexbert_checkpoint={args.chexbert_checkpoint}")
    protocol = get_protocol(args.protocol, choices)
    options = Options(split=args.split, seed=args.seed, n_boot=args.n_boot, protocol=protocol)
    failure = None
    try:
        record = evaluate(args.checkpoint, parse_data(args.data), parse_tasks(args.tasks),
                          out=args.out, options=options, device=args.device,
                          progress=args.progress, cache_dir=args.cache,
                          allow_partial=args.allow_partial,
                          embedding=EmbedSettings(args.batch_size, args.workers,
                                                  args.precision))  # fmt: skip
    except EvaluationIncomplete as exc:
        record, failure = exc.record, exc
    width = max(map(len, record["metrics"]), default=0)
    for name, m in record["metrics"].items():
        print(f"{name:<{width}}  {m['value']:.4f}  [{m['low']:.4f}, {m['high']:.4f}]  n={m['n']}")
    if failure is not None:
        print(f"clip2clinic evaluate: error: {failure}", file=sys.stderr)
        return 1
    return 0
