"""Throughput of the rule labeler on the IU X-ray reports (one process).

    .venv/bin/python benchmarks/bench_labeler.py [--shared ../shared/data] [--repeat 3]

Prints reports/s (best of ``--repeat`` passes over all 3,851 reports; findings + impression),
by wall clock and by the process's CPU time (steadier on a shared machine).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from clip2clinic.io import as_text, read_table
from clip2clinic.reports.labeler import RuleLabeler

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    reports = read_table(args.shared / "iu_xray" / "indiana_reports.csv",
                         required=["findings", "impression"])
    texts = [f"{as_text(f)} {as_text(i)}".strip()
             for f, i in zip(reports["findings"], reports["impression"], strict=True)]
    labeler = RuleLabeler()
    labeler.label_many(texts[:50])  # warm-up: compile the lexicon
    wall = cpu = float("inf")
    for _ in range(args.repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        labeler.label_many(texts)
        wall = min(wall, time.perf_counter() - start)
        cpu = min(cpu, time.process_time() - start_cpu)
    chars = sum(map(len, texts)) / len(texts)
    print(f"{len(texts)} reports (mean {chars:.0f} chars), best of {args.repeat}: "
          f"{len(texts) / wall:,.0f} reports/s wall clock, {len(texts) / cpu:,.0f} reports/s "
          f"CPU time ({cpu * 1e3 / len(texts):.3f} ms/report)")


if __name__ == "__main__":
    main()
