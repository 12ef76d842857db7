"""Bundles as tar files: written deterministically, read back defensively.

:func:`write_tar` stores the named files of a bundle directory under one top-level directory,
in sorted order, with fixed owners, modes and one mtime, so the same bundle directory always
gives the same tar (``.tar``, or gzip with a zero header time for ``.tar.gz``/``.tgz``).

:func:`extract_tar` accepts only regular files and directories whose names stay inside the
target: an absolute name, a ``..`` component, a link, a device or a FIFO, or a name given
twice is refused with an error naming the member, before anything is written for it.

:func:`open_bundle` is what ``verify`` and ``install`` use: a bundle directory, a plain fetch
destination, a manifest file or a tar, the tar extracted into a temporary directory that is
removed again when the ``with`` block ends.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Literal

from fetchplan._fs import CHUNK_SIZE, fsync_dir
from fetchplan._parse import load_json
from fetchplan.bundle.errors import BundleError
from fetchplan.bundle.layout import (
    BUILT_DIR,
    BUNDLE_FILE,
    INDEX_DIR,
    MANIFEST_FILE,
    PLAN_FILE,
    PROVENANCE_DIR,
    README_FILE,
)
from fetchplan.errors import FileFormatError, InputError
from fetchplan.schemas import validate

__all__ = [
    "ArchiveKind",
    "OpenedBundle",
    "archive_kind",
    "archive_root_name",
    "extract_tar",
    "open_bundle",
    "write_tar",
]

ArchiveKind = Literal["tar", "tar.gz"]
_SUFFIXES: tuple[tuple[str, ArchiveKind], ...] = (
    (".tar.gz", "tar.gz"),
    (".tgz", "tar.gz"),
    (".tar", "tar"),
)


def archive_kind(path: Path) -> ArchiveKind | None:
    """``tar`` or ``tar.gz`` when ``path``'s name asks for an archive, else None."""
    name = path.name.lower()
    for suffix, kind in _SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return kind
    return None


def archive_root_name(path: Path) -> str:
    """The top-level directory inside the archive: its file name without the suffix."""
    name = path.name
    for suffix, _ in _SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _members(root: Path, files: Iterable[str]) -> list[str]:
    """Every file and every directory above one, relative, sorted so parents come first."""
    entries: set[str] = set()
    for rel in files:
        parts = PurePosixPath(rel).parts
        for depth in range(1, len(parts)):
            entries.add("/".join(parts[:depth]) + "/")
        entries.add("/".join(parts))
    return sorted(entries, key=lambda e: PurePosixPath(e).parts)


def write_tar(root: Path, files: Iterable[str], output: Path, *, mtime: int) -> None:
    """Write ``files`` (relative to ``root``) into the archive ``output``, atomically.

    Members live under ``<archive_root_name(output)>/``; directories get mode 0755, files
    0644, owner 0 without names, and every member the mtime ``mtime``.
    """
    kind = archive_kind(output)
    if kind is None:
        raise BundleError(f"{output}: not a .tar, .tar.gz or .tgz name")
    prefix = archive_root_name(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as raw:
            gz = None
            if kind == "tar.gz":
                gz = gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0)
            stream: IO[bytes] | gzip.GzipFile = raw if gz is None else gz
            with tarfile.open(fileobj=stream, mode="w", format=tarfile.PAX_FORMAT) as tar:
                tar.addfile(_info(f"{prefix}/", 0, mtime))
                for entry in _members(root, files):
                    if entry.endswith("/"):
                        tar.addfile(_info(f"{prefix}/{entry}", 0, mtime))
                        continue
                    path = root / entry
                    with path.open("rb") as fh:
                        size = os.fstat(fh.fileno()).st_size
                        tar.addfile(_info(f"{prefix}/{entry}", size, mtime), fh)
            if gz is not None:
                gz.close()
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp, output)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(output.parent)


def _info(name: str, size: int, mtime: int) -> tarfile.TarInfo:
    directory = name.endswith("/")
    info = tarfile.TarInfo(name.rstrip("/"))
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    info.mode = 0o755 if directory else 0o644
    info.size = 0 if directory else size
    info.mtime = mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _member_problem(member: tarfile.TarInfo) -> str | None:
    if member.issym():
        return f"is a symbolic link (to {member.linkname!r})"
    if member.islnk():
        return f"is a hard link (to {member.linkname!r})"
    if member.ischr() or member.isblk():
        return "is a device"
    if member.isfifo():
        return "is a FIFO"
    if not (member.isreg() or member.isdir()):
        return "is not a regular file or directory"
    name = member.name
    if not name or name.startswith(("/", "\\")) or "\\" in name or "\x00" in name:
        return "is not a relative path"
    parts = PurePosixPath(name).parts
    if ".." in parts:
        return "escapes the target directory ('..')"
    if parts and ":" in parts[0]:
        return "names a drive"
    if not parts:
        return "has an empty name"
    return None


MAX_BUNDLE_FILE = 256 * 1024 * 1024
"""Most bytes a bundle's own file (bundle.json, plan.json, manifest.json, README.txt, an index
page, a provenance object, a built wheel) may have in a tar; the artifacts have the sizes their
manifest lists."""

_OWN_FILES = frozenset({BUNDLE_FILE, PLAN_FILE, MANIFEST_FILE, README_FILE})


def _root_of(names: list[tuple[str, ...]]) -> tuple[str, ...]:
    """The one top-level directory every member is in (``open_bundle`` reads the bundle
    there), or nothing when the bundle is at the top of the archive."""
    tops = {parts[0] for parts in names}
    if len(tops) == 1 and not any(parts == (BUNDLE_FILE,) for parts in names):
        (top,) = tops
        if all(len(parts) > 1 or parts == (top,) for parts in names):
            return (top,)
    return ()


def _manifest_sizes(
    tar: tarfile.TarFile, member: tarfile.TarInfo | None, where: str
) -> dict[str, int]:
    """The manifest's files and sizes (relative to the bundle's root); none when the tar has
    no usable manifest (``verify`` then reports it)."""
    if member is None or member.size > MAX_BUNDLE_FILE:
        return {}
    source = tar.extractfile(member)
    if source is None:  # pragma: no cover - isreg() members always have data
        return {}
    with source:
        data = source.read(MAX_BUNDLE_FILE + 1)
    try:
        document = load_json(data, where)
        validate(document, "manifest", where)
    except FileFormatError:
        return {}
    sizes: dict[str, int] = {}
    for entry in document["artifacts"]:
        sizes["/".join(PurePosixPath(entry["path"]).parts).casefold()] = entry["size"]
    return sizes


def _allowed_size(relative: tuple[str, ...], sizes: dict[str, int]) -> int | None:
    """The size a file at ``relative`` (within the bundle's root) must have, or None when a
    bundle holds no such file."""
    key = "/".join(relative).casefold()
    if key in sizes:
        return sizes[key]
    if len(relative) == 1 and relative[0] in _OWN_FILES:
        return -1
    if relative[:1] == (INDEX_DIR,) and relative[-1] == "index.html" and len(relative) <= 3:
        return -1
    if len(relative) == 2 and relative[0] == PROVENANCE_DIR and relative[1].endswith(".json"):
        return -1
    if len(relative) == 2 and relative[0] == BUILT_DIR and relative[1].endswith(".whl"):
        return -1  # a wheel of bundle --build-local; verify checks the size bundle.json lists
    return None


_Member = tuple[tarfile.TarInfo, tuple[str, ...]]


def extract_tar(archive: Path, target: Path) -> None:
    """Extract ``archive`` into the existing, empty directory ``target``, refusing every
    member that could write outside it or is anything but a file or directory, and every
    file a bundle does not hold: the manifest's files at the sizes it lists, and the bundle's
    own files (up to :data:`MAX_BUNDLE_FILE` each). :class:`BundleError` names the archive
    and the member; all is checked before anything is written."""
    try:
        with tarfile.open(archive, mode="r:*") as tar:
            members = _listed_members(tar, archive)
            root = _root_of([parts for _, parts in members])
            manifest = next(
                (m for m, parts in members if m.isreg() and parts == (*root, MANIFEST_FILE)),
                None,
            )
            sizes = _manifest_sizes(tar, manifest, f"{archive}:{MANIFEST_FILE}")
            _check_members(members, root, sizes, archive)
            for member, parts in members:
                _extract_member(tar, member, target.joinpath(*parts), archive)
    except (tarfile.TarError, EOFError, gzip.BadGzipFile) as exc:
        raise BundleError(f"{archive}: not a readable tar archive: {exc}") from exc
    except OSError as exc:
        raise BundleError(f"{archive}: cannot extract: {exc}") from exc


def _listed_members(tar: tarfile.TarFile, archive: Path) -> list[_Member]:
    """Every member of ``tar`` with its path parts, each safe in itself and named once."""
    seen: set[str] = set()
    members: list[_Member] = []
    for member in tar:
        problem = _member_problem(member)
        if problem is not None:
            raise BundleError(f"{archive}: member {member.name!r} {problem}")
        parts = PurePosixPath(member.name).parts
        key = "/".join(parts).casefold()
        if key in seen:
            raise BundleError(f"{archive}: member {member.name!r} appears twice")
        seen.add(key)
        members.append((member, parts))
    return members


def _check_members(
    members: list[_Member], root: tuple[str, ...], sizes: dict[str, int], archive: Path
) -> None:
    """Refuse a file the bundle does not hold (or at another size) and a directory that
    holds no file it does."""
    wanted: set[str] = set()
    for member, parts in members:
        if member.isdir():
            continue
        relative = parts[len(root) :] if parts[: len(root)] == root else ()
        size = _allowed_size(relative, sizes) if relative else None
        if size is None:
            raise BundleError(
                f"{archive}: member {member.name!r} is not a file the bundle's manifest lists"
            )
        if size == -1 and member.size > MAX_BUNDLE_FILE:
            raise BundleError(
                f"{archive}: member {member.name!r} is larger than {MAX_BUNDLE_FILE} bytes"
            )
        if size >= 0 and member.size != size:
            raise BundleError(
                f"{archive}: member {member.name!r} is {member.size} bytes, the manifest "
                f"lists {size}"
            )
        for depth in range(1, len(parts)):
            wanted.add("/".join(parts[:depth]).casefold())
    for member, parts in members:
        if member.isdir() and "/".join(parts).casefold() not in wanted:
            raise BundleError(f"{archive}: member {member.name!r} is a directory of no listed file")


def _extract_member(
    tar: tarfile.TarFile, member: tarfile.TarInfo, path: Path, archive: Path
) -> None:
    """Write the checked ``member`` at ``path``: a directory, or exactly its listed bytes."""
    if member.isdir():
        path.mkdir(parents=True, exist_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    source = tar.extractfile(member)
    if source is None:  # pragma: no cover - isreg() members always have data
        raise BundleError(f"{archive}: member {member.name!r} has no data")
    with source, path.open("xb") as out:
        left = member.size
        while left > 0:
            chunk = source.read(min(CHUNK_SIZE, left))
            if not chunk:
                raise BundleError(f"{archive}: member {member.name!r} is truncated")
            out.write(chunk)
            left -= len(chunk)


@dataclass(frozen=True, slots=True)
class OpenedBundle:
    """A bundle (or fetch destination) ready to read from ``root``.

    ``archive`` is the tar it came from, if any; ``is_bundle`` says whether ``bundle.json``
    is there (else it is a plain fetch destination, read through ``manifest_path``).
    """

    root: Path
    manifest_path: Path
    is_bundle: bool
    archive: Path | None = None

    def display(self, relative: str) -> str:
        """How to name a file of the bundle in a message."""
        if self.archive is not None:
            return f"{self.archive}:{relative}"
        return str(self.root / relative)


def _from_directory(directory: Path, archive: Path | None) -> OpenedBundle:
    if (directory / BUNDLE_FILE).is_file():
        return OpenedBundle(directory, directory / MANIFEST_FILE, True, archive)
    if (directory / MANIFEST_FILE).is_file():
        return OpenedBundle(directory, directory / MANIFEST_FILE, False, archive)
    where = archive if archive is not None else directory
    raise BundleError(f"{where}: neither a bundle ({BUNDLE_FILE}) nor a fetch destination")


@contextlib.contextmanager
def open_bundle(path: Path) -> Iterator[OpenedBundle]:
    """Open a bundle directory or tar, a fetch destination, or a manifest file.

    A tar is extracted (see :func:`extract_tar`) into a temporary directory that is removed
    when the block ends; its bundle is at the top or in its one top-level directory.
    """
    if path.is_dir():
        yield _from_directory(path, None)
        return
    if not path.is_file():
        raise InputError(f"{path}: no such file or directory")
    if not tarfile.is_tarfile(path):
        yield OpenedBundle(path.parent, path, False, None)
        return
    scratch = Path(tempfile.mkdtemp(prefix="fetchplan-bundle-"))
    try:
        extract_tar(path, scratch)
        entries = list(scratch.iterdir())
        root = scratch
        if not (scratch / BUNDLE_FILE).exists() and len(entries) == 1 and entries[0].is_dir():
            root = entries[0]
        opened = _from_directory(root, path)
        if not opened.is_bundle:
            raise BundleError(f"{path}: the archive holds no {BUNDLE_FILE}")
        yield opened
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
