import re
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clip2clinic import cli
from clip2clinic.io import as_text, read_table
from clip2clinic.reports import cleanup
from clip2clinic.reports.cleanup import clean_many, clean_report, remove_temporal, split_entities
from clip2clinic.reports.sections import iu_report_text, mimic_report_text
from clip2clinic.reports.sentences import split_sentences

# ---------------------------------------------------------------------------------------------
# Step 1: one clinical entity per sentence
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "No pleural effusion, pneumothorax, or focal consolidation.",
            "No pleural effusion. No pneumothorax. No focal consolidation.",
        ),
        ("No pleural effusion or pneumothorax.", "No pleural effusion. No pneumothorax."),
        (
            "Left pleural effusion and right lower lobe atelectasis.",
            "Left pleural effusion. Right lower lobe atelectasis.",
        ),
        (
            "Heart size and mediastinal contours are normal.",
            "Heart size is normal. Mediastinal contours are normal.",
        ),
        (
            "The heart size and pulmonary vascularity appear within normal limits.",
            "The heart size appears within normal limits. "
            "Pulmonary vascularity appears within normal limits.",
        ),
        (
            "No pneumothorax or pleural effusion is seen.",
            "No pneumothorax is seen. No pleural effusion is seen.",
        ),
        (
            "There is no evidence of pneumothorax or pleural effusion.",
            "There is no evidence of pneumothorax. There is no evidence of pleural effusion.",
        ),
        (
            "The lungs are clear without focal consolidation, effusion, or pneumothorax.",
            "The lungs are clear. No focal consolidation. No effusion. No pneumothorax.",
        ),
        (
            "Heart size normal, no effusion or pneumothorax.",
            "Heart size normal. No effusion. No pneumothorax.",
        ),
        (
            "Small left pleural effusion, but no pneumothorax.",
            "Small left pleural effusion. No pneumothorax.",
        ),
        (
            "Normal cardiac size, mediastinum, and central pulmonary vasculature.",
            "Normal cardiac size. Normal mediastinum. Normal central pulmonary vasculature.",
        ),
    ],
)
def test_one_entity_per_sentence(text: str, expected: str) -> None:
    assert clean_report(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Cardiac and mediastinal contours are normal.",  # shared head noun
        "Right upper lobe and right middle lobe pneumonia.",  # shared head noun
        "Right and left lower lobe atelectasis.",
        "Opacity may represent atelectasis or pneumonia.",  # alternatives, not a list
        "Bibasilar atelectasis and/or infiltrate.",
        "Calcified granuloma in the right upper lobe and left hilum.",  # coordinated locations
        "Visualized osseous structures of the thorax are without acute abnormality.",
        "PA and lateral views of the chest were obtained.",
    ],
)
def test_coordinations_that_are_not_lists_stay_whole(text: str) -> None:
    assert clean_report(text) == text


def test_split_entities_returns_clause_unchanged_without_a_list() -> None:
    assert split_entities("Mild cardiomegaly") == ["Mild cardiomegaly"]
    assert split_entities("without pneumothorax") == ["No pneumothorax"]


# ---------------------------------------------------------------------------------------------
# Step 2: temporal and comparison content
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "No significant interval change.",
        "Compared to prior, no change.",
        "As compared to the previous radiograph, there is no relevant change.",
        "In comparison with the study of ___, there is little interval change.",
        "Stable appearance of the chest.",
        "Heart size is unchanged.",
        "The cardiomediastinal silhouette is stable.",
        "Unchanged.",
        "No comparison chest x-ray.",
        "Comparison XXXX, XXXX.",
        "The left lung has re-expanded.",
    ],
)
def test_pure_comparison_sentences_are_dropped(text: str) -> None:
    assert clean_report(text) == ""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Slightly increased left effusion.", "Left effusion."),
        ("Persistent mild cardiomegaly.", "Mild cardiomegaly."),
        ("New right lower lobe opacity.", "Right lower lobe opacity."),
        ("Expanding right upper lobe mass.", "Right upper lobe mass."),
        ("Moderate cardiomegaly persists.", "Moderate cardiomegaly."),
        ("Small bilateral pleural effusions are unchanged.", "Small bilateral pleural effusions."),
        (
            "There is biapical pleural thickening, unchanged from prior.",
            "There is biapical pleural thickening.",
        ),
        (
            "There is tortuosity of the thoracic aorta, stable compared with prior.",
            "There is tortuosity of the thoracic aorta.",
        ),
        (
            "Compared to chest radiographs ___ through ___, mild pulmonary edema has worsened.",
            "Mild pulmonary edema.",
        ),
        (
            "Interval increase in size of the moderate bilateral pleural effusions.",
            "Moderate bilateral pleural effusions.",
        ),
        (
            "No interval change in the diffuse bilateral interstitial opacities.",
            "Diffuse bilateral interstitial opacities.",
        ),
        ("Mild hyperinflation appears similar to prior.", "Mild hyperinflation."),
        ("Lungs remain clear.", "Lungs are clear."),
        (
            "Right pleural effusion has decreased in size, now small.",
            "Right pleural effusion, small.",
        ),
    ],
)
def test_comparison_modifiers_are_stripped(text: str, expected: str) -> None:
    assert clean_report(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Resolved left pleural effusion.", "No left pleural effusion."),
        ("The left pleural effusion has resolved.", "No left pleural effusion."),
        ("Interval resolution of right midlung opacity.", "No right midlung opacity."),
        ("Left basilar opacity has cleared.", "No left basilar opacity."),
        ("The previously seen right-sided PICC has been removed.", "No right-sided PICC."),
        ("Mild interstitial edema is no longer seen.", "No interstitial edema."),
        (
            "Interval removal of right chest tube, no pneumothorax.",
            "No right chest tube. No pneumothorax.",
        ),
        (
            "Consolidation and atelectasis in the left lower lobe have cleared in the interval.",
            "No consolidation. No atelectasis in the left lower lobe.",
        ),
        (
            "Cleared left lower lobe airspace disease with persistent right middle lobe "
            "airspace disease.",
            "No left lower lobe airspace disease. Right middle lobe airspace disease.",
        ),
        # Partial resolution leaves the finding present.
        (
            "Near-complete resolution of right-sided pleural effusion.",
            "Right-sided pleural effusion.",
        ),
        ("The left effusion has partially resolved.", "The left effusion."),
        ("Resolving pulmonary interstitial edema.", "Pulmonary interstitial edema."),
    ],
)
def test_resolution_becomes_absence(text: str, expected: str) -> None:
    assert clean_report(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("No new focal consolidation.", "No focal consolidation."),
        ("No pneumothorax since the prior study.", "No pneumothorax."),
        ("No pleural effusion compared to ___.", "No pleural effusion."),
        ("Again seen is no pneumothorax.", "Seen is no pneumothorax."),
    ],
)
def test_negations_survive_comparison_removal(text: str, expected: str) -> None:
    assert clean_report(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # "elevate": a raised hemidiaphragm is a finding; only comparison around it goes.
        ("Elevated left hemidiaphragm.", "Elevated left hemidiaphragm."),
        (
            "There is stable elevation of the left hemidiaphragm.",
            "There is elevation of the left hemidiaphragm.",
        ),
        ("The right hemidiaphragm is more elevated.", "The right hemidiaphragm is elevated."),
        (
            "Increased elevation of the right hemidiaphragm.",
            "Elevation of the right hemidiaphragm.",
        ),
        # "expand": lung expansion is a state of this image; re-expansion is a change.
        ("The lungs are well expanded and clear.", "The lungs are well expanded and clear."),
        (
            "Degenerative changes in the thoracic spine.",
            "Degenerative changes in the thoracic spine.",
        ),
        ("Increased interstitial markings.", "Increased interstitial markings."),
        ("Lung volumes are decreased.", "Lung volumes are low."),
        ("Reduced lung volumes.", "Low lung volumes."),
        (
            "Bilateral effusions, left worse than right.",
            "Bilateral effusions, left greater than right.",
        ),
        ("Osteophytes, worst at L2-L3.", "Osteophytes, most marked at L2-L3."),
        ("Expansile lesion of the right ninth rib.", "Expansile lesion of the right ninth rib."),
    ],
)
def test_words_that_name_findings_are_kept(text: str, expected: str) -> None:
    assert clean_report(text) == expected


def test_communication_and_follow_up_are_dropped() -> None:
    assert clean_report("Findings were discussed with Dr. ___ by telephone at 10:15 on ___.") == ""
    assert clean_report("Recommend follow-up radiographs to document resolution.") == ""
    assert clean_report("A CT of the chest is recommended.") == ""
    assert clean_report("Small focal opacity in the left upper lobe, followup recommended.") == (
        "Small focal opacity in the left upper lobe."
    )


def test_remove_temporal_on_one_clause() -> None:
    assert remove_temporal("No significant interval change") == []
    assert remove_temporal("The right pneumothorax has resolved") == ["No right pneumothorax"]
    assert remove_temporal("Small left effusion") == ["Small left effusion"]


def test_a_whole_mimic_report() -> None:
    report = "\n".join([
        "                                 FINAL REPORT",
        " INDICATION:  ___M with fever after extubation.",
        " ",
        " COMPARISON:  Chest radiograph from ___.",
        " ",
        " FINDINGS: ",
        " ",
        " As compared to the previous radiograph, the endotracheal tube has been removed.",
        " The nasogastric tube is unchanged in position.  Persistent moderate cardiomegaly.",
        " New left lower lobe opacity.  Small bilateral pleural effusions, slightly",
        " increased.  No pneumothorax.",
        " ",
        " IMPRESSION: ",
        " ",
        " New left lower lobe opacity concerning for pneumonia.  Dr. ___ was paged at",
        " 2:10 pm on ___ to discuss these findings.",
    ])
    assert clean_report(mimic_report_text(report)) == (
        "No endotracheal tube. The nasogastric tube. Moderate cardiomegaly. Left lower lobe "
        "opacity. Small bilateral pleural effusions. No pneumothorax. Left lower lobe opacity "
        "concerning for pneumonia."
    )


# ---------------------------------------------------------------------------------------------
# Robustness
# ---------------------------------------------------------------------------------------------


def test_every_bad_report_gives_text(bad_inputs: Path) -> None:
    frame = read_table(bad_inputs / "reports_bad.csv", ["id", "report"])
    cleaned, errors = clean_many([as_text(r) for r in frame["report"]])
    by_id = dict(zip(frame["id"], cleaned, strict=True))
    assert errors == [""] * len(frame)
    assert by_id["empty"] == by_id["missing_value"] == by_id["whitespace"] == ""
    assert by_id["deid_only"] == by_id["numbers_only"] == ""
    assert "There is a small left pleural effusion. No pneumothorax." in by_id["huge"]
    assert "Pleural effusion — small, left-sided." in by_id["unicode"]


def test_a_failing_row_keeps_its_text(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail_on_marker(text: str) -> str:
        if "boom" in text:
            raise RuntimeError("boom")
        return text.upper()

    monkeypatch.setattr(cleanup, "clean_report", fail_on_marker)
    cleaned, errors = clean_many(["No effusion.", "boom. Lungs clear."])
    assert cleaned == ["NO EFFUSION.", "boom. Lungs clear."]
    assert errors[0] == "" and errors[1].startswith("cleanup failed: RuntimeError")


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from([
    "No", "new", "stable", "resolved", "effusion", "pneumothorax", "has", "and", "or", ",",
    ".", "compared", "to", "prior", "___", "XXXX", "left", "with", "without", "interval",
    "change", "is", "unchanged", "There", "elevated", "hemidiaphragm", "\n", "1.", "é", "(",
]), max_size=30).map(" ".join))
def test_any_word_salad_gives_tidy_sentences(text: str) -> None:
    for sentence in cleanup.clean_sentences(text):
        assert sentence == sentence.strip() and "  " not in sentence
        assert sentence[-1] in ".?!" and len(sentence) > 1


# ---------------------------------------------------------------------------------------------
# The real IU reports
# ---------------------------------------------------------------------------------------------

# The trigger words of CXR-Align's step 2, with their inflections.
TRIGGERS = re.compile(
    r"\b(?:compared\s+to|in\s+comparison\s+with|chang\w*|unchang\w*|clear(?:ed|ing)|"
    r"constant\w*|decreas\w*|elevat\w*|expan\w*|improv\w*|increas\w*|persist\w*|reduc\w*|"
    r"remov\w*|resol\w*|stabl\w*|wors\w*|new|newly|interval\w*|prior|previous\w*)\b",
    re.I,
)
# Uses that name a finding of this image, documented in docs/clean.md.
FINDING_USES = re.compile(
    # "degenerative changes", "postop changes", "changes of emphysema"; not "no change"
    r"(?<!\bno )(?<!\binterval )(?<!\bsignificant )(?<!\blittle )(?<!\bany )(?<!\bwithout )"
    r"(?<!\bappreciable )(?<=[a-z] )chang(?:e|es)\b|\bchang(?:e|es)\s+of\b"
    r"|\belevat(?:ed|ion)\b"  # hemidiaphragm
    r"|(?<!re-)(?<!re)\b(?:well[- ])?(?:hyper)?expan(?:ded|sile|sion)\b"  # lung expansion
    r"|\bincreased(?:\s+[\w-]+){0,2}?\s+(?:markings?|diameter)\b"
    r"|\bcompared\s+to\s+(?:the\s+)?(?:left|right)\b"  # the other side, not another study
    r"|\bhigh[- ]resolution\b",  # a CT technique
    re.I,
)
FINDINGS = re.compile(
    r"\b(effusions?|pneumothora(?:x|ces)|consolidations?|edema|cardiomegaly|opacit(?:y|ies)|"
    r"atelectasis|pneumonia|fractures?|nodules?|mass(?:es)?|infiltrates?|airspace disease|"
    r"granulomas?|emphysema|fibrosis|thickening|adenopathy)\b",
    re.I,
)
NEGATION = re.compile(
    r"\b(?:no|without|negative for|free of|not)\b"
    r"(?!\s+(?:significant\s+|interval\s+)*(?:change|comparison|interval|prior|previous))",
    re.I,
)


@pytest.fixture(scope="module")
def iu_pairs(shared_data: Path) -> list[tuple[str, str]]:
    frame = read_table(shared_data / "iu_xray" / "indiana_reports.csv", ["findings", "impression"])
    texts = [iu_report_text(as_text(f), as_text(i))
             for f, i in zip(frame["findings"], frame["impression"], strict=True)]
    return [(text, clean_report(text)) for text in texts]


def _statements(text: str) -> tuple[set[str], set[str]]:
    """(negated, mentioned) finding stems, sentence by sentence."""
    negated, mentioned = set(), set()
    for sentence in split_sentences(text):
        for match in FINDINGS.finditer(sentence):
            stem = match[1].lower()[:6]
            mentioned.add(stem)
            if NEGATION.search(sentence[: match.start()]):
                negated.add(stem)
    return negated, mentioned


def test_iu_no_trigger_survives_except_findings(iu_pairs: list[tuple[str, str]]) -> None:
    before = sum(len(TRIGGERS.findall(FINDING_USES.sub("", t))) for t, _ in iu_pairs)
    survivors = [
        sentence
        for _, cleaned in iu_pairs
        for sentence in split_sentences(cleaned)
        if TRIGGERS.search(FINDING_USES.sub("", sentence))
    ]
    assert before > 1500  # the reports do compare a lot
    assert survivors == []


def test_iu_negations_and_findings_are_kept(iu_pairs: list[tuple[str, str]]) -> None:
    kept_negations = kept_findings = negations_before = negations_after = 0
    for text, cleaned in iu_pairs:
        negated, mentioned = _statements(text)
        negated_after, mentioned_after = _statements(cleaned)
        kept_negations += negated <= negated_after
        kept_findings += mentioned <= mentioned_after
        negations_before += len(negated)
        negations_after += len(negated & negated_after)
    n = len(iu_pairs)
    # Losses come from recommendations ("... to exclude an underlying mass") and conditionals.
    assert kept_negations / n >= 0.999
    assert kept_findings / n >= 0.99
    assert negations_after / negations_before >= 0.999


def test_iu_cleaning_splits_lists(iu_pairs: list[tuple[str, str]]) -> None:
    lists_before = sum(1 for t, _ in iu_pairs for s in split_sentences(t)
                       if re.match(r"no\b[^.]*,[^.]*\bor\b", s, re.I))
    lists_after = sum(1 for _, c in iu_pairs for s in split_sentences(c)
                      if re.match(r"no\b[^.]*,[^.]*\bor\b", s, re.I))
    assert lists_before > 500
    # What stays is a shared head: "No acute or active cardiac, pulmonary or pleural disease."
    assert lists_after <= 0.05 * lists_before


# ---------------------------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------------------------


def test_clean_command_on_mimic_csv(tmp_path: Path) -> None:
    source = tmp_path / "reports.csv"
    pd.DataFrame({
        "study": ["s1", "s2"],
        "text": [
            "FINAL REPORT\n FINDINGS: No effusion or pneumothorax.\n \n IMPRESSION: Stable "
            "mild cardiomegaly.",
            "IMPRESSION: No significant interval change.",
        ],
    }).to_csv(source, index=False)
    output = tmp_path / "out" / "clean.csv"
    code = cli.main(["clean", str(source), "--text-column", "text", "--id-column", "study",
                     "--output", str(output)])
    assert code == 0
    table = pd.read_csv(output, keep_default_na=False)
    assert list(table.columns) == ["study", "report", "cleaned", "error"]
    assert table["report"].tolist() == [
        "No effusion or pneumothorax.\nStable mild cardiomegaly.",
        "No significant interval change.",
    ]
    assert table["cleaned"].tolist() == ["No effusion. No pneumothorax. Mild cardiomegaly.", ""]


def test_clean_command_iu_columns(tmp_path: Path) -> None:
    source = tmp_path / "iu.csv"
    pd.DataFrame({"uid": [7], "findings": ["Heart size normal. No XXXX of effusion."],
                  "impression": ["Normal chest x-XXXX."]}).to_csv(source, index=False)
    output = tmp_path / "iu_clean.csv"
    assert cli.main(["clean", str(source), "--format", "iu", "--id-column", "uid",
                     "--output", str(output)]) == 0
    row = pd.read_csv(output, keep_default_na=False).iloc[0]
    assert row["cleaned"] == "Heart size normal. No XXXX of effusion. Normal chest x-ray."


def test_clean_command_mimic_folder(tmp_path: Path) -> None:
    study = tmp_path / "files" / "p10" / "p10000032" / "s50414267.txt"
    study.parent.mkdir(parents=True)
    study.write_bytes(b"FINAL REPORT\n IMPRESSION: No acute process. Caf\xe9 sign.\n")
    output = tmp_path / "clean.csv"
    assert cli.main(["clean", str(tmp_path / "files"), "--output", str(output)]) == 0
    row = pd.read_csv(output, dtype=str, keep_default_na=False).iloc[0]
    assert (row["subject_id"], row["study_id"]) == ("10000032", "50414267")
    assert row["cleaned"] == "No acute process. Café sign."


@pytest.mark.parametrize("name", ["reports_bad.csv", "reports_not_utf8.csv"])
def test_clean_command_bad_reports(bad_inputs: Path, tmp_path: Path, name: str) -> None:
    output = tmp_path / "out.csv"
    assert cli.main(["clean", str(bad_inputs / name), "--text-column", "report",
                     "--id-column", "id", "--output", str(output)]) == 0
    source = read_table(bad_inputs / name)
    table = pd.read_csv(output, dtype=str, keep_default_na=False)
    assert table["id"].tolist() == source["id"].tolist()
    assert (table["error"] == "").all()


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("reports_missing_column.csv", "missing column"),
        ("reports_ragged.csv", "unreadable CSV"),
        ("reports_empty_file.csv", "empty"),
    ],
)
def test_clean_command_unusable_files(
    bad_inputs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str,
    message: str,
) -> None:
    output = tmp_path / "out.csv"
    code = cli.main(["clean", str(bad_inputs / name), "--text-column", "report",
                     "--id-column", "id", "--output", str(output)])
    assert code == 2
    error = capsys.readouterr().err
    assert name in error and message in error
    assert error.count("\n") == 1
    assert not output.exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--format", "iu", "--text-column", "report"], "--findings-column"),
        (["--format", "plain"], "--text-column is required"),
        (["--text-column", "report", "--backend", "llm"], "--llm-url and --llm-model"),
    ],
)
def test_clean_command_flag_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str,
) -> None:
    source = tmp_path / "in.csv"
    source.write_text("id,report\na,No effusion.\n")
    code = cli.main(["clean", str(source), "--id-column", "id", "--output",
                     str(tmp_path / "o.csv"), *extra])
    assert code == 2
    assert message in capsys.readouterr().err
