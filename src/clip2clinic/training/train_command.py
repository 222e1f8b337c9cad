"""``clip2clinic train --config FILE [--set key=value ...]`` (see docs/train.md)."""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a CLIP model (any ablation variant) on a prepared manifest",
        description="Train a ClinicCLIP model. Configs merge in order: --preset, --variant, "
        "then each --config, then --set overrides. A run directory that holds a checkpoint "
        "with training state is resumed exactly (same config required).",
    )
    parser.add_argument("--config", action="append", default=[], metavar="FILE",
                        help="YAML config (repeatable; may `include:` others)")
    parser.add_argument("--preset", metavar="NAME",
                        help="bundled preset presets/NAME.yaml (embedded, paper)")
    parser.add_argument("--variant", metavar="NAME",
                        help="bundled variant variants/NAME.yaml (baseline, dt, dt_c, n, "
                        "n_dt_c, g, g_dtcg, n_g_dtcg, softclip)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        dest="overrides", help="override a config key, e.g. optim.lr_heads=1e-3 "
                        "(value parsed as YAML; repeatable)")
    parser.add_argument("--manifest", help="the prepared manifest (sets data.manifest)")
    parser.add_argument("--out", "--output", help="run directory (sets out)")
    parser.add_argument("--resume", metavar="RUN",
                        help="continue the run in RUN with its saved config (only --set "
                        "train.stop_after_steps / train.progress / data.num_workers may change)")
    parser.add_argument("--seed", type=int, help="shortcut for --set train.seed=N")
    parser.add_argument("--epochs", type=int, help="shortcut for --set train.epochs=N")
    shown = parser.add_mutually_exclusive_group()
    shown.add_argument("--dry-run", action="store_true",
                       help="resolve the config, check the manifest and the run directory, "
                       "print the config and what training would do; train nothing")
    shown.add_argument("--print-config", action="store_true",
                       help="print the resolved config as YAML (usable as --config) and exit")
    parser.add_argument("--max-unreadable", type=float, default=0.01, metavar="FRACTION",
                        help="share of the split whose cached images may be unreadable in an "
                        "epoch (those rows are dropped) before training stops (default 0.01)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from accelerate import PartialState

    from clip2clinic.configs import named_config
    from clip2clinic.io import InputError
    from clip2clinic.training.config import load_config, with_overrides
    from clip2clinic.training.trainer import TrainingDiverged, load_run_config, plan, train

    overrides = list(args.overrides)
    if args.manifest:
        overrides.append(f"data.manifest={args.manifest}")
    if not getattr(args, "progress", True):
        overrides.append("train.progress=false")
    for key, value in (("train.seed", args.seed), ("train.epochs", args.epochs)):
        if value is not None:
            overrides.append(f"{key}={value}")
    if args.resume:
        if args.config or args.preset or args.variant or args.manifest or args.out:
            raise InputError("--resume RUN takes the run's saved config; give only --set")
        config = with_overrides(load_run_config(args.resume), overrides)
    else:
        paths = [named_config("preset", args.preset)] if args.preset else []
        paths += [named_config("variant", args.variant)] if args.variant else []
        if args.out:
            overrides.append(f"out={args.out}")
        if not paths and not args.config:
            raise InputError("give --config FILE and/or --preset/--variant (see docs/train.md)")
        config = load_config([*paths, *args.config], overrides)
    if args.print_config:
        print(config.to_yaml(), end="")
        return 0
    if config.data.manifest is None:
        raise InputError("data.manifest: no manifest given (--manifest M or data.manifest)")
    if args.dry_run:
        what = plan(config)  # refusals first, before anything is printed
        print(config.to_yaml(), end="")
        print(f"# {what}")
        return 0
    try:
        result = train(config, max_unreadable=args.max_unreadable)
    except TrainingDiverged as exc:
        print(f"clip2clinic train: error: {exc}", file=sys.stderr)
        return 1
    if PartialState().is_main_process:
        state = "finished" if result.finished else "stopped (resume with --resume)"
        print(f"{state} at step {result.step}; checkpoint: {result.checkpoint}")
    return 0

