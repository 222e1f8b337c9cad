"""Start-up time: ``clip2clinic --help`` and every sub-command's ``--help`` against a 1 s budget,
and ``import clip2clinic.api`` against importing torch + transformers alone (target ≤ 1.3×).

Each command runs in a fresh Python process (wall time of the whole process, interpreter start
included); commands are timed round-robin, one run each per round, so a change in machine load
hits all alike; medians over ``--repeats`` rounds after one warm-up round (file cache).

The baseline imports torch and the transformers auto classes the towers are built with
(``AutoConfig``, ``AutoModel``, ``AutoTokenizer``): ``import transformers`` alone is lazy and
loads almost none of transformers, so the bare ``import torch, transformers`` is printed too.

    .venv/bin/python benchmarks/bench_imports.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from clip2clinic.cli import build_parser

HELP_BUDGET_S = 1.0
API_TARGET = 1.3
IMPORTS = {
    "torch + transformers": "import torch; from transformers import AutoConfig, AutoModel, "
    "AutoTokenizer",
    "import torch, transformers (bare)": "import torch, transformers",
    "import clip2clinic.api": "import clip2clinic.api",
}


def cli() -> list[str]:
    """The ``clip2clinic`` console script beside this interpreter, else ``python -m``."""
    script = Path(sys.executable).parent / "clip2clinic"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "clip2clinic"]


def commands() -> dict[str, list[str]]:
    subparsers = next(a for a in build_parser()._actions if a.dest == "command")
    runs = {"clip2clinic --help": [*cli(), "--help"]}
    runs |= {f"clip2clinic {name} --help": [*cli(), name, "--help"] for name in subparsers.choices}
    runs |= {label: [sys.executable, "-c", code] for label, code in IMPORTS.items()}
    return runs


def timed(command: list[str]) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one run of ``command``."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise subprocess.CalledProcessError(process.returncode, command)
    return time.perf_counter() - start, usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds (median)")
    args = parser.parse_args()
    runs = commands()
    times: dict[str, list[tuple[float, float]]] = {label: [] for label in runs}
    for round_ in range(args.repeats + 1):
        for label, command in runs.items():
            seconds = timed(command)
            if round_:
                times[label].append(seconds)
    median = {label: statistics.median(w for w, _ in values) for label, values in times.items()}
    cpu = {label: statistics.median(c for _, c in values) for label, values in times.items()}
    width = max(map(len, median))
    print(f"{'median of ' + str(args.repeats):<{width}}  wall s  cpu s")
    for label, seconds in median.items():
        print(f"{label:<{width}}  {seconds:6.2f}  {cpu[label]:5.2f}")
    helps = {label: s for label, s in median.items() if label.endswith("--help")}
    slowest = max(helps, key=helps.get)
    print(f"\n--help, slowest: {slowest} {helps[slowest]:.2f} s wall = "
          f"{helps[slowest] / HELP_BUDGET_S:.2f}x the {HELP_BUDGET_S:.0f} s budget "
          f"(CPU {cpu[slowest]:.2f} s)")  # fmt: skip
    api, api_cpu = median["import clip2clinic.api"], cpu["import clip2clinic.api"]
    for base, note in (("torch + transformers", f", target <= {API_TARGET}x"),
                       ("import torch, transformers (bare)", ", transformers lazy")):
        print(f"import clip2clinic.api / {base}: {api / median[base]:.2f}x wall, "
              f"{api_cpu / cpu[base]:.2f}x CPU{note}")  # fmt: skip


if __name__ == "__main__":
    main()
