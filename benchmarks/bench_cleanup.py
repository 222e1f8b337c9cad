"""Throughput of the rule-based report cleanup (``clip2clinic clean --backend rules``).

Cleans the real IU X-ray reports (findings + impression) in one process and prints reports per
second, twice: as used (the per-sentence cache reuses sentences repeated within the corpus; it
is emptied before every pass, so nothing carries over between passes) and with no reuse at all
(the cache emptied before every report: the worst case, a corpus without repeated sentences).
The target is >= 2,000 reports/s, for prepare time on MIMIC-CXR's ~227k reports.

Usage: python benchmarks/bench_cleanup.py [--data ../shared/data] [--repeat 3]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from clip2clinic.io import as_text, read_table
from clip2clinic.reports.cleanup import clean_report, clean_sentence
from clip2clinic.reports.sections import iu_report_text

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--repeat", type=int, default=3, help="passes over the corpus")
    args = parser.parse_args()
    frame = read_table(args.data / "iu_xray" / "indiana_reports.csv", ["findings", "impression"])
    texts = [
        iu_report_text(as_text(f), as_text(i))
        for f, i in zip(frame["findings"], frame["impression"], strict=True)
    ]
    clean_report(texts[0])  # compile the patterns outside the timing
    chars = sum(map(len, texts)) / len(texts)
    print(f"{len(texts)} IU reports, mean {chars:.0f} characters, {args.repeat} pass(es)")
    for label, clear_per_report in (("as used (sentence cache)", False),
                                    ("no reuse (cache cleared per report)", True)):
        start, cpu_start = time.perf_counter(), time.process_time()
        for _ in range(args.repeat):
            clean_sentence.cache_clear()
            for text in texts:
                if clear_per_report:
                    clean_sentence.cache_clear()
                clean_report(text)
        seconds = time.perf_counter() - start
        cpu = time.process_time() - cpu_start
        total = len(texts) * args.repeat
        print(f"{label}: {total / seconds:,.0f} reports/s wall, "
              f"{total / cpu:,.0f} reports per CPU-second")


if __name__ == "__main__":
    main()
