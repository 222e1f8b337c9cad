"""Is a model's CXR-Align score grounded in the image, or a text prior? Scores each run on the
VALIDATION split's CXR-Align cases twice: with each case's own image, and with the image of
another case whose report does not call the chosen finding positive (a mismatched image).

    .venv/bin/python benchmarks/cxr_align_text_prior.py --manifest M RUN [RUN ...]

For a mismatched image the report r states a finding the image does not show, so a grounded
model should prefer r^n ("No X", true for that image) in Task A and r^r (no claim about X) in
Task B: its rate of choosing r falls to 50% or below. A model that learned "a report stating a
finding beats one without it" (Task B) or "an inserted negation is wrong" (Task A) keeps
choosing r whatever the image. Prints, per run, the rates of choosing r with matched and
mismatched images (percent) and the number of cases.
"""

from __future__ import annotations

import argparse

import numpy as np

from clip2clinic.api import Clip2Clinic
from clip2clinic.data.corpus import PreparedCorpus
from clip2clinic.data.manifest import read_manifest
from clip2clinic.evaluation import cxr_align
from clip2clinic.observations import CHEXPERT_CLASSES


def mismatched_partners(chosen: list[str], labels: np.ndarray, seed: int) -> np.ndarray:
    """For each case, another case whose labels do not call its chosen finding positive."""
    rng = np.random.default_rng(seed)
    partners = np.empty(len(chosen), dtype=int)
    for i, finding in enumerate(chosen):
        column = CHEXPERT_CLASSES.index(finding)
        candidates = [j for j in range(len(chosen)) if j != i and labels[j, column] != 1]
        partners[i] = rng.choice(candidates)
    return partners


def choose_rate(images: np.ndarray, report: np.ndarray, other: np.ndarray) -> float:
    """Percent of rows whose image is more similar to ``report`` than to ``other``."""
    return 100 * float(np.mean((images * report).sum(1) > (images * other).sum(1)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--split", default="validate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("runs", nargs="+")
    args = parser.parse_args()
    frame = read_manifest(args.manifest, split=args.split)
    cases = cxr_align.cxr_align_cases(cxr_align.build_cxr_align(frame, "phantom", seed=args.seed))
    cases = cases.drop_duplicates("id").reset_index(drop=True)  # one image per study
    rows = frame.set_index("image_id").loc[cases["image_id"]]
    paths = [PreparedCorpus(args.manifest).cache / p for p in rows["image_cache"]]
    labels = np.stack(rows["labels"].to_numpy())
    partners = mismatched_partners(list(cases["chosen"]), labels, args.seed)
    print(f"{len(cases)} CXR-Align cases ({args.split}); percent choosing the report r\n")
    print("| run | A matched | A mismatched | B matched | B mismatched |")
    print("|---|---|---|---|---|")
    for run in args.runs:
        model = Clip2Clinic.from_pretrained(run)
        images = model.embed_images(paths)
        report, negated, omitted = (model.embed_texts(list(cases[c]))
                                    for c in ("report", "negation", "omitted"))

        mismatched = images[partners]
        cells = [choose_rate(images, report, negated), choose_rate(mismatched, report, negated),
                 choose_rate(images, report, omitted), choose_rate(mismatched, report, omitted)]
        print(f"| {run} | " + " | ".join(f"{c:.1f}" for c in cells) + " |", flush=True)


if __name__ == "__main__":
    main()
