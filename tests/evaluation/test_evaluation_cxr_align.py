import json

import numpy as np
import pandas as pd
import pytest
from iu_hard_negatives import iu_texts, score_hard_negatives

from clip2clinic.embedded import MINILM_SOURCE
from clip2clinic.evaluation.cxr_align import (
    build_cxr_align,
    cxr_align_cases,
    load_cxr_align,
    save_cxr_align,
    score_cxr_align,
    truncation,
)
from clip2clinic.io import InputError
from clip2clinic.model.towers import load_tokenizer
from clip2clinic.observations import CHEXPERT_CLASSES
from clip2clinic.reports.labeler import RuleLabeler
from clip2clinic.reports.negation import negation_phrasings


def unit(rng, n, d=64):
    x = rng.normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


# --- scoring -------------------------------------------------------------------------------


def test_a_perfect_embedding_scores_one_and_a_flipped_one_zero():
    rng = np.random.default_rng(0)
    image, negation, omitted = unit(rng, 40), unit(rng, 40), unit(rng, 40)
    chosen = ["Edema"] * 40
    perfect = score_cxr_align(image, image, negation, omitted, chosen)
    assert perfect.metrics["cxr_align_a"].value == 1.0 == perfect.metrics["cxr_align_b"].value
    flipped = score_cxr_align(image, negation, image, image, chosen)
    assert flipped.metrics["cxr_align_a"].value == 0.0 == flipped.metrics["cxr_align_b"].value


def test_a_random_embedding_scores_about_one_half():
    rng = np.random.default_rng(1)
    image, report, negation, omitted = (unit(rng, 400) for _ in range(4))
    result = score_cxr_align(image, report, negation, omitted, ["Edema"] * 400)
    for task in ("cxr_align_a", "cxr_align_b"):
        estimate = result.metrics[task]
        assert estimate.low < 0.5 < estimate.high and estimate.n == 400


def test_task_a_and_b_are_scored_separately_and_a_tie_is_wrong():
    rng = np.random.default_rng(2)
    image, other = unit(rng, 10), unit(rng, 10)
    # r^n far from the image (A right), r^r identical to r (a tie: B wrong)
    result = score_cxr_align(image, image, other, image, ["Edema"] * 10)
    assert result.metrics["cxr_align_a"].value == 1.0
    assert result.metrics["cxr_align_b"].value == 0.0


LONG = ("The heart size is normal. The mediastinal contours are within normal limits. There is "
        "no focal consolidation. No pneumothorax is seen. The osseous structures are intact. ")


def test_a_finding_past_the_token_cut_makes_the_pair_identical_and_a_tie():
    tokenizer = load_tokenizer(MINILM_SOURCE)
    finding = "Small left pleural effusion."
    report = [finding + " " + LONG, LONG + finding, "Small left pleural effusion."]
    negation = ["No pleural effusion. " + LONG, LONG + "No pleural effusion.",
                "No pleural effusion."]  # fmt: skip
    omitted = [LONG, LONG, "No acute process."]
    cut = truncation(tokenizer, 32, report, negation, omitted)
    # row 0: the finding leads, within the cut; row 1: it lies past token 32; row 2: short
    assert cut.cut[:, 0].tolist() == [True, True, False]
    assert cut.same_negation.tolist() == [False, True, False]
    assert cut.same_omitted.tolist() == [False, True, False]
    assert not truncation(tokenizer, 128, report, negation, omitted).same_omitted.any()

    rng = np.random.default_rng(4)
    image, other = unit(rng, 3), unit(rng, 3)
    nudged = image + 0.05 * other  # r^r near r, as a rounding or batching change leaves it
    nudged /= np.linalg.norm(nudged, axis=1, keepdims=True)
    result = score_cxr_align(image, image, other, nudged, ["Pleural Effusion"] * 3, cut=cut)
    cases = result.cases
    assert cases["correct_b"].tolist() == [True, False, True]  # the identical pair ties
    assert cases["tie_b"].tolist() == [False, True, False]
    assert cases["tie_a"].tolist() == [False, True, False] and not cases["correct_a"][1]
    assert result.metrics["cxr_align_b"].value == pytest.approx(2 / 3)
    assert result.details == {
        "cases": 3, "images": 3, "tied_images_a": 1, "tied_images_b": 1, "max_length": 32,
        "cut_cases": {"report": 2, "negation": 2, "omitted": 2},
        "identical_cases_a": 1, "identical_cases_b": 1,
    }  # fmt: skip
    without = score_cxr_align(image, image, other, nudged, ["Pleural Effusion"] * 3)
    assert without.cases["correct_b"].all() and without.details["tied_images_b"] == 0


def test_images_of_one_case_are_averaged_and_the_table_breaks_down_by_observation():
    rng = np.random.default_rng(3)
    image, other = unit(rng, 5), unit(rng, 5)
    # case s1 (Edema): image 0 right, image 1 wrong; s2, s3 (Cardiomegaly) right; s4 wrong
    report = np.stack([image[0], other[1], image[2], image[3], other[4]])
    negation = np.stack([other[0], image[1], other[2], other[3], image[4]])
    chosen = ["Edema", "Edema", "Cardiomegaly", "Cardiomegaly", "Fracture"]
    cases = ["s1", "s1", "s2", "s3", "s4"]
    result = score_cxr_align(image, report, negation, negation, chosen, case_ids=cases)
    a = result.metrics["cxr_align_a"]
    assert a.n == 4 and a.value == pytest.approx((0.5 + 1 + 1 + 0) / 4)
    table = result.table.set_index("chosen")
    assert list(table.index) == ["Cardiomegaly", "Edema", "Fracture", "all"]
    assert table.loc["Edema", "cxr_align_a"] == 0.5 and table.loc["Edema", "images"] == 2
    assert table.loc["Cardiomegaly", "n"] == 2 and table.loc["Cardiomegaly", "cxr_align_b"] == 1
    assert table.loc["all", "n"] == 4 and table.loc["all", "images"] == 5
    assert {"cxr_align_a_low", "cxr_align_a_high", "cxr_align_b_low"} <= set(table.columns)


def test_inconsistent_inputs_are_refused():
    rng = np.random.default_rng(4)
    x = unit(rng, 4)
    with pytest.raises(ValueError, match="4 images"):
        score_cxr_align(x, x[:3], x, x, ["Edema"] * 4)
    with pytest.raises(ValueError, match="width"):
        score_cxr_align(x, unit(rng, 4, d=8), x, x, ["Edema"] * 4)
    with pytest.raises(ValueError, match="different chosen"):
        score_cxr_align(
            x, x, x, x, ["Edema", "Fracture", "Edema", "Edema"], case_ids=["a", "a", "b", "c"]
        )


# --- building ------------------------------------------------------------------------------

ABNORMAL = "Moderate cardiomegaly. Small left pleural effusion. No pneumothorax."
NORMAL = "Heart size is normal. The lungs are clear. No pleural effusion or pneumothorax."
ONLY_FINDING = "Right pleural effusion."
DEVICES = (
    "Endotracheal tube terminates 3 cm above the carina. Mild pulmonary edema. "
    "Bibasilar atelectasis. No pneumothorax."
)


def manifest_frame(labeler: RuleLabeler) -> pd.DataFrame:
    rows = [  # (subject, study, image, report)
        ("p1", "s1", "i1", ABNORMAL),
        ("p1", "s1", "i2", ABNORMAL),
        ("p2", "s2", "i3", NORMAL),
        ("p3", "s3", "i4", ONLY_FINDING),
        ("p4", "s4", "i5", DEVICES),
    ]
    frame = pd.DataFrame(rows, columns=["patient_id", "study_id", "image_id", "report"])
    frame["image_path"] = "files/" + frame["image_id"] + ".jpg"
    frame["split"] = "test"
    frame["labels"] = [[labeler.label(r)[c] for c in CHEXPERT_CLASSES] for r in frame["report"]]
    return frame


@pytest.fixture(scope="module")
def labeler():
    return RuleLabeler()


def test_builder_keeps_abnormal_studies_once_with_all_their_images(labeler):
    obj = build_cxr_align(manifest_frame(labeler), "mimic", seed=0, labeler=labeler)
    entries = obj["mimic"]
    # s2 is normal; s3 has nothing left once its only finding is removed
    assert list(entries) == ["s1", "s4"]
    s1 = entries["s1"]
    assert s1["image_ids"] == ["i1", "i2"] and s1["image_paths"] == ["files/i1.jpg", "files/i2.jpg"]
    assert s1["subject_id"] == "p1" and s1["study_id"] == "s1" and s1["report"] == ABNORMAL
    for entry in entries.values():
        chosen = entry["chosen"]
        assert labeler.label(entry["report"])[chosen] == 1
        assert np.isnan(labeler.label(entry["omitted"])[chosen])  # r^r no longer mentions it
        assert labeler.label(entry["negation"])[chosen] == 0  # r^n denies it
        # the inserted statement comes from the evaluation pool, never the training pool
        assert any(p in entry["negation"] for p in negation_phrasings(chosen, "eval"))
        assert not any(p in entry["negation"] for p in negation_phrasings(chosen, "train"))


def test_builder_is_seeded_and_does_not_depend_on_row_order(labeler):
    frame = manifest_frame(labeler)
    first = build_cxr_align(frame, "mimic", seed=3, labeler=labeler)
    shuffled = frame.iloc[[4, 1, 3, 0, 2]]
    assert build_cxr_align(shuffled, "mimic", 3, labeler) == first
    assert build_cxr_align(frame, "mimic", seed=3, labeler=labeler) == first


def test_builder_names_missing_columns():
    with pytest.raises(ValueError, match="image_path"):
        build_cxr_align(
            pd.DataFrame(columns=["patient_id", "study_id", "image_id", "report"]), "mimic"
        )


def test_builder_on_real_iu_reports(shared_data, labeler):
    """The CXR-Align of 400 real IU X-ray reports: every entry negates and removes its chosen
    finding (checked by the labeler from scratch), mostly without disturbing the others."""
    texts = iu_texts(shared_data / "iu_xray" / "indiana_reports.csv").iloc[:400]
    frame = pd.DataFrame(
        {
            "patient_id": texts["uid"],
            "study_id": texts["uid"],
            "image_id": texts["uid"] + "_frontal",
            "image_path": "",
            "report": texts["text"],
        }
    )
    frame["labels"] = (
        labeler.label_many(frame["report"])[list(CHEXPERT_CLASSES)].to_numpy().tolist()
    )
    entries = build_cxr_align(frame, "openi", seed=0, labeler=labeler)["openi"]
    abnormal = sum(
        any(row[c] == 1 for c in CHEXPERT_CLASSES[1:])
        for _, row in labeler.label_many(frame["report"]).iterrows()
    )
    assert 0.8 * abnormal <= len(entries) <= abnormal
    built = pd.DataFrame(entries.values())
    scored = score_hard_negatives(
        built["report"].tolist(), built.rename(columns={"negation": "hard_negative"}), labeler
    )
    assert scored["chosen_negated"].all() and scored["omitted_clean"].all()
    assert scored["ok"].astype(bool).mean() >= 0.9


# --- files ---------------------------------------------------------------------------------


def test_save_and_load_round_trip_and_flatten_per_image(tmp_path, labeler):
    obj = build_cxr_align(manifest_frame(labeler), "mimic", seed=0, labeler=labeler)
    path = tmp_path / "cxr_align.json"
    save_cxr_align(obj, path)
    assert load_cxr_align(path) == obj
    cases = cxr_align_cases(load_cxr_align(path))
    assert list(cases["id"]) == ["s1", "s1", "s4"]
    assert list(cases["image_id"]) == ["i1", "i2", "i5"]
    assert (cases["dataset"] == "mimic").all() and cases["negation"].str.len().gt(0).all()


def test_an_official_style_file_loads_with_the_entry_id_as_image_id(tmp_path):
    official = {
        "mimic": {
            "a1b2-dicom": {
                "chosen": "edema",
                "report": "Mild edema.",
                "negation": "No edema.",
                "omitted": "",
                "label": [1, 0],
            }
        }
    }
    path = tmp_path / "official.json"
    path.write_text(json.dumps(official))
    cases = cxr_align_cases(load_cxr_align(path))
    assert cases.loc[0, "image_id"] == "a1b2-dicom" and cases.loc[0, "image_path"] == ""
    assert cases.loc[0, "chosen"] == "edema"


@pytest.mark.parametrize(
    "content, message",
    [
        (
            {"mimic": {"d1": {"chosen": "x", "report": "r", "omitted": "o"}}},
            "entry mimic/d1 lacks the field 'negation'",
        ),
        (
            {"mimic": {"d1": {"chosen": "x", "report": 3, "negation": "n", "omitted": "o"}}},
            "field 'report' of entry mimic/d1 is not text",
        ),
        ({"mimic": ["not", "entries"]}, "dataset 'mimic' is not an object"),
        (
            {
                "mimic": {
                    "d1": {
                        "chosen": "x",
                        "report": "r",
                        "negation": "n",
                        "omitted": "o",
                        "image_ids": ["a", "b"],
                        "image_paths": ["a.jpg"],
                    }
                }
            },
            "2 image_ids but 1 image_paths",
        ),
        ([], "expected the CXR-Align layout"),
    ],
)
def test_a_malformed_file_names_the_file_and_the_entry(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(content))
    with pytest.raises(InputError, match=message) as caught:
        load_cxr_align(path)
    assert str(path) in str(caught.value)


def test_a_missing_or_broken_file_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="no such CXR-Align file"):
        load_cxr_align(tmp_path / "absent.json")
    broken = tmp_path / "broken.json"
    broken.write_text('{"mimic": {')
    with pytest.raises(InputError, match="not a JSON file"):
        load_cxr_align(broken)
