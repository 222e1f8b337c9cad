from clip2clinic.reports.sentences import sentence_spans, split_sentences


def test_numbered_lists_and_blank_lines() -> None:
    text = (
        "1. Left pleural effusion with adjacent atelectasis. Right effusion is also present."
        "\n\n2. Cardiomegaly without overt edema."
    )
    assert split_sentences(text) == [
        "Left pleural effusion with adjacent atelectasis.",
        "Right effusion is also present.",
        "Cardiomegaly without overt edema.",
    ]


def test_decimals_abbreviations_and_missing_final_period() -> None:
    text = "A 1.5 cm nodule, approx. 2 cm from the hilum. No. 3 tube. No edema. No effusion"
    assert split_sentences(text) == [
        "A 1.5 cm nodule, approx. 2 cm from the hilum.",
        "No. 3 tube.",
        "No edema.",
        "No effusion",
    ]


def test_inline_list_items_and_spans_index_the_text() -> None:
    text = "IMPRESSION: 1) Clear lungs. 2) No acute process."
    spans = sentence_spans(text)
    assert [text[s:e] for s, e in spans] == ["IMPRESSION:", "Clear lungs.", "No acute process."]


def test_empty_and_punctuation_only() -> None:
    assert split_sentences("") == []
    assert split_sentences(" .\n\n ; ") == []
