"""Score the rule labeler on the IU X-ray dev gold labels (per-class table, macro-F1).

    .venv/bin/python benchmarks/score_labeler_iu.py [--shared ../shared/data] [--seed 0]

Prints, as Markdown, the table for half A (used to develop the rules), half B (held back) and
the whole dev set, plus Lung Opacity vs Infiltration scored apart.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from iu_labels import (
    APART,
    load_iu_dev,
    macro_f1,
    score,
    split_halves,
)

from clip2clinic.reports.labeler import RuleLabeler

REPO = Path(__file__).resolve().parents[1]


def markdown(table) -> str:
    lines = ["| class | P | R | F1 | support |", "|---|---|---|---|---|"]
    for name, row in table.iterrows():
        lines.append(f"| {name} | {row.precision:.3f} | {row.recall:.3f} | {row.f1:.3f} | "
                     f"{int(row.support)} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--seed", type=int, default=0, help="seed of the A/B split")
    args = parser.parse_args()
    dev = load_iu_dev(args.shared / "iu_xray")
    labeler = RuleLabeler()
    predictions = labeler.label_many(dev["text"])
    predictions.index = dev.index
    half_a, half_b = split_halves(dev, args.seed)
    for name, part in (("half A (rule development)", half_a), ("half B (held back)", half_b),
                       ("whole dev", dev)):
        table = score(predictions.loc[part.index], part)
        print(f"## {name}: {len(part)} reports, macro-F1 {macro_f1(table):.4f}\n")
        print(markdown(table), "\n")
        apart = score(predictions.loc[part.index], part, APART)
        print("Scored apart, Lung Opacity vs Infiltration:\n")
        print(markdown(apart), "\n")


if __name__ == "__main__":
    main()
