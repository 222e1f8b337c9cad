"""Graphs of the real IU X-ray reports against the CheXpert labeler's mentions.

The word lists were extended looking only at half A of a seeded split (``split_halves``, seed
0); the floors below are checked on a sample of half B, which was not looked at.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from iu_labels import split_halves

from clip2clinic.io import as_text, read_table
from clip2clinic.reports.graph import RuleGraphExtractor, node_vocabulary, validate_graph
from clip2clinic.reports.graph.agreement import labeler_agreement

#: Measured on all of half B (1,926 reports): coverage 0.999, agreement 0.999.
COVERAGE_FLOOR = 0.98
AGREEMENT_FLOOR = 0.98
SAMPLE = 600


@pytest.fixture(scope="module")
def held_back(shared_data: Path) -> list[str]:
    reports = read_table(shared_data / "iu_xray" / "indiana_reports.csv",
                         required=["findings", "impression"])
    reports["text"] = [f"{as_text(f)} {as_text(i)}".strip()
                       for f, i in zip(reports["findings"], reports["impression"], strict=True)]
    _, half_b = split_halves(reports, seed=0)
    return half_b["text"].tolist()[:SAMPLE]


def test_graphs_agree_with_the_labeler_on_held_back_reports(held_back: list[str]) -> None:
    graphs = RuleGraphExtractor().extract_many(held_back)
    for graph in graphs:
        validate_graph(graph)
    result = labeler_agreement(held_back, graphs)
    assert result.mentions > 2000
    assert result.coverage >= COVERAGE_FLOOR, result.misses[:10]
    assert result.rate >= AGREEMENT_FLOOR, result.misses[:10]
    # Every report with a finding has observations, most with a relation.
    with_entities = sum(bool(g["entities"]) for g in graphs)
    assert with_entities >= 0.95 * sum(bool(t.strip()) for t in held_back)
    vocabulary = node_vocabulary(graphs)
    assert {"effusion", "pneumothorax", "normal", "clear", "heart", "lungs"} <= set(vocabulary)


def test_agreement_counts_a_wrong_class_as_disagreement() -> None:
    text = "No pleural effusion."
    graph = RuleGraphExtractor().extract(text)
    assert labeler_agreement([text], [graph]).rate == 1.0
    for entity in graph["entities"].values():
        if entity["tokens"] == "effusion":
            entity["label"] = "OBS-DP"
    result = labeler_agreement([text], [graph])
    assert result.rate == 0.0 and result.misses[0][0] == "effusion"
