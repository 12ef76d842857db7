"""Small filesystem helpers shared by every stage: atomic writes and hashing."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO

__all__ = ["CHUNK_SIZE", "atomic_write_bytes", "fsync_dir", "sha256_file", "sha256_stream"]

# Large enough that hashing and copying cost little CPU per byte.
CHUNK_SIZE = 1 << 20


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


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either the old file or the new one whole.

    The bytes go to a temporary file in the same directory, are fsynced, then renamed over
    ``path`` with ``os.replace``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
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
