"""Throughput of the rule-based report cleanup (``clip2clinic clean --backend rules``).

Cleans the real IU X-ray reports (findings + impression) several times over in one process
and prints reports per second. The target is >= 2,000 reports/s (prepare time on MIMIC-CXR's
~227k reports). Usage: python benchmarks/bench_cleanup.py [--data ../shared/data] [--repeat 5]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from clip2clinic.io import as_text, read_table
from clip2clinic.reports.cleanup import clean_report
from clip2clinic.reports.sections import iu_report_text

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--repeat", type=int, default=5, help="passes over the corpus")
    args = parser.parse_args()
    frame = read_table(args.data / "iu_xray" / "indiana_reports.csv", ["findings", "impression"])
    texts = [
        iu_report_text(as_text(f), as_text(i))
        for f, i in zip(frame["findings"], frame["impression"], strict=True)
    ]
    clean_report(texts[0])  # compile the patterns outside the timing
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(args.repeat):
        for text in texts:
            clean_report(text)
    seconds = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    total = len(texts) * args.repeat
    chars = sum(map(len, texts)) / len(texts)
    print(f"cleaned {total} reports (mean {chars:.0f} characters) in {seconds:.2f} s: "
          f"{total / seconds:,.0f} reports/s ({total / cpu:,.0f} reports per CPU-second)")


if __name__ == "__main__":
    main()
