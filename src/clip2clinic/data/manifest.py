"""The Parquet manifest that ``prepare`` writes and training/evaluation read.

One row per image-report pair. Everything the loss needs (labels, hard negatives, graphs, the
index of each text in the cached text table) is computed once by ``prepare``; the training loop
only reads. See docs/manifest.md for the column meanings.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from clip2clinic.io import InputError, atomic_path, check_inside_root
from clip2clinic.observations import CHEXPERT_CLASSES
from clip2clinic.vocabulary import SPLITS

MANIFEST_VERSION = 3
#: Versions this code reads: version 1 named the patient column ``subject_id`` (renamed on
#: read); versions 1 and 2 hold absolute ``image_path`` values and record no dataset root.
READABLE_VERSIONS = (1, 2, 3)
_V1_NAMES = {"patient_id": "subject_id"}
#: Table metadata key of the dataset root that relative ``image_path`` values are under.
ROOT_KEY = b"clip2clinic_dataset_root"
#: Table metadata key of the fingerprint of the manifest's text table (see
#: :func:`clip2clinic.data.corpus.texts_fingerprint`), recorded so a reader checks a text
#: cache without reading every text.
TEXTS_FINGERPRINT_KEY = b"clip2clinic_texts_fingerprint"
#: The value coding of the label columns, as their field metadata states it.
LABEL_CODING = "1 positive, 0 negative, -1 uncertain, NaN not mentioned"
_LABEL_METADATA = {b"classes": json.dumps(list(CHEXPERT_CLASSES)).encode(),
                   b"coding": LABEL_CODING.encode()}  # fmt: skip


def _labels_field(name: str) -> pa.Field:
    """A label column: the 14 CheXpert values in CHEXPERT_CLASSES order, named in its
    metadata (``classes``, a JSON list; ``coding``)."""
    return pa.field(name, pa.list_(pa.float32(), len(CHEXPERT_CLASSES)),
                    metadata=_LABEL_METADATA)


#: Column name -> Arrow type. ``labels`` columns hold the 14 CheXpert values
#: (1 positive, 0 negative, -1 uncertain, NaN not mentioned) in CHEXPERT_CLASSES order;
#: ``image_path`` is relative to the dataset root recorded under :data:`ROOT_KEY` (absolute
#: only for an image outside that root).
SCHEMA = pa.schema(
    [
        ("dataset", pa.string()),
        ("patient_id", pa.string()),
        ("study_id", pa.string()),
        ("image_id", pa.string()),
        ("split", pa.string()),
        ("view", pa.string()),
        ("image_path", pa.string()),
        ("image_cache", pa.string()),
        ("report_raw", pa.string()),
        ("report", pa.string()),
        _labels_field("labels"),
        ("chosen", pa.string()),
        ("hard_negative", pa.string()),
        _labels_field("hard_negative_labels"),
        ("omitted", pa.string()),
        ("graph", pa.string()),
        ("hard_negative_graph", pa.string()),
        ("text_id", pa.int32()),
        ("hard_negative_text_id", pa.int32()),
        ("omitted_text_id", pa.int32()),
    ],
    metadata={b"clip2clinic_manifest_version": str(MANIFEST_VERSION).encode()},
)



def write_manifest(frame: pd.DataFrame, path: str | os.PathLike,
                   dataset_root: str | os.PathLike) -> None:
    """Validate ``frame`` against :data:`SCHEMA` and write it atomically as Parquet, recording
    ``dataset_root`` (made absolute), which relative ``image_path`` values are under, and the
    fingerprint of the text table (:data:`TEXTS_FINGERPRINT_KEY`)."""
    from clip2clinic.data.corpus import TEXT_COLUMNS, text_table, texts_fingerprint

    missing = [name for name in SCHEMA.names if name not in frame.columns]
    if missing:
        raise ValueError(f"manifest is missing column(s): {', '.join(missing)}")
    bad_splits = set(frame["split"]) - set(SPLITS)
    if bad_splits:
        raise ValueError(f"manifest has unknown split(s) {sorted(bad_splits)}; expected {SPLITS}")
    texts = text_table(pd.concat([frame[column] for column in TEXT_COLUMNS]))["text"]
    schema = SCHEMA.with_metadata({**SCHEMA.metadata,
                                   ROOT_KEY: str(Path(dataset_root).absolute()).encode(),
                                   TEXTS_FINGERPRINT_KEY: texts_fingerprint(texts).encode()})
    table = pa.Table.from_pandas(frame[SCHEMA.names], schema=schema, preserve_index=False)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


#: Rows per record batch when a manifest is read.
_READ_BATCH_ROWS = 4096


def read_manifest(path: str | os.PathLike, split: str | None = None,
                  columns: list[str] | None = None) -> pd.DataFrame:
    """Read a manifest (optionally one split, optionally only some ``columns``: the others'
    report texts never reach memory); a clear error names a missing or foreign file, or a row
    whose ``image_cache`` would leave the cache folder."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such manifest (run `clip2clinic prepare` first)")
    version = _version(path)
    names = _V1_NAMES if version == 1 else {}
    if columns is not None:
        columns = [names.get(c, c) for c in dict.fromkeys(["image_id", "image_cache", *columns])]
    try:
        table = _read_table(path, columns, split)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{path}: not a readable Parquet manifest ({exc})") from None
    frame = table.to_pandas().rename(columns={old: new for new, old in names.items()})
    check_inside_root(frame["image_cache"], f"{path}: column 'image_cache'",
                      rows=[f"image {i}" for i in frame["image_id"]])
    return frame


def relative_image_paths(paths: pd.Series, root: str | os.PathLike) -> pd.Series:
    """Source image paths as the manifest stores them: relative to ``root`` (POSIX
    separators) where they lie under it, else absolute; "" where no file is listed."""
    root = Path(root).absolute()

    def relative(path: object) -> str:
        if path is None or path != path or path == "":
            return ""
        path = Path(os.fspath(path)).absolute()
        return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)

    return paths.map(relative).astype(str)


def _read_table(path: Path, columns: list[str] | None, split: str | None) -> pa.Table:
    """The manifest's ``columns`` (all by default) of the rows of ``split`` (all by default),
    read in record batches and filtered batch by batch: the peak memory is the result plus one
    batch, not every split's rows of those columns at once."""
    parquet = pq.ParquetFile(path)
    wanted = columns if columns is not None else parquet.schema_arrow.names
    read = wanted if split is None or "split" in wanted else [*wanted, "split"]
    batches = []
    for batch in parquet.iter_batches(batch_size=_READ_BATCH_ROWS, columns=read):
        if split is not None:
            batch = batch.filter(pc.equal(batch.column("split"), split))
        batches.append(batch.select(wanted))
    schema = pa.schema([parquet.schema_arrow.field(name) for name in wanted],
                       metadata=parquet.schema_arrow.metadata)
    return pa.Table.from_batches(batches, schema=schema)


def dataset_root(path: str | os.PathLike) -> Path | None:
    """The dataset root a manifest recorded at ``prepare`` (None before version 3)."""
    _version(Path(path))
    root = (pq.read_schema(path).metadata or {}).get(ROOT_KEY)
    return Path(root.decode()) if root else None


def recorded_texts_fingerprint(path: str | os.PathLike) -> str | None:
    """The text-table fingerprint a manifest recorded when written (None for manifests written
    before it was recorded)."""
    value = (pq.read_schema(path).metadata or {}).get(TEXTS_FINGERPRINT_KEY)
    return value.decode() if value else None


def source_image_paths(frame: pd.DataFrame, root: str | os.PathLike | None) -> list[Path | None]:
    """The source image of every row of ``frame`` (manifest rows): ``image_path`` joined to
    ``root`` where relative, as it is where absolute (manifests before version 3), None where
    no file is listed."""
    paths: list[Path | None] = []
    for value in frame["image_path"].fillna(""):
        path = Path(value) if value else None
        if path is not None and not path.is_absolute():
            if root is None:
                raise InputError(f"image_path {value!r} is relative and no dataset root is "
                                 "known; give the dataset's root folder")
            path = Path(root) / path
        paths.append(path)
    return paths


def _version(path: Path) -> int:
    """The manifest version of ``path``; InputError for a foreign or unreadable file, or a
    version this code does not read."""
    try:
        metadata = pq.read_schema(path).metadata or {}
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{path}: not a readable Parquet manifest ({exc})") from None
    version = metadata.get(b"clip2clinic_manifest_version")
    if version is None:
        raise InputError(f"{path}: not a clip2clinic manifest (no version metadata)")
    if int(version) not in READABLE_VERSIONS:
        raise InputError(
            f"{path}: manifest version {int(version)}, this clip2clinic reads "
            f"{', '.join(map(str, READABLE_VERSIONS))}; re-run `clip2clinic prepare`"
        )
    return int(version)


def label_matrix(frame: pd.DataFrame, column: str = "labels") -> np.ndarray:
    """The N×14 float32 label matrix of a manifest column (NaN where not mentioned)."""
    if len(frame) == 0:
        return np.zeros((0, len(CHEXPERT_CLASSES)), dtype=np.float32)
    return np.stack(frame[column].to_numpy()).astype(np.float32)


def split_sizes(path: str | os.PathLike) -> dict[str, int]:
    """Rows per split of a manifest (only its ``split`` column is read)."""
    try:
        splits = pq.read_table(path, columns=["split"]).column("split").to_pylist()
    except (pa.ArrowInvalid, OSError, KeyError) as exc:
        raise InputError(f"{path}: not a readable Parquet manifest ({exc})") from None
    return {split: splits.count(split) for split in SPLITS}
