"""Can a text head over frozen MiniLM token features learn negation? Measured, per head shape.

A synthetic CLIP task where only negation separates a report from its hard negative: each
"image" is a noisy label vector over 10 findings (a trainable linear image tower); its report
mentions 1-3 findings, each affirmed or negated with a template, amid neutral filler; its hard
negative flips the polarity of one mentioned finding. The text head and the image tower are
trained with InfoNCE (image→[reports; hard negatives], report→image) on cached token features
of the frozen bundled MiniLM, then scored on unseen reports: the fraction where the image is
closer to its report than to the hard negative (chance 0.5), with the training templates
("seen") and with held-out templates ("unseen"). Also prints ms per training step.

    .venv/bin/python benchmarks/text_head_negation.py [--steps 300] [--reports 2000]
"""

from __future__ import annotations

import argparse
import random
import time

import torch
from torch.nn.functional import cross_entropy, normalize

from clip2clinic.embedded import MINILM_SOURCE
from clip2clinic.model import TextHead, TextHeadConfig, encode_token_features

FINDINGS = (
    "pneumothorax", "pleural effusion", "consolidation", "pulmonary edema", "atelectasis",
    "cardiomegaly", "pneumonia", "rib fracture", "lung nodule", "airspace opacity",
)  # fmt: skip
SIDES = ("right", "left", "bilateral", "basilar")
#: (seen templates, held-out templates) per polarity; written for this benchmark.
AFFIRMED = (
    ("There is a small {side} {f}.", "{F} is present.", "Findings are consistent with {f}.",
     "Moderate {side} {f} is again seen."),
    ("Large {side} {f}.", "{F} has increased since the prior study."),
)  # fmt: skip
NEGATED = (
    ("No {f}.", "There is no {f}.", "{F} is not seen.", "No evidence of {f}."),
    ("Negative for {f}.", "{F} is absent."),
)
FILLER = (
    "Portable AP view of the chest.",
    "Comparison is made to the prior radiograph.",
    "The patient is rotated.",
    "Lines and tubes are unchanged in position.",
)
HEADS = {
    "mean pool + linear": TextHeadConfig(layers=0, pooling="mean"),
    "attention pool + linear": TextHeadConfig(layers=0, pooling="attention"),
    "1 layer w128, dropout 0.1": TextHeadConfig(width=128, heads=4, ff_dim=256, dropout=0.1),
    "1 layer w128, dropout 0": TextHeadConfig(width=128, heads=4, ff_dim=256, dropout=0.0),
    "1 layer w256, dropout 0.1": TextHeadConfig(width=256, heads=4, ff_dim=512, dropout=0.1),
}


def sentence(finding: str, affirmed: bool, held_out: bool, rng: random.Random) -> str:
    template = rng.choice((AFFIRMED if affirmed else NEGATED)[held_out])
    return template.format(f=finding, F=finding.capitalize(), side=rng.choice(SIDES))


def make_pairs(count: int, held_out: bool, rng: random.Random):
    """(report, hard negative, label vector) triples."""
    reports, negatives, labels = [], [], []
    for _ in range(count):
        mentioned = rng.sample(range(len(FINDINGS)), rng.randint(1, 3))
        polarity = {i: rng.random() < 0.5 for i in mentioned}
        flipped = rng.choice(mentioned)
        seeds = {i: rng.random() for i in mentioned}  # same template for report and negative
        fillers = rng.sample(FILLER, rng.randint(0, 2))

        def render(flip: int | None, polarity=polarity, seeds=seeds, fillers=fillers) -> str:
            parts = [
                sentence(FINDINGS[i], polarity[i] != (i == flip), held_out, random.Random(seeds[i]))
                for i in polarity
            ]
            return " ".join(fillers + parts)

        reports.append(render(None))
        negatives.append(render(flipped))
        labels.append([float(polarity.get(i, False)) for i in range(len(FINDINGS))])
    return reports, negatives, torch.tensor(labels)


def train_and_score(head_config, data, steps, batch, seed=0):
    torch.manual_seed(seed)
    (feats, masks, neg_feats, neg_masks, labels), tests = data
    head = TextHead(feats.shape[-1], head_config, 512)
    image_tower = torch.nn.Linear(labels.shape[1], 512)
    optimiser = torch.optim.AdamW([*head.parameters(), *image_tower.parameters()], lr=1e-3)
    generator = torch.Generator().manual_seed(seed)
    started = time.perf_counter()
    for _ in range(steps):
        rows = torch.randint(len(labels), (batch,), generator=generator)
        noisy = labels[rows] + 0.1 * torch.randn(batch, labels.shape[1], generator=generator)
        image = normalize(image_tower(noisy), dim=-1)
        both = torch.cat([feats[rows], neg_feats[rows]]), torch.cat([masks[rows], neg_masks[rows]])
        texts = normalize(head(*both), dim=-1)
        logits = image @ texts.T / 0.1
        target = torch.arange(batch)
        loss = cross_entropy(logits, target) + cross_entropy(logits[:, :batch].T, target)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    ms_per_step = 1000 * (time.perf_counter() - started) / steps
    head.eval()
    scores = {}
    with torch.no_grad():
        for name, (f, m, nf, nm, lab) in tests.items():
            image = normalize(image_tower(lab), dim=-1)
            good = (image * normalize(head(f, m), dim=-1)).sum(-1)
            bad = (image * normalize(head(nf, nm), dim=-1)).sum(-1)
            scores[name] = (good > bad).float().mean().item()
    return scores, ms_per_step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=2000)
    parser.add_argument("--test-reports", type=int, default=500)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--max-length", type=int, default=64)
    args = parser.parse_args()
    rng = random.Random(0)

    def featurise(reports, negatives, labels):
        f, m = encode_token_features(reports, MINILM_SOURCE, args.max_length)
        nf, nm = encode_token_features(negatives, MINILM_SOURCE, args.max_length)
        return f, m, nf, nm, labels

    started = time.perf_counter()
    train = featurise(*make_pairs(args.reports, False, rng))
    tests = {
        "seen templates": featurise(*make_pairs(args.test_reports, False, rng)),
        "unseen templates": featurise(*make_pairs(args.test_reports, True, rng)),
    }
    texts = 2 * (args.reports + 2 * args.test_reports)
    print(f"frozen MiniLM features for {texts} texts: {time.perf_counter() - started:.1f} s")
    print(f"{'head':28s} {'seen':>6s} {'unseen':>7s} {'ms/step':>8s}  (batch {args.batch}"
          f" + {args.batch} hard negatives, {args.steps} steps)")  # fmt: skip
    for name, config in HEADS.items():
        scores, ms = train_and_score(config, (train, tests), args.steps, args.batch)
        seen, unseen = scores["seen templates"], scores["unseen templates"]
        print(f"{name:28s} {seen:6.3f} {unseen:7.3f} {ms:8.0f}")


if __name__ == "__main__":
    main()
