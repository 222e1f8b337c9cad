"""The rule graph extractor on hand-written reports: every relation, every presence class,
token indices, the RadGraph JSON format, and the node vocabulary."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clip2clinic.reports.graph import (
    LABELS,
    RuleGraphExtractor,
    extract_graph,
    get_extractor,
    node_vocabulary,
    validate_graph,
)
from clip2clinic.reports.graph.lexicon import load_graph_lexicon
from clip2clinic.reports.graph.presence import ReportScope
from clip2clinic.reports.graph.tokens import joined, tokenize
from clip2clinic.reports.labeler import RuleLabeler


def entities(text: str) -> list[tuple[str, str]]:
    """(tokens, label) of every entity, in order."""
    return [(e["tokens"], e["label"]) for e in extract_graph(text)["entities"].values()]


def relations(text: str) -> set[tuple[str, str, str]]:
    """(source tokens, relation, target tokens) of every relation."""
    found = extract_graph(text)["entities"]
    return {(e["tokens"], name, found[target]["tokens"])
            for e in found.values() for name, target in e["relations"]}


def label_of(text: str, tokens: str) -> str:
    labels = [label for t, label in entities(text) if t == tokens]
    assert len(labels) == 1, (tokens, entities(text))
    return labels[0]


# -- presence classes ---------------------------------------------------------------------

def test_present_uncertain_absent_and_anatomy() -> None:
    text = "Small right pleural effusion. Possible pneumonia. No pneumothorax."
    assert entities(text) == [
        ("Small", "OBS-DP"), ("right", "ANAT-DP"), ("pleural", "ANAT-DP"),
        ("effusion", "OBS-DP"), ("pneumonia", "OBS-U"), ("pneumothorax", "OBS-DA"),
    ]


@pytest.mark.parametrize("text", [
    "No pleural effusion or pneumothorax.",
    "There is no evidence of pleural effusion or pneumothorax.",
    "Without pleural effusion or pneumothorax.",
])
def test_a_negated_list_gives_every_finding_absent(text: str) -> None:
    assert label_of(text, "effusion") == "OBS-DA"
    assert label_of(text, "pneumothorax") == "OBS-DA"
    assert label_of(text, "pleural") == "ANAT-DP"


def test_negation_and_uncertainty_stay_inside_their_sentence_and_clause() -> None:
    text = "No pneumothorax. Large effusion, but no edema. Opacity may represent atelectasis."
    assert label_of(text, "pneumothorax") == "OBS-DA"
    assert label_of(text, "effusion") == "OBS-DP"
    assert label_of(text, "edema") == "OBS-DA"
    assert label_of(text, "Opacity") == "OBS-DP"
    assert label_of(text, "atelectasis") == "OBS-U"


def test_modifiers_share_the_presence_of_their_observation() -> None:
    assert entities("No acute cardiopulmonary process.") == [
        ("acute", "OBS-DA"), ("cardiopulmonary", "ANAT-DP"), ("process", "OBS-DA")]
    assert label_of("Possible mild pulmonary edema.", "mild") == "OBS-U"


# -- relations ----------------------------------------------------------------------------

def test_modify_links_severity_laterality_size_and_descriptors() -> None:
    text = "Small left pleural effusion. There is a 1.5 cm nodule. Patchy streaky opacity."
    found = relations(text)
    assert ("Small", "modify", "effusion") in found
    assert ("left", "modify", "pleural") in found        # laterality of an anatomy
    assert ("1.5 cm", "modify", "nodule") in found        # a size is one entity
    assert ("Patchy", "modify", "opacity") in found
    assert ("streaky", "modify", "opacity") in found


def test_anatomy_phrases_have_one_root() -> None:
    found = relations("Opacity in the left lower lobe. Scarring at the right lung apex.")
    assert {("left", "modify", "lobe"), ("lower", "modify", "lobe"),
            ("right", "modify", "lung"), ("apex", "modify", "lung")} <= found
    assert ("Opacity", "located_at", "lobe") in found
    assert ("Scarring", "located_at", "lung") in found


def test_laterality_without_anatomy_modifies_the_observation() -> None:
    found = relations("Left effusion. Pacemaker on the right.")
    assert ("Left", "modify", "effusion") in found
    assert ("right", "modify", "Pacemaker") in found
    assert label_of("Left effusion.", "Left") == "OBS-DP"


def test_located_at_by_clause() -> None:
    text = ("Right lower lobe consolidation. The heart is enlarged. "
            "Endotracheal tube tip 3 cm above the carina. No pleural effusion or pneumothorax.")
    found = relations(text)
    assert ("consolidation", "located_at", "lobe") in found   # anatomy before it
    assert ("enlarged", "located_at", "heart") in found       # subject of its clause
    assert ("tube", "located_at", "carina") in found          # after a preposition
    assert ("effusion", "located_at", "pleural") in found
    assert not any(s == "pneumothorax" for s, _, _ in found)  # "pleural" is effusion's


def test_located_at_does_not_cross_sentences_or_clauses() -> None:
    found = relations("The lungs are clear. Cardiomegaly. Heart is large but effusion is small.")
    assert ("clear", "located_at", "lungs") in found
    assert not any(s == "Cardiomegaly" and r == "located_at" for s, r, _ in found)
    assert not any(s == "effusion" and t == "Heart" for s, _, t in found)


@pytest.mark.parametrize(("text", "source", "target"), [
    ("Opacity may represent atelectasis.", "Opacity", "atelectasis"),
    ("Bibasilar opacities suggestive of aspiration.", "opacities", "aspiration"),
    ("Nodular opacity consistent with granuloma.", "opacity", "granuloma"),
    ("Consolidation concerning for pneumonia.", "Consolidation", "pneumonia"),
    ("Opacity in the left base which may represent pneumonia.", "Opacity", "pneumonia"),
])
def test_suggestive_of(text: str, source: str, target: str) -> None:
    assert (source, "suggestive_of", target) in relations(text)


def test_suggestive_of_reaches_every_coordinated_alternative() -> None:
    found = relations("Opacity may represent atelectasis or pneumonia. Clear lungs.")
    assert {("Opacity", "suggestive_of", "atelectasis"),
            ("Opacity", "suggestive_of", "pneumonia")} <= found
    assert not any(t == "Clear" for _, r, t in found if r == "suggestive_of")


def test_normality_statements_follow_radgraph() -> None:
    # RadGraph: "normal"/"clear" are OBS-DP located at the anatomy, "size" modifies it.
    text = "The heart is normal in size. The lungs are clear. Cardiomediastinal and hilar " \
           "contours are normal."
    assert entities(text)[:5] == [("heart", "ANAT-DP"), ("normal", "OBS-DP"),
                                  ("size", "ANAT-DP"), ("lungs", "ANAT-DP"), ("clear", "OBS-DP")]
    found = relations(text)
    assert {("normal", "located_at", "heart"), ("size", "modify", "heart"),
            ("clear", "located_at", "lungs"),
            ("normal", "located_at", "Cardiomediastinal"), ("normal", "located_at", "hilar"),
            ("contours", "modify", "hilar"), ("contours", "modify", "Cardiomediastinal")} <= found


# -- format -------------------------------------------------------------------------------

def test_radgraph_json_format_and_token_indices() -> None:
    text = "FINDINGS: Small left\npleural effusion (1.5 cm).  No pneumothorax."
    graph = extract_graph(text)
    assert set(graph) == {"text", "entities", "data_source", "data_split"}
    assert graph["data_source"] is None and graph["data_split"] == "inference"
    words = graph["text"].split()
    assert words == ["FINDINGS", ":", "Small", "left", "pleural", "effusion", "(", "1.5", "cm",
                     ")", ".", "No", "pneumothorax", "."]
    assert list(graph["entities"]) == [str(k) for k in range(1, len(graph["entities"]) + 1)]
    for entity in graph["entities"].values():
        assert set(entity) == {"tokens", "label", "start_ix", "end_ix", "relations"}
        assert " ".join(words[entity["start_ix"]:entity["end_ix"] + 1]) == entity["tokens"]
        assert entity["label"] in LABELS
    size = next(e for e in graph["entities"].values() if e["tokens"] == "1.5 cm")
    assert (size["start_ix"], size["end_ix"]) == (7, 8)
    validate_graph(graph)


def test_multi_sentence_report_indices_run_across_sentences() -> None:
    text = "1. Mild cardiomegaly.\n2. Small right effusion. 3. No edema."
    graph = extract_graph(text)
    validate_graph(graph)
    by_tokens = {e["tokens"]: e for e in graph["entities"].values()}
    words = graph["text"].split()
    assert words[by_tokens["effusion"]["start_ix"]] == "effusion"
    assert by_tokens["edema"]["label"] == "OBS-DA"
    assert by_tokens["effusion"]["start_ix"] > by_tokens["cardiomegaly"]["start_ix"]


def test_validate_graph_rejects_broken_graphs() -> None:
    graph = extract_graph("Small left pleural effusion.")
    validate_graph(graph)
    broken = {**graph, "entities": {**graph["entities"]}}
    broken["entities"]["1"] = {**graph["entities"]["1"], "start_ix": 2, "end_ix": 2}
    with pytest.raises(ValueError, match="not words"):
        validate_graph(broken)
    broken["entities"]["1"] = {**graph["entities"]["1"], "relations": [["modify", "99"]]}
    with pytest.raises(ValueError, match="missing entity"):
        validate_graph(broken)


@pytest.mark.parametrize("text", ["", "   ", "___ ___", "XXXX. No XXXX.", "。，！",
                                  "x" * 5000, "<p>No <b>effusion</b></p>", None])
def test_degenerate_reports_give_valid_graphs(text) -> None:
    graph = extract_graph(text)
    validate_graph(graph)


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=200))
def test_any_text_gives_a_valid_graph_whose_text_splits_into_the_tokens(text: str) -> None:
    graph = extract_graph(text)
    validate_graph(graph)
    assert graph["text"].split() == [t.text for t in tokenize(text)]
    assert joined(tokenize(text)) == graph["text"]


# -- parts --------------------------------------------------------------------------------

def test_presence_equals_the_labelers_status_of() -> None:
    labeler = RuleLabeler()
    text = ("No pleural effusion or pneumothorax. Possible left lower lobe pneumonia; heart is "
            "not enlarged. Opacity may represent atelectasis, but no edema.")
    scope = ReportScope(text, labeler)
    for token in tokenize(text):
        assert scope.status(token.start, token.end) == labeler.status_of(text, token.start,
                                                                         token.end)


def test_node_vocabulary_is_sorted_distinct_and_normalised() -> None:
    graphs = [extract_graph("Small left pleural effusion."),
              extract_graph("No pleural  Effusion. 1.5 cm nodule.")]
    vocabulary = node_vocabulary(graphs)
    assert vocabulary == sorted(set(vocabulary))
    assert vocabulary == ["1.5 cm", "effusion", "left", "nodule", "pleural", "small"]
    assert node_vocabulary(reversed(graphs)) == vocabulary
    assert node_vocabulary([]) == []


def test_a_word_in_two_lists_is_a_clear_error(tmp_path) -> None:
    from clip2clinic.reports.graph.lexicon import FILES, read_entries
    source = load_graph_lexicon.__wrapped__  # the uncached loader
    for name in FILES.values():
        (tmp_path / name).write_text("# empty\n")
    (tmp_path / "anatomy.txt").write_text("heart\n")
    (tmp_path / "observations.txt").write_text("heart\n")
    with pytest.raises(ValueError, match="also in anatomy.txt"):
        source(tmp_path)
    assert read_entries(tmp_path / "anatomy.txt") == ["heart"]


def test_plural_and_prefix_lookups() -> None:
    lexicon = load_graph_lexicon()
    assert lexicon.role("opacities") == "observation"
    assert lexicon.role("apices") == "part"
    assert lexicon.role("atelectatic") == "observation"
    assert lexicon.role("vertebrae") == "anatomy"
    assert lexicon.role("ones") is None  # "on" is a preposition, not an inflected entity


def test_get_extractor_backends() -> None:
    assert isinstance(get_extractor("rules"), RuleGraphExtractor)
    with pytest.raises(ValueError, match="unknown graph backend"):
        get_extractor("nope")
    extractor = get_extractor()
    texts = ["No effusion.", "", "Mild cardiomegaly."]
    assert extractor.extract_many(texts) == [extractor.extract(t) for t in texts]
