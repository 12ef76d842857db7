"""Small filesystem helpers shared by every stage: atomic writes and hashing.

Every byte fetchplan hashes on its way (a download, a copy, a re-check of a file) goes through
:func:`copy_hashing`, one loop with its cap, its cancel hook and its fsync; :func:`hash_file`
and :func:`write_verified` are it applied to a file and to a verified copy at a final name.
"""

from __future__ import annotations

import hashlib
import os
import stat
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO, Protocol

from fetchplan.errors import FetchplanError, HashMismatch

__all__ = [
    "CHUNK_SIZE",
    "DIR_MODE",
    "STDOUT",
    "Hashed",
    "Hasher",
    "Readable",
    "SizeMismatch",
    "StagedFile",
    "TooLarge",
    "atomic_write_bytes",
    "check_hashed",
    "copy_hashing",
    "fsync_dir",
    "hash_file",
    "make_temp",
    "read_chunks",
    "sha256_file",
    "sha256_stream",
    "staged",
    "write_output",
    "write_verified",
]

# Large enough that hashing and copying cost little CPU per byte.
CHUNK_SIZE = 1 << 20


def _read_umask() -> int:
    # os.umask can only be read by setting it: done once, at import, before any thread starts.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()
_FILE_MODE = 0o666 & ~_UMASK
DIR_MODE = 0o777 & ~_UMASK
"""The mode a plain ``mkdir`` gives a directory (``tempfile.mkdtemp`` makes them private)."""


def make_temp(directory: Path, prefix: str, suffix: str = ".tmp") -> tuple[int, Path]:
    """A new temporary file in ``directory`` with the mode a plain ``open`` would give it.

    ``tempfile.mkstemp`` makes files private (0600); a file renamed from it to a final name
    (a manifest, a wheel, a cache entry) must be readable as any other file the user writes.
    """
    fd, name = tempfile.mkstemp(dir=directory, prefix=prefix, suffix=suffix)
    try:
        os.fchmod(fd, _FILE_MODE)
    except OSError:
        os.close(fd)
        Path(name).unlink(missing_ok=True)
        raise
    return fd, Path(name)


def fsync_dir(directory: Path) -> None:
    """Flush a directory entry so a rename in it survives power loss (no-op where unsupported)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


STDOUT = "-"
"""The output name that means standard output, as with pip's ``--report -``."""


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either the old file or the new one whole.

    The bytes go to a temporary file in the same directory, are fsynced, then renamed over
    ``path`` with ``os.replace``: whatever was at ``path`` (a link planted there included) is
    replaced, never followed. An OS error becomes a :class:`FetchplanError` naming ``path``.
    For a file the user names as an output, see :func:`write_output`.
    """
    _replace(path, path, data)


def write_output(path: Path, data: bytes) -> None:
    """Write ``data`` to an output the user named (``-o FILE``, ``--timings FILE``).

    ``-`` is standard output (as pip's ``--report -``). Only a regular file is replaced, as
    :func:`atomic_write_bytes` does: a FIFO, a device (``/dev/stdout``, ``/dev/null``) or a
    descriptor link under ``/proc`` is written through, as ``open`` would; a symbolic link
    stays, and the regular file it leads to is what is replaced.
    """
    if str(path) == STDOUT:
        _write_through(None, path, data)
        return
    target = path
    try:
        if path.is_symlink():
            real = Path(os.path.realpath(path))
            if real.parts[1:2] in (("proc",), ("dev",)) or not real.parent.is_dir():
                _write_through(path, path, data)
                return
            target = real
        if target.exists() and not stat.S_ISREG(target.stat().st_mode):
            _write_through(target, path, data)
            return
    except OSError as exc:
        raise FetchplanError(f"{path}: cannot write: {exc.strerror or exc}") from exc
    _replace(target, path, data)


def _write_through(target: Path | None, shown: Path, data: bytes) -> None:
    """Write ``data`` to a file that is not to be replaced (None: standard output)."""
    try:
        if target is None:
            sys.stdout.flush()
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
            return
        with target.open("wb") as fh:
            fh.write(data)
    except OSError as exc:
        raise FetchplanError(f"{shown}: cannot write: {exc.strerror or exc}") from exc


def _replace(path: Path, shown: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = make_temp(path.parent, prefix=f".{path.name}.")
    except OSError as exc:
        raise FetchplanError(f"{shown}: cannot write: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise FetchplanError(f"{shown}: cannot write: {exc.strerror or exc}") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


class Hasher(Protocol):
    """What :mod:`hashlib` objects offer and :func:`copy_hashing` needs of one."""

    def update(self, data: bytes, /) -> None: ...
    def digest(self) -> bytes: ...
    def hexdigest(self) -> str: ...


class TooLarge(FetchplanError):
    """A copy would have passed its cap; nothing past the cap was written or hashed."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"more than {limit} bytes")


class SizeMismatch(FetchplanError):
    """A verified copy came out of another size than expected; nothing kept at its name."""

    def __init__(self, path: str, expected: int, actual: int) -> None:
        self.path = path
        self.expected = expected
        self.actual = actual
        super().__init__(f"{path}: size {actual} differs from the expected {expected}")


@dataclass(frozen=True, slots=True)
class Hashed:
    """What a copy (or a read) went through: its size, its sha256, and the hasher itself
    (to continue it, as a resumed download continues the hash of its partial)."""

    size: int
    sha256: str
    hasher: Hasher


class Readable(Protocol):
    """A binary file, or anything else with its ``read``."""

    def read(self, size: int, /) -> bytes: ...


def read_chunks(source: Readable, size: int | None = None) -> Iterator[bytes]:
    """``source`` read in :data:`CHUNK_SIZE` pieces to its end, or to ``size`` bytes."""
    left = size
    while left is None or left > 0:
        chunk = source.read(CHUNK_SIZE if left is None else min(CHUNK_SIZE, left))
        if not chunk:
            return
        if left is not None:
            left -= len(chunk)
        yield chunk


def copy_hashing(
    chunks: Iterable[bytes],
    out: IO[bytes] | None = None,
    *,
    limit: int | None = None,
    cancel: Callable[[], None] | None = None,
    progress: Callable[[int], None] | None = None,
    hasher: Hasher | None = None,
    also: Sequence[Hasher] = (),
    fsync: bool = False,
) -> Hashed:
    """Hash ``chunks`` with sha256 (and each of ``also``), writing them to ``out`` if given.

    The one loop of fetchplan that hashes bytes on their way (pypa/installer's
    ``copyfileobj_with_hashing``, generalised). ``limit``: raise :class:`TooLarge` before the
    chunk that would pass it is written. ``cancel``: called before each chunk, raises to stop
    the copy (the executor's raises ``Cancelled``). ``progress``: called with each chunk's
    length once it is written. ``hasher``: a sha256 already fed (a partial's prefix) to
    continue. ``fsync``: flush ``out`` to the disk at the end. Errors of ``chunks``, ``out``
    and the callbacks propagate as they are.
    """
    digest = hasher if hasher is not None else hashlib.sha256()
    size = 0
    for chunk in chunks:
        if cancel is not None:
            cancel()
        size += len(chunk)
        if limit is not None and size > limit:
            raise TooLarge(limit)
        if out is not None:
            view = memoryview(chunk)
            while view:  # an unbuffered file may take a write in parts
                view = view[out.write(view) :]
        digest.update(chunk)
        for other in also:
            other.update(chunk)
        if progress is not None:
            progress(len(chunk))
    if out is not None and fsync:
        out.flush()
        os.fsync(out.fileno())
    return Hashed(size=size, sha256=digest.hexdigest(), hasher=digest)


def hash_file(
    path: Path,
    *,
    size: int | None = None,
    cancel: Callable[[], None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> Hashed:
    """The sha256 and size of the file at ``path`` (of its first ``size`` bytes if given)."""
    with path.open("rb") as fh:
        return copy_hashing(read_chunks(fh, size), cancel=cancel, progress=progress)


def check_hashed(shown: str, hashed: Hashed, *, sha256: str | None, size: int | None) -> None:
    """Raise :class:`SizeMismatch` or :class:`HashMismatch` (naming ``shown``) unless
    ``hashed`` is of the expected ``size`` and ``sha256`` (None: anything)."""
    if size is not None and hashed.size != size:
        raise SizeMismatch(shown, size, hashed.size)
    if sha256 is not None and hashed.sha256 != sha256:
        raise HashMismatch(shown, "sha256", sha256, hashed.sha256)


@contextmanager
def staged(directory: Path | None, prefix: str, suffix: str = ".part") -> Iterator[StagedFile]:
    """A new temporary file in ``directory`` (None: the system's), open for writing; removed
    on leaving unless it was renamed away (its name then holds something else, or nothing)."""
    if directory is None:
        directory = Path(tempfile.gettempdir())
    fd, path = make_temp(directory, prefix=prefix, suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as out:
            yield StagedFile(path, out)
    finally:
        path.unlink(missing_ok=True)


@dataclass(frozen=True, slots=True)
class StagedFile:
    """A temporary file :func:`staged` made: its path, and the file open for writing."""

    path: Path
    out: BinaryIO

    def close(self) -> None:
        """Close the file once written, to use it by its path."""
        self.out.close()


def write_verified(
    chunks: Iterable[bytes],
    final: Path,
    *,
    sha256: str | None,
    size: int | None = None,
    shown: str | None = None,
    limit: int | None = None,
    cancel: Callable[[], None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> Hashed:
    """Put ``chunks`` at ``final`` only if they are ``size`` bytes of ``sha256`` (None:
    anything): written to a temporary file beside it while hashed, fsynced, checked, then
    renamed over ``final``. Whatever fails (a mismatch, the cap, a cancel, an error of the
    chunks), no file appears at ``final`` and the temporary one is gone; the error names
    ``shown`` (default ``final``) and propagates.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    with staged(final.parent, prefix=f".{final.name}.", suffix=".tmp") as temp:
        hashed = copy_hashing(
            chunks, temp.out, limit=limit, cancel=cancel, progress=progress, fsync=True
        )
        check_hashed(str(final) if shown is None else shown, hashed, sha256=sha256, size=size)
        os.replace(temp.path, final)
    fsync_dir(final.parent)
    return hashed


def sha256_stream(stream: BinaryIO) -> str:
    """Hex sha256 of everything left in ``stream``."""
    return copy_hashing(read_chunks(stream)).sha256


def sha256_file(path: Path) -> str:
    """Hex sha256 of the file at ``path``."""
    return hash_file(path).sha256
