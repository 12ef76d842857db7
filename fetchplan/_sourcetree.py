"""A project's source tree as one canonical archive: what is built, and what its digest is.

A local project directory, or a checked-out VCS commit, enters a plan as the archive
:func:`write_tree_archive` makes of it, and the archive's sha256 is the tree's digest. The
planner makes it to learn the digest (and to prepare the metadata from it); the executor makes
it again into the destination and verifies it like any download; ``install`` builds from it.

The rule (also in the README): an uncompressed POSIX tar (pax format) holding, under the top
directory ``source/``, every regular file of the tree in byte order of its UTF-8 relative
path, each with mode 0644 (0755 when its owner may execute it), owner 0, mtime 1980-01-01,
and no directories, links or other members. Left out:

* at any depth, the directories ``.git``, ``.hg``, ``.svn``, ``.bzr``, ``__pycache__``,
  ``.tox``, ``.nox``, ``.mypy_cache``, ``.pytest_cache``, ``.ruff_cache``, ``*.egg-info``,
  every directory holding ``pyvenv.cfg`` (a virtual environment) or ``.fetchplan`` (a fetch
  destination), and ``*.pyc``/``*.pyo`` files;
* at the top, ``build`` and ``dist`` (a build's own output);
* the paths the plan lists in the artifact's ``exclude`` (its plan file and destination).

A symbolic link to a file is archived as that file's content; a link to a directory, or to
something that is neither, is refused, as is anything else that is not a regular file.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
from collections.abc import Collection
from pathlib import Path
from typing import BinaryIO

from fetchplan.errors import FetchplanError

__all__ = ["TOP", "SourceTreeError", "tree_files", "write_tree_archive"]

TOP = "source"
_MTIME = 315532800  # 1980-01-01: zip (and so wheel builders) cannot store older times
_SKIP_DIRS = frozenset(
    {".git", ".hg", ".svn", ".bzr", "__pycache__", ".tox", ".nox"}
    | {".mypy_cache", ".pytest_cache", ".ruff_cache"}
)
_SKIP_TOP = frozenset({"build", "dist"})


class SourceTreeError(FetchplanError):
    """A source tree that cannot be archived (an unreadable file, a link to a directory)."""


def _skipped_dir(entry: os.DirEntry[str], relative: str, top: bool) -> bool:
    name = entry.name
    if name in _SKIP_DIRS or name.endswith(".egg-info") or (top and name in _SKIP_TOP):
        return True
    path = Path(entry.path)
    return (path / "pyvenv.cfg").exists() or (path / ".fetchplan").is_dir()


def tree_files(root: Path, exclude: Collection[str] = ()) -> list[tuple[str, Path]]:
    """The archived files of ``root``: (relative POSIX path, path), in archive order."""
    excluded = {e.strip("/") for e in exclude}
    found: list[tuple[str, Path]] = []

    def walk(directory: Path, prefix: str) -> None:
        try:
            entries = list(os.scandir(directory))
        except OSError as exc:
            raise SourceTreeError(f"{directory}: cannot list: {exc.strerror or exc}") from None
        for entry in entries:
            relative = f"{prefix}{entry.name}"
            if relative in excluded:
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    if not _skipped_dir(entry, relative, not prefix):
                        walk(Path(entry.path), relative + "/")
                    continue
                if entry.name.endswith((".pyc", ".pyo")):
                    continue
                mode = Path(entry.path).stat().st_mode  # follows a link to its file
            except OSError as exc:
                raise SourceTreeError(f"{entry.path}: {exc.strerror or exc}") from None
            if stat.S_ISDIR(mode):
                raise SourceTreeError(
                    f"{entry.path}: a link to a directory; source trees may only link to files"
                )
            if not stat.S_ISREG(mode):
                raise SourceTreeError(f"{entry.path}: not a regular file")
            found.append((relative, Path(entry.path)))

    walk(root, "")
    found.sort(key=lambda item: item[0].encode("utf-8", "surrogateescape"))
    return found


class _Hashing(io.RawIOBase):
    """A write-only stream that hashes and counts what goes to ``out``."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self.digest = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self._out.write(data)
        self.digest.update(data)
        self.size += len(data)
        return len(data)


def write_tree_archive(root: Path, out: BinaryIO, exclude: Collection[str] = ()) -> tuple[str, int]:
    """Write the canonical archive of ``root`` to ``out``; return its sha256 and size.

    Raises :class:`SourceTreeError` naming the file at fault.
    """
    stream = _Hashing(out)
    files = tree_files(root, exclude)
    with tarfile.open(fileobj=stream, mode="w|", format=tarfile.PAX_FORMAT) as archive:
        for relative, path in files:
            try:
                found = path.stat()
                size = found.st_size
                executable = found.st_mode & stat.S_IXUSR
                info = tarfile.TarInfo(f"{TOP}/{relative}")
                info.size = size
                info.mode = 0o755 if executable else 0o644
                info.mtime = _MTIME
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                with path.open("rb") as handle:
                    archive.addfile(info, handle)
            except OSError as exc:
                raise SourceTreeError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return stream.digest.hexdigest(), stream.size
