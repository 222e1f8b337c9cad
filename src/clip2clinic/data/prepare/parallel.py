"""Chunked, resumable, parallel map used by the prepare stages."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from clip2clinic.io import atomic_path


def fingerprint(*parts: Any) -> str:
    """A short stable hash of JSON-serialisable ``parts`` (names cached chunk files)."""
    payload = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(payload).hexdigest()[:16]


def run_chunks(
    rows: pd.DataFrame,
    work: Callable[[pd.DataFrame], pd.DataFrame],
    cache: Path,
    name: str,
    options: Any,
    workers: int,
    chunk_size: int = 512,
    desc: str | None = None,
) -> pd.DataFrame:
    """Apply ``work`` to ``rows`` in chunks, caching each chunk's result as Parquet.

    A chunk file is named by the stage ``name``, its index and a fingerprint of its input rows
    and ``options``, so a re-run skips finished chunks and never reuses a stale one. ``work``
    must be a picklable module-level function returning one output row per input row.
    """
    cache.mkdir(parents=True, exist_ok=True)
    chunks = [rows.iloc[i : i + chunk_size] for i in range(0, len(rows), chunk_size)]
    paths = [
        cache / f"{name}-{i:05d}-{fingerprint(chunk.to_dict('list'), options)}.parquet"
        for i, chunk in enumerate(chunks)
    ]
    todo = [i for i, path in enumerate(paths) if not _readable(path)]
    bar = tqdm(total=len(rows), initial=len(rows) - sum(len(chunks[i]) for i in todo),
               desc=desc or name, unit="row", disable=len(rows) == 0)
    with bar:
        if workers <= 1 or len(todo) <= 1:
            for i in todo:
                _save(work(chunks[i]), paths[i])
                bar.update(len(chunks[i]))
        else:
            context = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
            with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
                futures = {pool.submit(work, chunks[i]): i for i in todo}
                for future in as_completed(futures):
                    i = futures[future]
                    _save(future.result(), paths[i])
                    bar.update(len(chunks[i]))
    if not paths:
        return pd.DataFrame()
    return pd.concat([pd.read_parquet(path) for path in paths], ignore_index=True)


def _readable(path: Path) -> bool:
    """A finished chunk file whose Parquet footer reads (a damaged one is computed again)."""
    try:
        pq.read_metadata(path)
    except (OSError, pa.ArrowException):
        return False
    return True


def _save(frame: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)
