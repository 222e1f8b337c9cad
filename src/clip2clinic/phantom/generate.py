"""Writing a whole phantom corpus: plan in one process, draw studies in parallel, then tables.

Every random draw comes from a generator seeded by (seed, purpose, index), so the bytes written
do not depend on the number of workers or on the order they finish in. Each file is written
atomically. Every ``CHECKPOINT`` studies the truth records drawn so far are saved in
``.phantom_parts/``; an interrupted run resumes from them (studies drawn after the last
checkpoint are drawn again, to the same bytes). The tables and ``phantom_truth.jsonl`` are
written last, and ``phantom_config.json`` then marks the corpus complete (a re-run returns at
once).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from threadpoolctl import ThreadpoolController
from tqdm import tqdm

from clip2clinic.io import InputError, write_text_atomic
from clip2clinic.observations import CHEXPERT_CLASSES
from clip2clinic.phantom import layout
from clip2clinic.phantom.anatomy import sample_habitus
from clip2clinic.phantom.render import render_view
from clip2clinic.phantom.reports import check_labels, write_report
from clip2clinic.phantom.truth import Study, sample_corpus

log = logging.getLogger(__name__)

CONFIG_FILE = "phantom_config.json"
TRUTH_FILE = "phantom_truth.jsonl"
PARTS_DIR = ".phantom_parts"
CHECKPOINT = 200  # studies per saved batch of truth records
FORMAT = "clip2clinic-phantom/1"
_HABITUS, _IMAGE, _REPORT = 3, 4, 5  # purposes of the seeded generators


def _rng(seed: int, purpose: int, *index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, purpose, *index]))


@dataclass(frozen=True)
class _Job:
    study: Study
    report: str
    root: str
    size: int
    seed: int


def _draw_study(job: _Job) -> dict:
    """Render and write one study's images and report; return its truth record."""
    # the drawing's small matrix products are slower on a BLAS thread pool than on one core
    with _blas().limit(limits=1, user_api="blas"):
        return _draw_study_on_one_thread(job)


@lru_cache(maxsize=1)
def _blas() -> ThreadpoolController:
    return ThreadpoolController()  # inspecting the loaded libraries is slow: do it once


def _draw_study_on_one_thread(job: _Job) -> dict:
    s, root = job.study, Path(job.root)
    habitus = sample_habitus(_rng(job.seed, _HABITUS, s.patient), s.sex)
    (root / layout.study_dir(s.subject_id, s.study_id)).mkdir(parents=True, exist_ok=True)
    images = []
    for k, (view, dicom_id) in enumerate(zip(s.views, s.dicom_ids, strict=True)):
        pixels, info = render_view(habitus, s.findings, view, job.size,
                                   _rng(job.seed, _IMAGE, s.index, k))
        relative = layout.image_path(s.subject_id, s.study_id, dicom_id)
        layout.write_bytes_atomic(root / relative, layout.jpeg_bytes(pixels))
        images.append({"dicom_id": dicom_id, "view": view, "path": relative.as_posix(),
                       "rows": job.size, "columns": job.size, **info})
    report = layout.report_path(s.subject_id, s.study_id)
    layout.write_bytes_atomic(root / report, job.report.encode("utf-8"))
    return _study_record(s, report.as_posix(), images)


def _study_record(s: Study, report: str, images: list[dict]) -> dict:
    return {
        "subject_id": s.subject_id, "study_id": s.study_id, "split": s.split, "ward": s.ward,
        "sex": s.sex, "age": s.age, "study_date": s.date, "normal": s.normal,
        "extra_normal": s.extra_normal, "syndrome": s.syndrome, "report": report,
        "labels": s.labels, "entities": [f.to_dict() for f in s.findings], "images": images,
    }


def _save_batch(parts: Path, batch: list[dict]) -> None:
    """Save truth records of drawn studies, for a resumed run."""
    name = f"{batch[0]['study_id']}-{len(batch)}.jsonl"
    write_text_atomic("".join(json.dumps(r) + "\n" for r in batch), parts / name)


def _settings(studies: int, image_size: int, seed: int, extra_normal: int) -> dict:
    return {"format": FORMAT, "studies": studies, "image_size": image_size, "seed": seed,
            "extra_normal": extra_normal}


def _check_target(root: Path, settings: dict) -> dict | None:
    """The stored config when ``root`` holds this same corpus; an error when it holds
    something else."""
    config_path = root / CONFIG_FILE
    if config_path.is_file():
        stored = json.loads(config_path.read_text(encoding="utf-8"))
        if stored.get("settings") != settings:
            raise InputError(
                f"{root}: holds a phantom corpus made with {stored.get('settings')}, not "
                f"{settings}; choose another --out or delete it"
            )
        return stored
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise InputError(f"{root}: exists and is not an empty folder or a phantom corpus")
    return None


def _impression(report: str) -> str:
    _, found, tail = report.partition("IMPRESSION:")
    return " ".join(tail.split()) if found else ""


def summarise(studies: list[Study], reports: list[str]) -> dict:
    """Counts that describe a corpus: splits, normal share, labels, frequent impressions."""
    counts = {c: Counter() for c in CHEXPERT_CLASSES}
    for s in studies:
        for c in CHEXPERT_CLASSES:
            value = s.labels[c]
            counts[c]["blank" if value is None else str(int(value))] += 1
    images = sum(len(s.views) for s in studies)
    impressions = Counter(i for i in map(_impression, reports) if i)
    return {
        "studies": len(studies),
        "extra_normal": sum(s.extra_normal for s in studies),
        "patients": len({s.subject_id for s in studies}),
        "images": images,
        "frontal_images": sum(v != "LATERAL" for s in studies for v in s.views),
        "split_studies": dict(Counter(s.split for s in studies)),
        "normal_fraction": round(sum(s.normal for s in studies) / len(studies), 4),
        "label_counts": {c: dict(sorted(v.items())) for c, v in counts.items()},
        "top_impressions": impressions.most_common(5),
    }


def generate_phantom(out_dir: str | Path, studies: int, image_size: int = 256, seed: int = 0,
                     extra_normal: int = 0, workers: int = 1, progress: bool = True) -> dict:
    """Write a phantom MIMIC-CXR-JPG corpus to ``out_dir``; return its summary.

    ``studies`` clinical studies (several per patient) plus ``extra_normal`` normal studies
    sharing the report "No active lung lesion." (the paper's Table 3). Images are
    ``image_size`` pixels square. Identical arguments give identical bytes; an interrupted
    run resumes; a finished corpus is returned as is.
    """
    if studies < 1 or extra_normal < 0 or workers < 1:
        raise InputError("studies and workers must be >= 1 and extra_normal >= 0")
    if not 32 <= image_size <= 4096:
        raise InputError(f"image size {image_size} is outside 32..4096 pixels")
    root = Path(out_dir)
    settings = _settings(studies, image_size, seed, extra_normal)
    stored = _check_target(root, settings)
    if stored and stored.get("complete"):
        return {**stored["summary"], "out_dir": str(root)}
    root.mkdir(parents=True, exist_ok=True)
    write_text_atomic(json.dumps({"settings": settings, "complete": False}, indent=1),
                      root / CONFIG_FILE)
    start = time.perf_counter()
    corpus = sample_corpus(studies, seed, extra_normal)
    reports = []
    for s in corpus:
        prior = corpus[s.prior] if s.prior is not None else None
        text, s.labels = write_report(s, prior, _rng(seed, _REPORT, s.index))
        problems = check_labels(s, s.labels)
        if problems:  # a bug in the grammar, never the user's fault
            raise AssertionError(f"study {s.study_id}: labels disagree with truth: {problems}")
        reports.append(text)

    parts = root / PARTS_DIR
    records: dict[int, dict] = {}
    for part in sorted(parts.glob("*.jsonl")):
        for line in part.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            records[record["study_id"]] = record
    jobs = [_Job(s, text, str(root), image_size, seed)
            for s, text in zip(corpus, reports, strict=True) if s.study_id not in records]
    if records:
        log.info("resuming: %d of %d studies already written", len(records), len(corpus))
    with tqdm(total=len(corpus), initial=len(records), desc="phantom", unit="study",
              disable=not progress) as bar:
        if workers == 1:
            done = map(_draw_study, jobs)
        else:
            pool = ProcessPoolExecutor(max_workers=workers)
            done = pool.map(_draw_study, jobs, chunksize=4)
        batch: list[dict] = []
        try:
            for record in done:
                records[record["study_id"]] = record
                batch.append(record)
                if len(batch) == CHECKPOINT:
                    _save_batch(parts, batch)
                    batch = []
                bar.update()
        finally:
            if batch:
                _save_batch(parts, batch)
            if workers > 1:
                pool.shutdown(cancel_futures=True)

    layout.write_csv_gz(root / layout.METADATA_FILE, layout.METADATA_COLUMNS,
                        layout.metadata_rows(corpus, image_size))
    layout.write_csv_gz(root / layout.SPLIT_FILE, layout.SPLIT_COLUMNS, layout.split_rows(corpus))
    layout.write_csv_gz(root / layout.CHEXPERT_FILE, layout.CHEXPERT_COLUMNS,
                        layout.chexpert_rows(corpus))
    truth = "".join(json.dumps(records[s.study_id], sort_keys=True) + "\n" for s in corpus)
    write_text_atomic(truth, root / TRUTH_FILE)
    summary = summarise(corpus, reports)
    write_text_atomic(json.dumps({"settings": settings, "complete": True, "summary": summary},
                                 indent=1), root / CONFIG_FILE)
    shutil.rmtree(parts, ignore_errors=True)
    seconds = time.perf_counter() - start
    return {**summary, "out_dir": str(root), "seconds": round(seconds, 2),
            "studies_per_second": round(len(corpus) / seconds, 1)}
