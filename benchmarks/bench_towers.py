"""Forward + backward time per training step of each part of the embedded preset, on this CPU.

Batch 64 images; 128 texts (64 reports + 64 hard negatives) as cached frozen-MiniLM token
features, padded to the longest in the batch; 128 report graphs. Texts are real IU X-ray
reports (findings + impression) from ../shared/data when present, else a fixed sentence mix;
graphs are random with 4-12 entities and ~0.7 relations per entity (the values do not change
the cost). Prints the median ms/step per part over ``--steps`` timed steps after 2 warm-ups,
and the AdamW step over all parameters.

    .venv/bin/python benchmarks/bench_towers.py [--steps 10] [--batch 64] [--max-length 64]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from pathlib import Path

import torch

from clip2clinic.embedded import MINILM_SOURCE
from clip2clinic.model import ClinicCLIP, embedded_config, graphs_to_batch
from clip2clinic.model.frozen_text import encode_token_features
from clip2clinic.reports.graph import LABELS

SHARED = Path(os.environ.get("CLIP2CLINIC_SHARED_DATA", Path(__file__).parents[2] / "shared/data"))
FALLBACK = (
    "Heart size is normal. The lungs are clear. No pleural effusion or pneumothorax.",
    "Small right pleural effusion with adjacent atelectasis. No pneumothorax is seen.",
    "Stable cardiomegaly. Mild pulmonary vascular congestion without frank edema.",
)


def report_texts(count: int) -> list[str]:
    path = SHARED / "iu_xray" / "indiana_reports.csv"
    if not path.is_file():
        return [FALLBACK[i % len(FALLBACK)] for i in range(count)]
    import pandas as pd

    frame = pd.read_csv(path).fillna("")
    texts = (frame["findings"] + " " + frame["impression"]).str.strip()
    return texts[texts != ""].sample(count, random_state=0).tolist()


def random_graphs(count: int, vocab_size: int, rng: random.Random) -> list[dict]:
    graphs = []
    for _ in range(count):
        size = rng.randint(4, 12)
        entities = {
            str(i): {"tokens": f"e{rng.randrange(vocab_size)}", "label": rng.choice(LABELS),
                     "start_ix": i, "end_ix": i, "relations": []}
            for i in range(size)
        }  # fmt: skip
        for i in range(size):
            if rng.random() < 0.7:
                entities[str(i)]["relations"].append(["modify", str(rng.randrange(size))])
        graphs.append({"entities": entities})
    return graphs


def time_steps(step, steps: int) -> float:
    """Median milliseconds of ``step()`` over ``steps`` calls after two warm-ups."""
    for _ in range(2):
        step()
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--max-length", type=int, default=64)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = ClinicCLIP(embedded_config(graph=True)).train()
    size = model.config.image.config["image_size"]
    pixels = torch.rand(args.batch, 1, size, size)
    features, masks = encode_token_features(
        report_texts(2 * args.batch), MINILM_SOURCE, args.max_length
    )
    length = int(masks.sum(dim=1).max())
    features, masks = features[:, :length], masks[:, :length]
    vocab = {f"e{i}": i for i in range(500)}
    node_table = torch.randn(len(vocab), model.config.graph.node_dim)
    graphs = random_graphs(2 * args.batch, len(vocab), random.Random(0))

    def backward(embeddings: torch.Tensor) -> None:
        model.zero_grad(set_to_none=True)
        embeddings.square().sum().backward()

    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-4)
    parts = {
        f"image tower ({args.batch} x {size}px)": lambda: backward(model.encode_image(pixels)),
        f"text head ({2 * args.batch} texts x {length} tokens)": lambda: backward(
            model.encode_text(features, masks)
        ),
        f"graph collate ({2 * args.batch} graphs)": lambda: graphs_to_batch(
            graphs, vocab, node_table
        ),
        f"graph encoder ({2 * args.batch} graphs)": lambda: backward(
            model.encode_graph(graphs_to_batch(graphs, vocab, node_table))
        ),
        "AdamW step (all parameters)": optimiser.step,
    }
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}, "
          f"median of {args.steps} steps")  # fmt: skip
    total = 0.0
    for name, step in parts.items():
        ms = time_steps(step, args.steps)
        if not name.startswith("graph collate"):  # the encoder's time includes collation
            total += ms
        print(f"  {name:42s} {ms:7.1f} ms/step")
    print(f"  {'sum (image + text + graph + AdamW)':42s} {total:7.1f} ms/step")


if __name__ == "__main__":
    main()
