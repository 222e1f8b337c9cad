"""Reading user tables and writing outputs safely.

Every reader raises :class:`InputError` with a message that names the file (and the column or
line) at fault; every writer writes to a temporary file beside the target and renames it, so an
interrupted job never leaves a half-written output.
"""

from __future__ import annotations

import csv
import glob
import gzip
import io
import logging
import os
import re
import secrets
import stat
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

import pandas as pd

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)


class InputError(ValueError):
    """A user-supplied file or field cannot be used; the message says which and why."""


def decode_lenient(data: bytes, source: str = "<bytes>") -> str:
    """Decode UTF-8, falling back to Latin-1 line by line for lines that are not UTF-8.

    Latin-1 maps every byte, so nothing is lost and no row is dropped; a warning counts the
    repaired lines.
    """
    data = data.removeprefix(b"\xef\xbb\xbf")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    lines = data.splitlines(keepends=True)
    repaired = 0
    out = []
    for line in lines:
        try:
            out.append(line.decode("utf-8"))
        except UnicodeDecodeError:
            out.append(line.decode("latin-1"))
            repaired += 1
    log.warning("%s: %d line(s) were not UTF-8 and were read as Latin-1", source, repaired)
    return "".join(out)


def read_table(path: str | os.PathLike, required: Sequence[str] = (),
               path_columns: Sequence[str] = ()) -> pd.DataFrame:
    """Read a CSV (optionally gzip-compressed) as strings, NaN kept for empty cells.

    Raises :class:`InputError` if the file is missing, empty, not parseable as CSV, lacks a
    required column, or has a cell in ``path_columns`` (paths relative to the dataset root)
    that leaves the root (see :func:`check_inside_root`).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    raw = path.read_bytes()
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise InputError(f"{path}: not a readable gzip file ({exc})") from None
    if not raw.strip():
        raise InputError(f"{path}: the file is empty (no header row)")
    text = decode_lenient(raw, str(path))
    _check_field_counts(text, path)
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, csv.Error) as exc:
        raise InputError(f"{path}: unreadable CSV ({exc})") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise InputError(
            f"{path}: missing column(s) {', '.join(map(repr, missing))}; "
            f"the file has {', '.join(map(repr, frame.columns))}"
        )
    for column in path_columns:
        check_inside_root(frame[column], f"{path}: column {column!r}")
    return frame


def check_output(target: str | os.PathLike, inputs: Sequence[str | os.PathLike] = ()) -> None:
    """Raise InputError unless ``target`` may be replaced by a new regular file: it must not be
    one of ``inputs`` (after resolving links), a symlink, a directory, a FIFO, a device or a
    socket. A missing ``target`` is fine."""
    target = Path(target)
    for source in inputs:
        if Path(source).exists() and target.exists() and os.path.samefile(source, target):
            raise InputError(f"{target}: the output is the input file {source}; write elsewhere")
    try:
        mode = target.lstat().st_mode
    except FileNotFoundError:
        return
    if stat.S_ISLNK(mode):
        raise InputError(f"{target}: the output is a symbolic link; refusing to replace it "
                         "(give the path it points to, or another name)")
    if stat.S_ISDIR(mode):
        raise InputError(f"{target}: the output is a directory; give a file name")
    if not stat.S_ISREG(mode):
        raise InputError(f"{target}: the output is not a regular file (a FIFO, device or "
                         "socket); refusing to replace it")


def _check_field_counts(text: str, path: Path) -> None:
    """Raise InputError naming the first line with more fields than the header (pandas would
    silently take the first column as an index and shift every other one)."""
    csv.field_size_limit(max(csv.field_size_limit(), len(text)))  # a cell may be the file
    reader = csv.reader(io.StringIO(text))
    header = next(reader, [])
    for record in reader:
        if len(record) > len(header):
            raise InputError(
                f"{path}: line {reader.line_num}: {len(record)} fields but the header has "
                f"{len(header)}; quote values that contain commas"
            )


def check_ids(ids: pd.Series, where: str) -> None:
    """Warn, with counts, about empty and duplicate values of an id column (every row is still
    kept, in input order)."""
    text = ids.map(as_text).str.strip()
    empty = int(text.eq("").sum())
    repeated = text[text.ne("") & text.duplicated(keep=False)]
    if empty:
        log.warning("%s: %d row(s) with an empty id", where, empty)
    if len(repeated):
        log.warning("%s: %d id(s) appear on more than one row (%d rows in all); the output keeps "
                    "every row in input order", where, repeated.nunique(), len(repeated))


@contextmanager
def atomic_path(target: str | os.PathLike, cache_file: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success rename it onto ``target``.

    The target is checked first (:func:`check_output`). The file gets mode 0666 less the
    user's umask, like any new file, even when the writer replaced the temporary file with a
    0600 one (safetensors does), and is fsynced before the rename. Its name holds this process
    id, so temporary files left by a killed run (they may hold report text) are removed by the
    next write to the same target. ``cache_file`` (the image cache: many files, no report
    text, checked when reused) skips the fsync and that sweep of the folder.
    """
    target = Path(target)
    check_output(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if not cache_file:
        _remove_orphans(target)
    tmp_path = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    os.close(os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        yield tmp_path
        tmp_path.chmod(0o666 & ~current_umask())
        if not cache_file:
            _fsync(tmp_path)
        check_output(target)  # nothing became a link or device while we wrote
        os.replace(tmp_path, target)
        if not cache_file:
            with suppress(OSError):  # not every file system syncs a directory
                _fsync(target.parent)
    finally:
        tmp_path.unlink(missing_ok=True)


def current_umask() -> int:
    """This process's umask (read from /proc where it can be, without changing it)."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # no /proc: set and restore (briefly process-wide)
    os.umask(mask)
    return mask


def follow_umask(folder: Path) -> None:
    """Give every file under ``folder`` mode 0666 and every folder 0777, less the umask, as a
    plain new file gets (some writers, e.g. safetensors, create 0600 files, which a lab
    sharing a run folder cannot read)."""
    mask = current_umask()
    for path in [*folder.rglob("*"), folder]:
        if not path.is_symlink():
            path.chmod((0o777 if path.is_dir() else 0o666) & ~mask)


def sync_tree(folder: Path) -> None:
    """fsync every file and folder under ``folder`` (and it), e.g. before renaming a finished
    checkpoint folder into place."""
    for path in [*folder.rglob("*"), folder]:
        try:
            _fsync(path)
        except OSError:
            if not path.is_dir():  # not every file system syncs a directory
                raise


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[0-9a-f]{8}\.tmp$")


def _remove_orphans(target: Path) -> None:
    """Delete temporary files of ``target`` whose writing process no longer runs."""
    for path in target.parent.glob(f".{glob.escape(target.name)}.*.tmp"):
        match = _TEMP_NAME.match(path.name)
        if match and match["name"] == target.name and not _running(int(match["pid"])):
            path.unlink(missing_ok=True)
            log.info("removed %s, left by an interrupted run", path)


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


@contextmanager
def exclusive_lock(path: str | os.PathLike, what: str) -> Iterator[None]:
    """Hold an exclusive lock on the file ``path`` (created if needed) while the block runs;
    raise InputError at once, naming ``what`` and the holder's pid, when another process holds
    it. The lock dies with its process (kill -9 included). No-op where ``fcntl`` is missing."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+", encoding="utf-8") as handle:
        if fcntl is not None:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                raise InputError(f"{what} is in use by {holder} (lock {path}); wait for it to "
                                 "finish") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        yield


def write_csv_atomic(frame: pd.DataFrame, target: str | os.PathLike) -> None:
    """Write ``frame`` as CSV (no index) atomically."""
    with atomic_path(target) as tmp:
        frame.to_csv(tmp, index=False)


def write_cache_file(data: bytes, target: str | os.PathLike) -> None:
    """Write ``data`` to ``target`` atomically as one of many cache files (the image cache):
    :func:`atomic_path` with ``cache_file``, in the fewest system calls (the temporary file is
    created, written and closed once, its mode set by the umask at creation)."""
    target = Path(target)
    check_output(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    handle = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(tmp_path, target)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def write_text_atomic(text: str, target: str | os.PathLike) -> None:
    """Write ``text`` as UTF-8 atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


#: A path that is absolute (POSIX, UNC or a drive letter) or has a ``..`` component.
_ESCAPING_PATH = r"^[\\/]|^[A-Za-z]:|(?:^|[\\/])\.\.(?:[\\/]|$)"


def check_inside_root(paths: Sequence[object], where: str,
                      rows: Sequence[object] | None = None) -> None:
    """Raise InputError naming the first of ``paths`` (relative to some root) that would leave
    that root: absolute, or climbing out with ``..``. ``rows`` names each path's row in
    ``where`` (default: "row 1", "row 2", ... in order); empty cells are fine."""
    values = pd.Series(list(paths), dtype=object).map(as_text)
    bad = values.str.contains(_ESCAPING_PATH, regex=True)
    if bad.any():
        index = int(bad.to_numpy().argmax())
        row = rows[index] if rows is not None else f"row {index + 1}"
        raise InputError(
            f"{where}: {row}: path {values[index]!r} is outside its root folder (absolute or "
            "with '..'); paths in this file must be relative to it"
        )


def as_text(value: object) -> str:
    """A report cell as text: NaN/None become ""."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(value)
