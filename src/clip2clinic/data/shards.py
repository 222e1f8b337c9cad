"""Image-cache shards: WebDataset-style tar files of cached PNGs (``prepare --shards``).

A shard is a plain POSIX tar of ``KEY.png`` members written with ``webdataset.TarWriter``, so
``webdataset`` (and ``tar``) read it as it is. The manifest points into shards with
``SHARD.tar#KEY.png`` in its ``image_cache`` column (relative to the cache folder):

- sequential reading (the training loader): :func:`iter_shard`, a whole shard at a time, so a
  multi-node run on a shared file system opens a few hundred files, not one per image;
- random access (evaluation, the map-style dataset): :func:`read_member` through a per-process
  index of each shard's member offsets, built once per shard by reading its tar headers.
"""

from __future__ import annotations

import os
import tarfile
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from pathlib import Path

from clip2clinic.io import atomic_path

#: Separates the shard from the member in a manifest's ``image_cache`` pointer.
SEPARATOR = "#"
SUFFIX = ".tar"
#: Shard indexes kept per process (each about 100 bytes per member).
OPEN_INDEXES = 64

_indexes: OrderedDict[str, dict[str, tuple[int, int]]] = OrderedDict()


def pointer(shard: str, member: str) -> str:
    """The ``image_cache`` value of ``member`` inside ``shard`` (both relative)."""
    return f"{shard}{SEPARATOR}{member}"


def is_shard_member(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a ``SHARD.tar#MEMBER`` pointer."""
    return f"{SUFFIX}{SEPARATOR}" in str(path)


def split_pointer(path: str | os.PathLike) -> tuple[str, str]:
    """``(shard path, member name)`` of a ``SHARD.tar#MEMBER`` pointer."""
    shard, _, member = str(path).rpartition(SEPARATOR)
    return shard, member


def write_shard(target: Path, members: Iterable[tuple[str, bytes]]) -> int:
    """Write ``(key, png bytes)`` pairs as ``KEY.png`` members of the tar ``target``
    (atomically); returns the number of members."""
    import webdataset  # only where shards are written or read

    count = 0
    with atomic_path(target, cache_file=True) as tmp:
        with webdataset.TarWriter(str(tmp), encoder=False, mtime=0) as writer:
            for key, data in members:
                writer.write({"__key__": key, "png": data})
                count += 1
    return count


def iter_shard(path: str | os.PathLike) -> Iterator[tuple[str, bytes]]:
    """``(member name, bytes)`` of every member of the shard ``path``, in order."""
    from webdataset.tariterators import tar_file_iterator

    with open(path, "rb") as stream:
        for sample in tar_file_iterator(stream):
            yield sample["fname"], sample["data"]


def read_member(path: str | os.PathLike) -> bytes:
    """The bytes of one ``SHARD.tar#MEMBER``; raises ImageLoadError naming the pointer when
    the shard or the member is missing or the shard is damaged."""
    from clip2clinic.data.images import ImageLoadError

    shard, member = split_pointer(path)
    try:
        index = _index(shard)
        if member not in index:
            raise ImageLoadError(path, f"no member {member!r} in the shard")
        offset, size = index[member]
        with open(shard, "rb") as handle:
            handle.seek(offset)
            data = handle.read(size)
    except FileNotFoundError:
        raise ImageLoadError(path, "no such shard") from None
    except (OSError, tarfile.TarError) as exc:
        raise ImageLoadError(path, f"unreadable shard ({exc})") from None
    if len(data) != size:
        raise ImageLoadError(path, "truncated shard")
    return data


def _index(shard: str) -> dict[str, tuple[int, int]]:
    """Member name -> (data offset, size) of ``shard``, cached (least recently used)."""
    stamp = f"{shard}:{os.stat(shard).st_mtime_ns}"
    if stamp in _indexes:
        _indexes.move_to_end(stamp)
        return _indexes[stamp]
    with tarfile.open(shard, "r:") as tar:
        index = {info.name: (info.offset_data, info.size) for info in tar if info.isreg()}
    _indexes[stamp] = index
    while len(_indexes) > OPEN_INDEXES:
        _indexes.popitem(last=False)
    return index
