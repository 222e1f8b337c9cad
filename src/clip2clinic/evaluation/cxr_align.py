"""CXR-Align (paper Sec. 3 and 5.6, Table 6): does the image prefer its report to a version
with one finding negated (Task A) or removed (Task B)?

Building. From the test rows of a prepared manifest, one entry per abnormal study: a positive
CheXpert observation is chosen at random, ``omitted`` (r^r) is the report with every statement
about it removed and ``negation`` (r^n) is r^r with a negative statement about it inserted at
the beginning, middle or end (:func:`clip2clinic.reports.negation.make_hard_negative` with the
*evaluation* phrasing pool, whose wording training never sees). Normal studies, and studies
whose r^r would be empty or unchanged, are left out and counted in the log.

The file is JSON in the layout of the released PhysioNet CXR-Align benchmark::

    {"mimic": {"<id>": {"chosen": ..., "report": ..., "negation": ..., "omitted": ...,
                        "subject_id": ..., "study_id": ...,
                        "image_ids": [...], "image_paths": [...]}}}

Our ids are study ids and list the study's images; the official file's ids are image
(DICOM) ids and may carry no image fields, in which case the id is the image id. Both load
with :func:`load_cxr_align` and flatten with :func:`cxr_align_cases`.

What the text tower sees. Reports longer than its ``max_length`` tokens are cut; when the
negated or removed finding lies past the cut, r^n or r^r reach the model identical to r
(:func:`truncation`), and the pair is a tie by construction. Such pairs are scored as ties
(wrong), and every tie and cut is counted in metrics.json with the number of entries in the
file, the number scored and the ids of those dropped (no image in the scored split).
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from clip2clinic.evaluation.ranking import embedding_matrix
from clip2clinic.evaluation.results import Estimate, TaskResult, proportion_estimate
from clip2clinic.evaluation.tasks import Scored, Task, with_ids
from clip2clinic.io import InputError, as_text, write_text_atomic
from clip2clinic.model.towers import load_tokenizer
from clip2clinic.observations import CHEXPERT_CLASSES
from clip2clinic.reports.labeler import RuleLabeler
from clip2clinic.reports.negation import make_hard_negative

if TYPE_CHECKING:
    from clip2clinic.evaluation.sources import Context, Corpus

log = logging.getLogger(__name__)

#: Text fields every entry has (official file and ours).
TEXT_FIELDS: tuple[str, ...] = ("chosen", "report", "negation", "omitted")
#: Manifest columns the builder reads (``labels`` too when present).
#: The manifest columns the builder reads (the file names the patient ``subject_id``, as the
#: released benchmark does).
BUILD_COLUMNS: tuple[str, ...] = ("patient_id", "study_id", "image_id", "image_path", "report")
#: Columns of :func:`cxr_align_cases`.
CASE_COLUMNS: tuple[str, ...] = (
    "dataset", "id", "image_id", "image_path", "subject_id", "study_id", *TEXT_FIELDS,
)  # fmt: skip


def build_cxr_align(manifest_frame: pd.DataFrame, dataset_name: str, seed: int = 0,
                    labeler: RuleLabeler | None = None) -> dict[str, dict[str, dict]]:
    """CXR-Align entries of the studies in ``manifest_frame`` (pass the test split):
    ``{dataset_name: {study_id: entry}}``, studies and their images in sorted order.

    The draw of each study depends only on ``seed`` and its study id. A manifest ``labels``
    column lets normal studies skip the labeler; abnormal ones are decided by the labeler's
    mentions, as in ``prepare``.
    """
    missing = [c for c in BUILD_COLUMNS if c not in manifest_frame.columns]
    if missing:
        raise ValueError(f"manifest frame lacks column(s) {', '.join(missing)}")
    entries: dict[str, dict] = {}
    skipped: Counter[str] = Counter()
    for study_id, rows in manifest_frame.groupby("study_id", sort=True):
        rows = rows.sort_values("image_id", kind="stable")
        first = rows.iloc[0]
        report = as_text(first["report"])
        labels = _labels_of(first) if "labels" in rows.columns else None
        hard = make_hard_negative(report, str(study_id), seed, pool="eval", labels=labels,
                                  labeler=labeler, uncertain_as_abnormal=False)
        reason = _skip_reason(report, hard.chosen, hard.omitted)
        if reason:
            skipped[reason] += 1
            continue
        entries[str(study_id)] = {
            "chosen": hard.chosen,
            "report": report,
            "negation": hard.hard_negative,
            "omitted": hard.omitted,
            "subject_id": as_text(first["patient_id"]),
            "study_id": str(study_id),
            "image_ids": [as_text(v) for v in rows["image_id"]],
            "image_paths": [as_text(v) for v in rows["image_path"]],
        }
    log.info("CXR-Align %s: %d entries; left out: %s", dataset_name, len(entries),
             ", ".join(f"{n} {why}" for why, n in sorted(skipped.items())) or "none")
    return {dataset_name: entries}


def _labels_of(row: pd.Series) -> dict[str, float] | None:
    values = row["labels"]
    if values is None or len(values) != len(CHEXPERT_CLASSES):
        return None
    return dict(zip(CHEXPERT_CLASSES, (float(v) for v in values), strict=True))


def _skip_reason(report: str, chosen: str, omitted: str) -> str:
    if not chosen:
        return "normal"
    if not omitted.strip():
        return "with nothing left once the finding is removed"
    if omitted.strip() == report.strip():
        return "whose finding could not be removed"
    return ""


def save_cxr_align(obj: Mapping[str, Mapping[str, Mapping]], path: str | os.PathLike) -> None:
    """Write a CXR-Align object as indented UTF-8 JSON, atomically."""
    write_text_atomic(json.dumps(obj, indent=1, ensure_ascii=False) + "\n", path)


def load_cxr_align(path: str | os.PathLike) -> dict[str, dict[str, dict]]:
    """Read a CXR-Align file (ours or the official one); :class:`InputError` names the file
    and the entry when the layout is wrong or a field is missing."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such CXR-Align file")
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a JSON file ({exc})") from None
    layout = '{"<dataset>": {"<id>": {"chosen", "report", "negation", "omitted", ...}}}'
    if not isinstance(obj, dict) or not obj:
        raise InputError(f"{path}: expected the CXR-Align layout {layout}")
    for dataset, entries in obj.items():
        if not isinstance(entries, dict):
            raise InputError(f"{path}: dataset {dataset!r} is not an object of entries; "
                             f"expected {layout}")
        for entry_id, entry in entries.items():
            _check_entry(path, f"{dataset}/{entry_id}", entry)
    return obj


def _check_entry(path: Path, where: str, entry: object) -> None:
    if not isinstance(entry, dict):
        raise InputError(f"{path}: entry {where} is not an object")
    for name in TEXT_FIELDS:
        if name not in entry:
            raise InputError(f"{path}: entry {where} lacks the field {name!r}")
        if not isinstance(entry[name], str):
            raise InputError(f"{path}: field {name!r} of entry {where} is not text")
    ids, paths = entry.get("image_ids"), entry.get("image_paths")
    for name, value in (("image_ids", ids), ("image_paths", paths)):
        if value is not None and not (isinstance(value, list) and value
                                      and all(isinstance(v, str) for v in value)):
            raise InputError(f"{path}: field {name!r} of entry {where} is not a list of text")
    if ids is not None and paths is not None and len(ids) != len(paths):
        raise InputError(f"{path}: entry {where} has {len(ids)} image_ids but "
                         f"{len(paths)} image_paths")


def cxr_align_cases(obj: Mapping[str, Mapping[str, Mapping]]) -> pd.DataFrame:
    """One row per (entry, image) with the columns of :data:`CASE_COLUMNS`.

    An entry without ``image_ids`` (the official file) is one image whose id is the entry
    id; ``image_path`` is "" where the file gives none (resolve it from the dataset).
    """
    rows = []
    for dataset, entries in obj.items():
        for entry_id, entry in entries.items():
            ids = entry.get("image_ids") or [entry_id]
            paths = entry.get("image_paths") or [""] * len(ids)
            for image_id, image_path in zip(ids, paths, strict=True):
                rows.append((dataset, entry_id, image_id, image_path,
                             as_text(entry.get("subject_id")), as_text(entry.get("study_id")),
                             *(entry[name] for name in TEXT_FIELDS)))
    return pd.DataFrame(rows, columns=list(CASE_COLUMNS))


@dataclass(frozen=True)
class Truncation:
    """What a text tower of ``max_length`` tokens sees of each row's r, r^n and r^r: which
    texts it cuts (``cut``: rows x 3, in that order) and where r^n or r^r reach it identical to
    r (``same_negation``, ``same_omitted``: the difference lies past the cut)."""

    max_length: int
    cut: np.ndarray
    same_negation: np.ndarray
    same_omitted: np.ndarray


def truncation(tokenizer: Any, max_length: int, report: Sequence[str], negation: Sequence[str],
               omitted: Sequence[str]) -> Truncation:
    """:class:`Truncation` of the rows' texts under a Hugging Face ``tokenizer`` that cuts at
    ``max_length`` tokens (special tokens included), as the text towers do."""
    texts = [list(report), list(negation), list(omitted)]
    full = [tokenizer(t, truncation=False, verbose=False)["input_ids"] for t in texts]
    seen = [tokenizer(t, truncation=True, max_length=max_length)["input_ids"] for t in texts]
    cut = np.array([[len(ids) > max_length for ids in kind] for kind in full]).T.reshape(-1, 3)
    same = [np.array([a == b for a, b in zip(seen[0], other, strict=True)], dtype=bool)
            for other in seen[1:]]  # fmt: skip
    return Truncation(max_length, cut, *same)


def score_cxr_align(image_emb: np.ndarray, report_emb: np.ndarray, negation_emb: np.ndarray,
                    omitted_emb: np.ndarray, chosen: Sequence[str],
                    case_ids: Sequence[str] | None = None, seed: int = 0,
                    patient_ids: Sequence[str] | None = None,
                    cut: Truncation | None = None) -> TaskResult:
    """Task A (``cxr_align_a``): share of cases with sim(I, r) > sim(I, r^n); Task B
    (``cxr_align_b``): share with sim(I, r) > sim(I, r^r). A tie counts as wrong.

    Row i holds one image and its entry's three texts (L2-normalised embeddings, dot-product
    similarity) and ``chosen[i]``. Multi-image entries: rows sharing a ``case_ids`` value are
    one case whose outcome is the mean over its images (a study with two frontal images, one
    right and one wrong, counts 0.5), so every entry weighs the same and the bootstrap
    counts entries, not images. Without ``case_ids`` each row is a case.

    Intervals are Wilson's (:func:`~clip2clinic.evaluation.results.proportion_estimate`);
    with ``patient_ids`` (one per row) cases of one patient count by their effective number.
    ``seed`` is kept for callers; no interval is drawn at random.

    The table has one row per chosen observation and an ``all`` row: cases ``n``, ``images``
    and both tasks with their 95% intervals. The per-case results have one row per image:
    its ``case_id``, ``chosen``, sim(I, r), sim(I, r^n), sim(I, r^r) (``sim_report``,
    ``sim_negation``, ``sim_omitted``), whether Task A and Task B are right and whether they
    tie (``tie_a``, ``tie_b``).

    ``cut`` (:func:`truncation`): r^n or r^r that reach the model identical to r tie whatever
    their embeddings (which batching may move by rounding); with it the per-case results add
    ``report_cut`` and ``details`` counts the cut reports and the identical pairs. ``details``
    always counts the cases, images and ties.
    """
    image = embedding_matrix("image_emb", image_emb)
    texts = [embedding_matrix(name, emb, image.shape[1]) for name, emb in
             (("report_emb", report_emb), ("negation_emb", negation_emb),
              ("omitted_emb", omitted_emb))]
    n = len(image)
    lengths = {len(t) for t in texts} | {len(chosen)}
    for given in (case_ids, patient_ids):
        if given is not None:
            lengths.add(len(given))
    if lengths != {n}:
        raise ValueError(f"score_cxr_align: {n} images but text/chosen/case rows of "
                         f"lengths {sorted(lengths)}")
    if cut is not None and len(cut.cut) != n:
        raise ValueError(f"score_cxr_align: {n} images but truncation of {len(cut.cut)} rows")
    report, negation, omitted = (np.einsum("ij,ij->i", image, t) for t in texts)
    tie_a, tie_b = report == negation, report == omitted
    if cut is not None:
        tie_a, tie_b = tie_a | cut.same_negation, tie_b | cut.same_omitted
    right_a, right_b = (report > negation) & ~tie_a, (report > omitted) & ~tie_b
    per_image = pd.DataFrame({
        "case": list(case_ids) if case_ids is not None else np.arange(n),
        "chosen": [as_text(c) for c in chosen],
        "patient": list(patient_ids) if patient_ids is not None else np.arange(n),
        "a": right_a.astype(float),
        "b": right_b.astype(float),
    })
    if (per_image.groupby("case")["chosen"].nunique() > 1).any():
        raise ValueError("score_cxr_align: rows of one case name different chosen observations")
    cases = per_image.groupby("case", sort=False).agg(
        chosen=("chosen", "first"), patient=("patient", "first"), images=("a", "size"),
        a=("a", "mean"), b=("b", "mean"))
    if cases.empty:
        log.warning("CXR-Align: no cases to score; reported as NaN")
    patients = cases["patient"].to_numpy()
    metrics = {"cxr_align_a": proportion_estimate(cases["a"].to_numpy(), patients),
               "cxr_align_b": proportion_estimate(cases["b"].to_numpy(), patients)}
    groups = [(name, group) for name, group in cases.groupby("chosen", sort=True)]
    table = pd.DataFrame([_table_row(name, group) for name, group in [*groups, ("all", cases)]])
    per_case = pd.DataFrame({
        "image": np.arange(n), "case_id": [str(c) for c in per_image["case"]],
        "chosen": per_image["chosen"], "sim_report": report, "sim_negation": negation,
        "sim_omitted": omitted, "correct_a": right_a, "correct_b": right_b,
        "tie_a": tie_a, "tie_b": tie_b,
    })  # fmt: skip
    details = {"cases": len(cases), "images": n, "tied_images_a": int(tie_a.sum()),
               "tied_images_b": int(tie_b.sum())}  # fmt: skip
    if cut is not None:
        per_case["report_cut"] = cut.cut[:, 0]
        flags = pd.DataFrame({
            "case": per_case["case_id"], "report": cut.cut[:, 0], "negation": cut.cut[:, 1],
            "omitted": cut.cut[:, 2], "a": cut.same_negation, "b": cut.same_omitted,
        }).groupby("case", sort=False).first()  # fmt: skip
        details |= {
            "max_length": cut.max_length,
            "cut_cases": {kind: int(flags[kind].sum()) for kind in ("report", "negation",
                                                                    "omitted")},
            "identical_cases_a": int(flags["a"].sum()),
            "identical_cases_b": int(flags["b"].sum()),
        }  # fmt: skip
    return TaskResult(metrics, table, per_case, details)


def _table_row(name: str, cases: pd.DataFrame) -> dict[str, object]:
    row: dict[str, object] = {"chosen": name, "n": len(cases),
                              "images": int(cases["images"].sum())}
    for task, column in (("cxr_align_a", "a"), ("cxr_align_b", "b")):
        estimate: Estimate = proportion_estimate(cases[column].to_numpy(),
                                                 cases["patient"].to_numpy())
        row[task] = estimate.value
        row[f"{task}_low"] = estimate.low
        row[f"{task}_high"] = estimate.high
    return row


def run_cxr_align(corpus: Corpus, context: Context) -> Iterator[Scored]:
    """CXR-Align on a manifest's scored split: the given CXR-Align file
    (:meth:`~clip2clinic.evaluation.sources.DataSources.cxr_align_file`), else one built from
    the split and saved as ``cxr_align_<name>.json`` in the output folder. Images the split
    lacks are left out with a warning; ``details`` counts the file's entries, those scored and
    names those dropped, and the ties and cuts of the model's text tower (:func:`truncation`)."""
    file = context.data.cxr_align_file(corpus.name)
    if file is not None:
        benchmark = load_cxr_align(file)
    else:
        benchmark = build_cxr_align(corpus.frame, corpus.name, seed=context.seed)
        file = context.out / f"cxr_align_{corpus.name}.json"
        save_cxr_align(benchmark, file)
    cases = cxr_align_cases(benchmark)
    row_of = {image_id: i for i, image_id in enumerate(corpus.frame["image_id"])}
    found = cases["image_id"].map(row_of)
    if found.isna().any():
        log.warning("CXR-Align %s: %d of %d images not in the manifest's test split; left out",
                    corpus.name, int(found.isna().sum()), len(cases))
    entry = cases["dataset"] + "/" + cases["id"]
    scored = set(entry[found.notna()])
    cases, rows = cases[found.notna()], found.dropna().astype(int).to_numpy()
    texts = [list(cases[kind]) for kind in ("report", "negation", "omitted")]
    text = context.embed.model.model.config.text
    embed = context.embed
    result = score_cxr_align(
        corpus.images[rows], *(embed(t) for t in texts), list(cases["chosen"]),
        case_ids=list(entry[found.notna()]), seed=context.seed,
        patient_ids=corpus.patients[rows],
        cut=truncation(load_tokenizer(text.source), text.max_length, *texts),
    )  # fmt: skip
    dropped = sorted(set(entry) - scored)
    result.details |= {"file": str(file), "entries_in_file": len(set(entry)),
                       "entries_scored": len(scored), "entries_dropped": len(dropped),
                       "dropped_ids": dropped}  # fmt: skip
    yield Scored(corpus.name, with_ids(result, corpus.ids.iloc[rows]))


TASK = Task("cxr_align", on_corpus=run_cxr_align)
