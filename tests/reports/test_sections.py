from pathlib import Path

import pytest

from clip2clinic.io import as_text, read_table
from clip2clinic.reports.sections import (
    canonical_section,
    iu_report_text,
    mimic_report_text,
    parse_sections,
    report_text,
    split_sections,
)


def _mimic(*lines: str) -> str:
    return "\n".join(lines) + "\n"


# Written for these tests in MIMIC-CXR's layout: a centred title, one-space indents, blank
# lines holding one space, lines wrapped at about 80 characters, "___" for de-identified words.
MIMIC_FULL = _mimic(
    "                                 FINAL REPORT",
    " EXAMINATION:  CHEST (PA AND LAT)",
    " ",
    " INDICATION:  ___F with new cough and low-grade fever, evaluate for pneumonia.",
    " ",
    " TECHNIQUE:  Chest PA and lateral",
    " ",
    " COMPARISON:  ___",
    " ",
    " FINDINGS: ",
    " ",
    " PA and lateral views of the chest provided.  There is a small left pleural",
    " effusion with adjacent atelectasis.  No pneumothorax.  The cardiomediastinal",
    " silhouette is normal.",
    " ",
    " IMPRESSION: ",
    " ",
    " Small left pleural effusion.  No focal consolidation to suggest pneumonia.",
)

MIMIC_IMPRESSION_ONLY = _mimic(
    "                                 FINAL REPORT",
    " INDICATION:  ___M with chest pain.",
    " ",
    " COMPARISON:  Chest radiograph from ___.",
    " ",
    " IMPRESSION: ",
    " ",
    " 1. No acute cardiopulmonary process.",
    " 2. Mild cardiomegaly, unchanged.",
)

# An older report: the findings follow the COMPARISON paragraph without a header.
MIMIC_NO_HEADER_FOR_FINDINGS = _mimic(
    "                                 FINAL REPORT",
    " HISTORY:  Shortness of breath.",
    " ",
    " COMPARISON:  ___.",
    " ",
    " The lungs are clear.  There is no pleural effusion or pneumothorax.",
    " ",
    " Heart size is normal.",
)

MIMIC_WET_READ = _mimic(
    " WET READ: ___ ___ ___ 9:41 PM",
    "  Right lower lobe opacity concerning for pneumonia.",
    " ______________________________________________________________________________",
    "                                 FINAL REPORT",
    " PORTABLE AP CHEST RADIOGRAPH:  Right lower lobe opacity, likely pneumonia.  No",
    " effusion.",
)


def test_mimic_sections_are_parsed_and_unwrapped() -> None:
    sections = parse_sections(MIMIC_FULL)
    assert list(sections) == [
        "examination", "indication", "technique", "comparison", "findings", "impression",
    ]
    assert sections["indication"].startswith("___F with new cough")
    assert sections["comparison"] == "___"
    # The line break inside "pleural\n effusion" is a wrap, not a boundary.
    assert "small left pleural effusion with adjacent atelectasis" in sections["findings"]
    assert "\n" not in sections["findings"]


def test_training_text_is_findings_then_impression() -> None:
    text = mimic_report_text(MIMIC_FULL)
    findings, impression = text.split("\n")
    assert findings.startswith("PA and lateral views") and findings.endswith("is normal.")
    assert impression == (
        "Small left pleural effusion. No focal consolidation to suggest pneumonia."
    )


def test_impression_only_keeps_numbered_items_apart() -> None:
    text = mimic_report_text(MIMIC_IMPRESSION_ONLY)
    assert text == "1. No acute cardiopulmonary process.\n2. Mild cardiomegaly, unchanged."


def test_headerless_findings_after_comparison_are_used() -> None:
    sections = split_sections(MIMIC_NO_HEADER_FOR_FINDINGS)
    assert sections[1] == ("comparison", "___.")
    assert mimic_report_text(MIMIC_NO_HEADER_FOR_FINDINGS) == (
        "The lungs are clear. There is no pleural effusion or pneumothorax.\n"
        "Heart size is normal."
    )


def test_headerless_findings_before_impression_are_kept() -> None:
    report = _mimic(
        " COMPARISON:  ___.",
        " ",
        " Lungs are hyperinflated.  No pleural effusion.",
        " ",
        " IMPRESSION:  COPD without acute process.",
    )
    assert mimic_report_text(report) == (
        "Lungs are hyperinflated. No pleural effusion.\nCOPD without acute process."
    )


def test_view_header_counts_as_findings_and_wet_read_is_not_used() -> None:
    sections = parse_sections(MIMIC_WET_READ)
    assert sections["wet_read"].endswith("concerning for pneumonia.")
    assert mimic_report_text(MIMIC_WET_READ) == (
        "Right lower lobe opacity, likely pneumonia. No effusion."
    )


def test_last_paragraph_fallback() -> None:
    report = (
        " INDICATION:  Fever.\n \n NOTE:  Preliminary read reviewed.\n \n"
        " Bibasilar atelectasis.  No effusion.\n"
    )
    # NOTE is neither findings nor impression; its last paragraph is the report.
    assert mimic_report_text(report) == "Bibasilar atelectasis. No effusion."


@pytest.mark.parametrize(
    ("header", "section"),
    [
        ("FINDINGS", "findings"),
        ("FINDNGS", "findings"),
        ("FINDINGS AND IMPRESSION", "findings"),
        ("IMPRESSON", "impression"),
        ("CONCLUSION", "impression"),
        ("REASON FOR THIS EXAMINATION", "indication"),
        ("CLINICAL HISTORY", "history"),
        ("COMAPRISON", "comparison"),
        ("PA AND LATERAL VIEWS OF THE CHEST", "view"),
        ("BONE WINDOWS", "bone_windows"),
    ],
)
def test_canonical_section_names(header: str, section: str) -> None:
    assert canonical_section(header) == section


def test_inline_headers_and_headers_only() -> None:
    assert parse_sections("FINDINGS: Lungs clear. IMPRESSION: Normal.") == {
        "findings": "Lungs clear.",
        "impression": "Normal.",
    }
    assert mimic_report_text("FINDINGS:\n\nIMPRESSION:\n") == ""
    assert mimic_report_text("") == ""
    assert mimic_report_text("No acute process.") == "No acute process."


def test_iu_text_restores_x_ray_and_keeps_other_marks() -> None:
    text = iu_report_text("Heart size normal. No XXXX of effusion.", "Normal chest x-XXXX.")
    assert text == "Heart size normal. No XXXX of effusion.\nNormal chest x-ray."
    assert iu_report_text("", "No acute disease.") == "No acute disease."
    assert report_text({"findings": None, "impression": "Clear."}, "iu") == "Clear."


def test_report_text_formats() -> None:
    assert report_text("  Lungs\n clear. ", "plain") == "Lungs clear."
    with pytest.raises(ValueError, match="unknown report format"):
        report_text("x", "dicom")
    with pytest.raises(TypeError):
        report_text("x", "iu")


def test_real_iu_reports_all_give_text(shared_data: Path) -> None:
    frame = read_table(shared_data / "iu_xray" / "indiana_reports.csv", ["findings", "impression"])
    texts = [
        iu_report_text(as_text(f), as_text(i))
        for f, i in zip(frame["findings"], frame["impression"], strict=True)
    ]
    has_any = [bool(as_text(f).strip() or as_text(i).strip())
               for f, i in zip(frame["findings"], frame["impression"], strict=True)]
    assert [bool(t) for t in texts] == has_any
    assert not any("x-XXXX" in t for t in texts)
