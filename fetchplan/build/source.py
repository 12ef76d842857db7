"""An sdist as a build frontend sees it: its build system and its unpacked source tree.

:func:`parse_build_system` is pure: the text of ``pyproject.toml`` (or its absence) in, the
build requirements and backend out, with the defaults of PEP 517/518 (no ``[build-system]``:
``setuptools>=40.8.0`` and the ``setuptools.build_meta:__legacy__`` backend).
:func:`read_build_system` reads that file from the archive without unpacking anything;
:func:`unpack_sdist` writes the archive's regular files and directories under a directory and
refuses, before writing, any member that is a link or device or whose name could escape it.
"""

from __future__ import annotations

import io
import logging
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

from packaging.requirements import InvalidRequirement, Requirement

from fetchplan._fs import CHUNK_SIZE
from fetchplan._parse import load_toml
from fetchplan.build.errors import BuildError
from fetchplan.errors import FileFormatError

__all__ = [
    "DEFAULT_REQUIRES",
    "LEGACY_BACKEND",
    "MAX_UNPACKED_BYTES",
    "BuildSystem",
    "parse_build_system",
    "read_build_system",
    "unpack_sdist",
]

log = logging.getLogger(__name__)

DEFAULT_REQUIRES = ("setuptools>=40.8.0",)
"""PEP 518's requirements for a project without ``[build-system]`` (or without pyproject)."""
LEGACY_BACKEND = "setuptools.build_meta:__legacy__"
"""PEP 517's backend for a project that names none."""
MAX_UNPACKED_BYTES = 4 * 1024**3
"""An sdist unpacking to more than this is refused (a real one is far smaller; a bomb is not)."""
_MAX_PYPROJECT_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class BuildSystem:
    """What building a source tree needs: requirements for its environment, and its backend."""

    requires: tuple[Requirement, ...]
    backend: str
    backend_path: tuple[str, ...] = ()
    declared: bool = True
    """False when the defaults stand in for a missing ``[build-system]`` table."""


def parse_build_system(text: str | None, where: str) -> BuildSystem:
    """The build system ``pyproject.toml`` (``text``; None when absent) declares.

    Raises :class:`BuildError` naming ``where`` and the field for invalid TOML, a table
    without ``requires``, or a requirement that does not parse.
    """
    default = BuildSystem(
        requires=tuple(Requirement(r) for r in DEFAULT_REQUIRES),
        backend=LEGACY_BACKEND,
        declared=False,
    )
    if text is None:
        return default
    try:
        document = load_toml(text, where)
    except FileFormatError as exc:
        raise BuildError(f"{where}: {exc.problems[0].message}") from None
    table = document.get("build-system")
    if table is None:
        return default
    if not isinstance(table, dict):
        raise BuildError(f"{where}: build-system: expected a table")
    raw = table.get("requires")
    if not isinstance(raw, list) or not all(isinstance(r, str) for r in raw):
        raise BuildError(f"{where}: build-system.requires: expected a list of requirement strings")
    requires = []
    for i, text_req in enumerate(raw):
        try:
            requires.append(Requirement(text_req))
        except InvalidRequirement as exc:
            raise BuildError(f"{where}: build-system.requires[{i}]: {exc}") from None
    backend = table.get("build-backend", LEGACY_BACKEND)
    if not isinstance(backend, str) or not backend.strip():
        raise BuildError(f"{where}: build-system.build-backend: expected a module name")
    path: Any = table.get("backend-path", [])
    if not isinstance(path, list) or not all(isinstance(p, str) for p in path):
        raise BuildError(f"{where}: build-system.backend-path: expected a list of paths")
    return BuildSystem(requires=tuple(requires), backend=backend, backend_path=tuple(path))


def _top_directory(names: list[str], filename: str) -> str:
    tops = {PurePosixPath(n).parts[0] for n in names if PurePosixPath(n).parts}
    if len(tops) != 1:
        found = ", ".join(sorted(tops)[:5]) or "none"
        raise BuildError(f"{filename}: expected one top-level directory, found {found}")
    return tops.pop()


def _project_prefix(names: list[str], filename: str, subdirectory: str | None) -> str:
    """Where the project lies among the archive's ``names``: ``top/`` for an sdist; with a
    ``subdirectory``, below the one top-level directory all members share (as pip strips it)
    or below the archive's root when there is none, and the subdirectory must be there."""
    if subdirectory is None:
        return _top_directory(names, filename) + "/"
    parts = [PurePosixPath(n).parts for n in names if PurePosixPath(n).parts]
    tops = {p[0] for p in parts}
    shared = len(tops) == 1 and any(len(p) > 1 for p in parts)
    prefix = (tops.pop() + "/" if shared else "") + subdirectory + "/"
    if not any(n.startswith(prefix) for n in names):
        raise BuildError(f"{filename}: has no directory {subdirectory}")
    return prefix


_READ_ERRORS = (OSError, tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error)


@contextmanager
def _archive_members(archive: Path, filename: str) -> Iterator[list[tuple[str, int, int, Any]]]:
    """(name, unix mode, size, handle key) of every member, with the archive kept open.

    Yields inside the open archive so :func:`_open_member` can read a member by its key.
    """
    with ExitStack() as stack:
        members: list[tuple[str, int, int, Any]]
        try:
            if filename.endswith(".zip"):
                zf = stack.enter_context(zipfile.ZipFile(archive))
                members = [
                    (info.filename.rstrip("/"), _zip_mode(info), info.file_size, (zf, info))
                    for info in zf.infolist()
                ]
            else:
                # A plain .tar is a source tree's archive (fetchplan._sourcetree).
                mode = "r:" if filename.endswith(".tar") else "r:gz"
                tf = stack.enter_context(tarfile.open(archive, mode))  # type: ignore[call-overload]
                members = [(m.name, _tar_mode(m), m.size, (tf, m)) for m in tf.getmembers()]
        except _READ_ERRORS as exc:
            raise BuildError(f"{filename}: cannot read the sdist: {exc}") from None
        yield members


def _zip_mode(info: zipfile.ZipInfo) -> int:
    mode = info.external_attr >> 16
    if info.is_dir():
        return stat.S_IFDIR | (stat.S_IMODE(mode) or 0o755)
    if stat.S_IFMT(mode) == 0:
        return stat.S_IFREG | (stat.S_IMODE(mode) or 0o644)
    return mode


def _tar_mode(member: tarfile.TarInfo) -> int:
    if member.isdir():
        return stat.S_IFDIR | member.mode
    if member.isreg():
        return stat.S_IFREG | member.mode
    # Links, devices, FIFOs: a type the unpacker refuses.
    return stat.S_IFLNK if (member.issym() or member.islnk()) else stat.S_IFIFO


def _open_member(key: Any) -> IO[bytes]:
    container, info = key
    if isinstance(container, zipfile.ZipFile):
        opened: IO[bytes] = container.open(info)
        return opened
    handle: IO[bytes] | None = container.extractfile(info)
    if handle is None:  # pragma: no cover - regular members always have data
        return io.BytesIO(b"")
    return handle


def read_build_system(archive: Path, filename: str, subdirectory: str | None = None) -> BuildSystem:
    """The build system of the sdist at ``archive`` (``filename`` names it in errors).

    Reads ``<top>/pyproject.toml`` (``<top>/<subdirectory>/pyproject.toml``, see
    :func:`unpack_sdist`) in memory; nothing is extracted.
    """
    with _archive_members(archive, filename) as members:
        prefix = _project_prefix([m[0] for m in members], filename, subdirectory)
        wanted = f"{prefix}pyproject.toml"
        for name, mode, size, key in members:
            if name != wanted or not stat.S_ISREG(mode):
                continue
            if size > _MAX_PYPROJECT_BYTES:
                raise BuildError(f"{filename}: pyproject.toml is larger than it could be")
            try:
                with _open_member(key) as handle:
                    data = handle.read(_MAX_PYPROJECT_BYTES + 1)
            except _READ_ERRORS as exc:
                raise BuildError(f"{filename}: cannot read {wanted}: {exc}") from None
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                raise BuildError(f"{filename}: pyproject.toml is not UTF-8") from None
            return parse_build_system(text, f"{filename}: {wanted}")
    return parse_build_system(None, filename)


def _member_problem(name: str, mode: int) -> str | None:
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        return "is not a regular file or directory"
    if "\\" in name or name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return "has an absolute or Windows-style path"
    if any(part in ("", "..") for part in name.split("/")):
        return "has an empty or '..' path component"
    return None


def unpack_sdist(archive: Path, filename: str, into: Path, subdirectory: str | None = None) -> Path:
    """Unpack the sdist at ``archive`` under the (empty) directory ``into``; return its tree.

    With ``subdirectory`` (a relative POSIX path, already checked), the tree returned is that
    directory: below the archive's one top-level directory when all its members share one, as
    pip strips it, else below the archive's root.

    Every member is checked before anything is written: only regular files and directories
    with relative names and no ``..`` component, at most :data:`MAX_UNPACKED_BYTES` in all.
    Files keep only their executable bit. Raises :class:`BuildError` naming the member.
    """
    with _archive_members(archive, filename) as members:
        prefix = _project_prefix([m[0] for m in members], filename, subdirectory)
        total = 0
        for name, mode, size, _key in members:
            problem = _member_problem(name, mode)
            if problem is not None:
                raise BuildError(f"{filename}: member {name!r} {problem}; refusing to unpack")
            total += size
        if total > MAX_UNPACKED_BYTES:
            raise BuildError(f"{filename}: unpacks to {total} bytes, more than allowed")
        for name, mode, _size, key in members:
            path = into.joinpath(*name.split("/"))
            if stat.S_ISDIR(mode):
                path.mkdir(parents=True, exist_ok=True)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            with _open_member(key) as source, path.open("xb") as out:
                while True:
                    try:
                        chunk = source.read(CHUNK_SIZE)
                    except _READ_ERRORS as exc:
                        why = f"cannot read member {name!r}: {exc}"
                        raise BuildError(f"{filename}: {why}") from None
                    if not chunk:
                        break
                    out.write(chunk)
            path.chmod(0o755 if mode & 0o111 else 0o644)
    return into.joinpath(*prefix.rstrip("/").split("/"))
