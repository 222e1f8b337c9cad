"""Score the negation hard negatives on the IU X-ray reports, and time them.

    .venv/bin/python benchmarks/score_negation_iu.py [--shared ../shared/data] [--seed 0]
        [--pool train|eval] [--clean] [--examples N]

Report text = findings + " " + impression (``--clean``: after ``clip2clinic clean``'s rules).
For every abnormal report, the rule labeler relabels ``hard_negative`` and ``omitted`` from scratch;
a row satisfies the criterion when the chosen observation goes from positive to negative in
``hard_negative`` with every other finding's label unchanged, and ``omitted`` no longer mentions it.
Prints the share, the failure categories with examples, and reports/s (labelling included).
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from pathlib import Path

from iu_hard_negatives import iu_texts, score_hard_negatives

from clip2clinic.observations import FINDINGS
from clip2clinic.reports.labeler import RuleLabeler
from clip2clinic.reports.negation import make_hard_negatives

REPO = Path(__file__).resolve().parents[1]


def best_of(runs: int, job) -> float:
    """Shortest wall time of ``runs`` calls of ``job`` (seconds)."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        job()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pool", choices=("train", "eval"), default="train")
    parser.add_argument("--clean", action="store_true", help="clean the reports first")
    parser.add_argument("--examples", type=int, default=3, help="examples per failure kind")
    args = parser.parse_args()

    frame = iu_texts(args.shared / "iu_xray" / "indiana_reports.csv")
    texts = frame["text"].tolist()
    if args.clean:
        from clip2clinic.reports.cleanup import clean_report

        texts = [clean_report(t) for t in texts]
    labeler = RuleLabeler()
    labeler.label("warm up")
    ids = frame["uid"].tolist()
    labelling = best_of(3, lambda: labeler.label_many(texts))
    seconds = best_of(3, lambda: make_hard_negatives(texts, ids, seed=args.seed, pool=args.pool,
                                                     labeler=labeler))
    negatives = make_hard_negatives(texts, ids, seed=args.seed, pool=args.pool, labeler=labeler)
    print(f"{len(texts)} reports: hard negatives {len(texts) / seconds:.0f} reports/s "
          f"(labelling each report once included; labelling alone "
          f"{len(texts) / labelling:.0f} reports/s; best of 3, one process)\n")

    result = score_hard_negatives(texts, negatives, labeler)
    abnormal = result[result["chosen"] != ""].astype({"ok": bool})
    normal = result[result["chosen"] == ""]
    share = abnormal["ok"].mean()
    print(f"abnormal reports: {len(abnormal)}; criterion met: {abnormal['ok'].sum()} "
          f"({share:.2%})")
    print(f"  omitted no longer mentions the chosen observation: "
          f"{abnormal['omitted_clean'].mean():.2%}")
    print(f"  negated: chosen positive -> negative: {abnormal['chosen_negated'].mean():.2%}")
    print(f"  negated: every other finding unchanged: {abnormal['others_kept'].mean():.2%}")
    print(f"  No Finding switched on in negated (the chosen one was the only finding): "
          f"{abnormal['no_finding_on'].mean():.2%}")
    print(f"normal reports: {len(normal)}; with a hard negative: "
          f"{(normal['hard_negative'] != '').mean():.2%}; hard negative has exactly one positive "
          f"finding: {normal['single_positive'].mean():.2%}\n")
    print("chosen observations:", dict(Counter(abnormal["chosen"]).most_common()), "\n")

    failures = abnormal[~abnormal["ok"]]
    kinds = Counter(failures["failure"])
    print("failure kinds:", dict(kinds.most_common()), "\n")
    for kind, _ in kinds.most_common():
        print(f"## {kind}")
        for _, row in failures[failures["failure"] == kind].head(args.examples).iterrows():
            print(f"- chosen {row['chosen']}; changed {row['changed']}")
            print(f"  report : {row['report']}")
            print(f"  omitted: {row['omitted']}")
            print(f"  hard negative: {row['hard_negative']}")
        print()
    assert set(FINDINGS) >= set(abnormal["chosen"])


if __name__ == "__main__":
    main()
