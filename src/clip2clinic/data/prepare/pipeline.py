"""The ``prepare`` pipeline: a dataset root in, a Parquet manifest and its caches out."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from clip2clinic.data.corpus import TEXT_COLUMNS, PreparedCorpus, text_table
from clip2clinic.data.datasets import open_dataset
from clip2clinic.data.manifest import SCHEMA, relative_image_paths, write_manifest
from clip2clinic.data.prepare.image_stage import run_image_stage
from clip2clinic.data.prepare.report_stage import run_report_stage
from clip2clinic.data.prepare.text_stage import run_text_stage
from clip2clinic.embedded import MINILM_SOURCE
from clip2clinic.io import InputError, exclusive_lock, write_text_atomic
from clip2clinic.observations import CHEXPERT_CLASSES

log = logging.getLogger(__name__)

#: What ``prepare`` writes, versioned: 2 draws normal studies' hard negatives from their own
#: split (version 1 drew them from every split, leaking held-out reports into training).
PREPARE_VERSION = 2


@dataclass
class PrepareOptions:
    """What ``prepare`` reads and how; ``reader_options`` go to the dataset reader."""

    dataset: str
    root: str
    out: str
    reader_options: dict[str, Any] = field(default_factory=dict)
    image_size: int = 256
    #: Images per cache shard (WebDataset tar); None writes one PNG per image.
    shard_size: int | None = None
    text_model: str = MINILM_SOURCE
    max_length: int = 64
    text_features: bool = True
    seed: int = 0
    negation_pool: str = "train"
    workers: int = max(1, os.cpu_count() or 1)


def prepare(options: PrepareOptions) -> dict[str, Any]:
    """Run every stage and write the manifest; returns the prepare report (also saved in the
    corpus's cache, see :class:`~clip2clinic.data.corpus.PreparedCorpus`). Re-running reuses
    finished work, after checking it.

    Holds a lock on the output for the whole run: a second ``prepare`` on the same ``out``
    fails at once instead of interleaving its caches with this one's.
    """
    corpus = PreparedCorpus(options.out)
    with exclusive_lock(corpus.lock_file, f"the prepared corpus {corpus.manifest}"):
        return _prepare(options, corpus)


def _prepare(options: PrepareOptions, corpus: PreparedCorpus) -> dict[str, Any]:
    dataset = open_dataset(options.dataset, options.root, **options.reader_options)
    # a reader's own report column (Open-i) is not joined: the report stage's cleaned report is
    frame = dataset.frame.drop(columns=["report"], errors="ignore")
    log.info("%s: %d images in %s", dataset.name, len(frame), options.root)

    studies = _studies(dataset)
    reports = run_report_stage(studies, corpus.stages, options.seed, options.negation_pool,
                               options.workers)
    images = run_image_stage(frame, corpus, options.dataset, options.image_size, options.workers,
                             options.shard_size)

    rows = frame.merge(images, on="image_id", how="left", validate="one_to_one")
    rows = rows.merge(reports, on="study_id", how="left", validate="many_to_one")
    del frame, images, reports  # joined: the corpus is held once, as ``rows``
    skipped = rows.loc[rows["image_cache"] == "", ["image_id", "path", "skip_reason"]]
    listed = len(rows)
    kept = rows[rows["image_cache"] != ""].reset_index(drop=True)
    del rows  # only the cached images go on
    for column in ("graph", "hard_negative_graph"):  # one Arrow buffer, not a str per row
        kept[column] = kept[column].astype(pd.ArrowDtype(pa.string()))
    texts = text_table(pd.concat([kept[column] for column in TEXT_COLUMNS]))
    text_ids = dict(zip(texts["text"], texts["text_id"], strict=True))
    text_info = run_text_stage(texts, _graph_per_text(kept, texts), corpus, options.text_model,
                               options.max_length, options.text_features)

    manifest = _manifest_frame(kept, studies, text_ids, options.dataset, options.root)
    write_manifest(manifest, corpus.manifest, options.root)
    report = _report(options, listed, skipped, manifest, text_info)
    write_text_atomic(json.dumps(report, indent=2), corpus.report_file)
    return report


def _graph_per_text(rows: pd.DataFrame, texts: pd.DataFrame) -> list[str]:
    """The graph JSON of each text of ``texts`` in ``text_id`` order: a report's ``graph`` or a
    hard negative's ``hard_negative_graph`` (the graph of a text is the same wherever it
    appears); "" for a text that is neither (an omitted report only)."""
    graph_of: dict[str, str] = {}
    for text_column, graph_column in (("report", "graph"),
                                      ("hard_negative", "hard_negative_graph")):
        for text, graph in zip(rows[text_column], rows[graph_column], strict=True):
            graph_of.setdefault(text, graph)
    return [graph_of.get(text, "") for text in texts["text"]]


def _studies(dataset) -> pd.DataFrame:
    """One row per study with its split and raw report (read once, from the first image's
    row). A study whose images lie in different splits is an error: splits are by patient."""
    frame = dataset.frame
    splits_per_study = frame.groupby("study_id")["split"].nunique()
    if (splits_per_study > 1).any():
        study = splits_per_study[splits_per_study > 1].index[0]
        raise InputError(f"{dataset.name}: study {study} has images in several splits "
                         f"({sorted(set(frame.loc[frame['study_id'] == study, 'split']))}); "
                         "splits must be by patient")
    first = frame.drop_duplicates("study_id").index
    return pd.DataFrame({
        "study_id": frame.loc[first, "study_id"].to_numpy(),
        "split": frame.loc[first, "split"].to_numpy(),
        "report_raw": [dataset.report(i) or "" for i in first],
    })


def _manifest_frame(rows: pd.DataFrame, studies: pd.DataFrame, text_ids: dict[str, int],
                    dataset: str, root: str) -> pd.DataFrame:
    raw = dict(zip(studies["study_id"], studies["report_raw"], strict=True))
    out = pd.DataFrame({
        "dataset": dataset,
        "patient_id": rows["patient_id"].astype(str),
        "study_id": rows["study_id"].astype(str),
        "image_id": rows["image_id"].astype(str),
        "split": rows["split"],
        "view": rows["view"].fillna("").astype(str),
        "image_path": relative_image_paths(rows["path"], root),
        "image_cache": rows["image_cache"],
        "report_raw": rows["study_id"].map(raw),
        "report": rows["report"],
        "labels": rows["labels"].map(lambda v: np.asarray(v, dtype=np.float32)),
        "chosen": rows["chosen"],
        "hard_negative": rows["hard_negative"],
        "hard_negative_labels": rows["hard_negative_labels"].map(
            lambda v: np.asarray(v, dtype=np.float32)),
        "omitted": rows["omitted"],
        "graph": rows["graph"],
        "hard_negative_graph": rows["hard_negative_graph"],
        "text_id": rows["report"].map(text_ids).astype("int32"),
        "hard_negative_text_id": rows["hard_negative"].map(text_ids).astype("int32"),
        "omitted_text_id": rows["omitted"].map(text_ids).astype("int32"),
    })
    return out[SCHEMA.names]


def _report(options: PrepareOptions, listed: int, skipped: pd.DataFrame,
            manifest: pd.DataFrame, text_info: dict[str, int]) -> dict[str, Any]:
    """What prepare did: ``listed`` images, the ``skipped`` ones (``image_id``, ``path``,
    ``skip_reason``), the manifest written and the text stage's counts."""
    studies = manifest.drop_duplicates("study_id")
    labels = np.stack(manifest["labels"].to_numpy()) if len(manifest) else np.zeros((0, 14))
    return {
        "prepare_version": PREPARE_VERSION,
        "options": asdict(options),
        "images_listed": int(listed),
        "images_cached": int(len(manifest)),
        "images_skipped": int(len(skipped)),
        "skip_reasons": skipped["skip_reason"].value_counts().to_dict(),
        "skipped_images": skipped[["image_id", "path", "skip_reason"]].astype(str)
        .to_dict("records")[:1000],
        "studies": int(manifest["study_id"].nunique()),
        "splits": manifest["split"].value_counts().to_dict(),
        "abnormal_studies_with_chosen": int(studies["chosen"].astype(bool).sum()),
        "normal_studies_without_hard_negative": int(
            (~studies["chosen"].astype(bool) & ~studies["hard_negative"].astype(bool)).sum()),
        "positives_per_class": {
            name: int((labels[:, i] == 1).sum()) for i, name in enumerate(CHEXPERT_CLASSES)
        },
        **text_info,
    }
