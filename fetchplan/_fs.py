"""Small filesystem helpers shared by every stage: atomic writes and hashing."""

from __future__ import annotations

import hashlib
import os
import stat
import sys
import tempfile
from pathlib import Path
from typing import BinaryIO

from fetchplan.errors import FetchplanError

__all__ = [
    "CHUNK_SIZE",
    "DIR_MODE",
    "STDOUT",
    "atomic_write_bytes",
    "fsync_dir",
    "make_temp",
    "sha256_file",
    "sha256_stream",
    "write_output",
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


def sha256_stream(stream: BinaryIO) -> str:
    """Hex sha256 of everything left in ``stream``."""
    digest = hashlib.sha256()
    while chunk := stream.read(CHUNK_SIZE):
        digest.update(chunk)
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    """Hex sha256 of the file at ``path``."""
    with path.open("rb") as fh:
        return sha256_stream(fh)
