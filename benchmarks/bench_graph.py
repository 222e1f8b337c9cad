"""Throughput of the rule graph extractor on the real IU X-ray reports, in one process.

    .venv/bin/python benchmarks/bench_graph.py [--shared ../shared/data] [--repeats 5]

Report text = findings + " " + impression (3,851 reports). Prints reports/s of the best of
``--repeats`` passes (wall clock and process CPU time; the machine is shared, so the best
pass is the least disturbed one), entities and relations per report, and the agreement with
the CheXpert labeler's mentions on half A (word lists developed on it) and half B (held back)
of the seeded split used by the labeler's IU scoring.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from iu_labels import split_halves

from clip2clinic.io import as_text, read_table
from clip2clinic.reports.graph import RuleGraphExtractor
from clip2clinic.reports.graph.agreement import labeler_agreement

REPO = Path(__file__).resolve().parents[1]
TARGET = 1000.0


def iu_reports(shared: Path):
    """The IU reports with their text, findings then impression."""
    reports = read_table(shared / "iu_xray" / "indiana_reports.csv",
                         required=["findings", "impression"])
    reports["text"] = [f"{as_text(f)} {as_text(i)}".strip()
                       for f, i in zip(reports["findings"], reports["impression"], strict=True)]
    return reports


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    reports = iu_reports(args.shared)
    texts = reports["text"].tolist()
    extractor = RuleGraphExtractor()
    extractor.extract_many(texts[:200])  # warm the word cache
    walls, cpus = [], []
    for _ in range(args.repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        graphs = extractor.extract_many(texts)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    entities = sum(len(g["entities"]) for g in graphs)
    relations = sum(len(e["relations"]) for g in graphs for e in g["entities"].values())
    best = len(texts) / min(walls)
    print(f"reports: {len(texts)}, entities/report: {entities / len(texts):.1f}, "
          f"relations/report: {relations / len(texts):.1f}")
    print(f"wall: {best:,.0f} reports/s (best of {args.repeats}; median "
          f"{len(texts) / sorted(walls)[len(walls) // 2]:,.0f})")
    print(f"cpu:  {len(texts) / min(cpus):,.0f} reports/s")
    print(f"target >= {TARGET:,.0f} reports/s: {'met' if best >= TARGET else 'NOT met'}")
    for name, half in zip(("A (development)", "B (held back)"), split_halves(reports, seed=0),
                          strict=True):
        part = half["text"].tolist()
        result = labeler_agreement(part, extractor.extract_many(part))
        print(f"agreement with the labeler, half {name}: {result.rate:.4f} of "
              f"{result.mentions} mentions (coverage {result.coverage:.4f}; "
              f"{result.anatomical} anatomical mentions apart)")


if __name__ == "__main__":
    main()
