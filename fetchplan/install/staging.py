"""Installing a stored wheel into a private staging directory with pypa/installer's pieces.

The files come from the wheel store (:mod:`fetchplan.install.store`), where they were checked
against the wheel's RECORD when the entry was filled; here each is linked (or copied, see
:mod:`fetchplan.install.link`) into staging. What belongs to one environment is written, never
linked: the console scripts (they name its interpreter), the ``.data/scripts`` files (their
``#!python`` names it too), ``INSTALLER``, ``REQUESTED`` and a RECORD, as pip writes them.
Nothing reaches the environment here. The staging directory mirrors the final paths relative
to the environment's prefix (absolute ones below ``.abs/`` for a scheme outside it), so
committing is a rename per file (:mod:`fetchplan.install.environment`).
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import os
import posixpath
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from installer.destinations import SchemeDictionaryDestination
from installer.records import Hash, RecordEntry
from installer.utils import Scheme, get_launcher_kind

from fetchplan._fs import CHUNK_SIZE
from fetchplan.install.errors import InstallError, UnsafeWheel
from fetchplan.install.interpreter import TargetInterpreter
from fetchplan.install.link import Linker
from fetchplan.install.store import StoreEntry

__all__ = ["INSTALLER_NAME", "StagedFile", "StagedWheel", "link_wheel"]

log = logging.getLogger(__name__)

INSTALLER_NAME = "fetchplan"


@dataclass(frozen=True, slots=True)
class StagedFile:
    """A file placed at ``staged`` that belongs at ``final`` (in scheme directory ``root``).

    Plain strings, absolute and normalised: thousands of files are checked and moved by
    string operations, without a ``Path`` each.
    """

    scheme: str
    root: str
    final: str
    staged: str


@dataclass(frozen=True, kw_only=True, slots=True)
class StagedWheel:
    """A wheel fully placed in staging, ready to be moved into place."""

    name: str
    version: str
    files: tuple[StagedFile, ...]

    def python_files(self) -> list[Path]:
        """Final paths of the installed modules, for byte-compiling."""
        return [
            Path(f.final)
            for f in self.files
            if f.scheme in ("purelib", "platlib") and f.final.endswith(".py")
        ]


_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)


@dataclass
class _StagingDestination(SchemeDictionaryDestination):
    """installer's scheme destination redirected into staging, remembering each file.

    Writes each generated file as installer would (refusing to overwrite, hashing what it
    writes for the new RECORD), with fewer system calls per file: ``O_EXCL`` instead of a look
    before creating, each directory made once. :meth:`link_file` places a store file instead,
    with the hash the store recorded for it.
    """

    linker: Linker = field(default_factory=Linker)
    prefix: str = "/"
    """The environment's prefix, with a trailing separator."""
    pyc_tag: str | None = None
    staged: list[StagedFile] = field(default_factory=list)
    _made: set[str] = field(default_factory=set)
    _roots: dict[str, str] = field(default_factory=dict)
    _bases: dict[str, tuple[str, str]] = field(default_factory=dict)

    def _locate(self, scheme: Scheme, path: str) -> tuple[str, str]:
        """The final path of ``path`` in ``scheme``, and where staging puts it."""
        bases = self._bases.get(scheme)
        if bases is None:
            bases = self._bases[scheme] = self._base(scheme)
        final_base, staged_base = bases
        if path.startswith("/") or "/." in f"/{path}" or "//" in path or "\\" in path:
            # Not plainly relative (the store's and installer's paths always are): normalise.
            final = os.path.abspath(os.path.join(final_base, path))  # noqa: PTH100, PTH118
            if not final.startswith(final_base):
                raise ValueError(f"Attempting to write {path} outside of the target directory")
            return final, staged_base + final[len(final_base) :]
        return final_base + path, staged_base + path

    def _base(self, scheme: Scheme) -> tuple[str, str]:
        """The scheme's directory and its place in staging, each with a trailing separator:
        relative to the prefix (fewer directories to make and remove than below the whole
        absolute path), or below ``.abs/`` when outside it."""
        assert self.destdir is not None
        root = os.path.join(os.path.abspath(self.scheme_dict[scheme]), "")  # noqa: PTH100, PTH118
        if root.startswith(self.prefix):
            staged = os.path.join(self.destdir, root[len(self.prefix) :])  # noqa: PTH118
        else:
            rest = os.path.splitdrive(root)[1].lstrip("\\/")
            staged = os.path.join(self.destdir, ".abs", rest)  # noqa: PTH118
        return root, staged

    def _path_with_destdir(self, scheme: Scheme, path: str) -> Path:
        # installer's write_script finds the script it wrote through this.
        return Path(self._locate(scheme, path)[1])

    def _paths(self, scheme: Scheme, path: str) -> tuple[str, str]:
        """:meth:`_locate`, having made the staged file's directory."""
        final, staged = self._locate(scheme, path)
        parent = os.path.dirname(staged)  # noqa: PTH120
        if parent not in self._made:
            os.makedirs(parent, exist_ok=True)  # noqa: PTH103
            self._made.add(parent)
        return final, staged

    def write_to_fs(
        self, scheme: Scheme, path: str, stream: BinaryIO, is_executable: bool
    ) -> RecordEntry:
        final, staged = self._paths(scheme, path)
        hasher = hashlib.new(self.hash_algorithm)
        size = 0
        fd = os.open(staged, _CREATE_FLAGS, 0o666)
        try:
            while buf := stream.read(CHUNK_SIZE):
                hasher.update(buf)
                size += len(buf)
                view = memoryview(buf)
                while view:
                    view = view[os.write(fd, view) :]
            if is_executable:
                mode = os.fstat(fd).st_mode
                os.fchmod(fd, mode | ((mode & 0o444) >> 2))
        finally:
            os.close(fd)
        encoded = base64.urlsafe_b64encode(hasher.digest()).decode("ascii").rstrip("=")
        return self._record(scheme, path, final=final, staged=staged, digest=encoded, size=size)

    def link_file(
        self, scheme: Scheme, path: str, *, source: str, sha256: str, size: int
    ) -> RecordEntry:
        """Place the store file ``source`` (of that sha256 and size) at ``path`` in ``scheme``."""
        final, staged = self._paths(scheme, path)
        self.linker.link(source, staged)
        return self._record(scheme, path, final=final, staged=staged, digest=sha256, size=size)

    def _record(
        self, scheme: Scheme, path: str, *, final: str, staged: str, digest: str, size: int
    ) -> RecordEntry:
        root = self._roots.get(scheme)
        if root is None:
            root = self._roots[scheme] = os.path.abspath(self.scheme_dict[scheme])  # noqa: PTH100
        self.staged.append(StagedFile(str(scheme), root, final, staged))
        return RecordEntry(path, Hash(self.hash_algorithm, digest), size)

    def finalize_installation(
        self, scheme: Scheme, record_file_path: str, records: Iterable[tuple[Scheme, RecordEntry]]
    ) -> None:
        rows = list(records)
        if self.pyc_tag is not None:
            # As pip does, RECORD lists the bytecode we are about to compile, so that an
            # uninstall removes it.
            for file_scheme, record in list(rows):
                if file_scheme in ("purelib", "platlib") and record.path.endswith(".py"):
                    head, tail = posixpath.split(record.path)
                    pyc = posixpath.join(head, "__pycache__", f"{tail[:-3]}.{self.pyc_tag}.pyc")
                    rows.append((file_scheme, RecordEntry(pyc, None, None)))
        super().finalize_installation(scheme, record_file_path, rows)


def link_wheel(
    entry: StoreEntry,
    target: TargetInterpreter,
    staging: Path,
    *,
    requested: bool,
    compile: bool,
    linker: Linker,
    direct_url: bytes | None = None,
) -> StagedWheel:
    """Place the stored wheel ``entry`` for ``target`` into the empty directory ``staging``.

    Links every file but the ``.data/scripts`` ones (written with their shebang fixed), then
    writes console scripts for ``target.executable``, ``INSTALLER`` (``fetchplan``),
    ``REQUESTED`` when the wheel was requested, and a RECORD with hashes (and the bytecode
    files to come when ``compile``), in the order pypa/installer's ``install`` does. Raises
    :class:`UnsafeWheel` when a file collides with another (a console script named as a
    file of the wheel); ``staging`` may then hold partial files for the caller to remove.
    """
    kind = "posix" if target.os_name != "nt" else get_launcher_kind()
    destination = _StagingDestination(
        scheme_dict=target.scheme(entry.name),
        interpreter=target.executable,
        script_kind=kind,
        destdir=str(staging),
        linker=linker,
        prefix=os.path.join(os.path.abspath(target.prefix), ""),  # noqa: PTH100, PTH118
        pyc_tag=target.cache_tag if compile else None,
    )
    root: Scheme = entry.root_scheme  # type: ignore[assignment]
    records: list[tuple[Scheme, RecordEntry]] = []
    metadata = {"INSTALLER": f"{INSTALLER_NAME}\n".encode()}
    if requested:
        metadata["REQUESTED"] = b""
    if direct_url is not None:
        metadata["direct_url.json"] = direct_url
    try:
        for script in entry.scripts:
            record = destination.write_script(
                name=script.name, module=script.module, attr=script.attr, section=script.section
            )
            records.append((Scheme("scripts"), record))
        # entry.source(item), joined once: the members' paths are the store's own.
        files_dir = os.path.join(entry.files_dir, "")  # noqa: PTH118
        for item in entry.files:
            scheme: Scheme = item.scheme  # type: ignore[assignment]
            if scheme == "scripts":
                with open(files_dir + item.path, "rb") as stream:  # noqa: PTH123
                    record = destination.write_file(scheme, item.rel, stream, item.executable)
            else:
                source = files_dir + item.path
                record = destination.link_file(
                    scheme, item.rel, source=source, sha256=item.sha256, size=item.size
                )
            records.append((scheme, record))
        for filename, contents in metadata.items():
            with io.BytesIO(contents) as stream:
                path = posixpath.join(entry.dist_info, filename)
                records.append((root, destination.write_file(root, path, stream, False)))
        record_path = posixpath.join(entry.dist_info, "RECORD")
        records.append((root, RecordEntry(record_path, None, None)))
        destination.finalize_installation(root, record_path, records)
    except (ValueError, FileExistsError) as exc:
        # A path installer refuses, a file colliding with a script or with the files we
        # generate: all are the wheel's fault.
        raise UnsafeWheel(entry.filename, None, f"cannot extract: {exc}") from exc
    except FileNotFoundError as exc:
        raise InstallError(
            f"{entry.directory}: store entry of {entry.filename} lacks {exc.filename}: "
            "run `fetchplan cache verify`"
        ) from exc
    except OSError as exc:
        raise InstallError(f"{entry.filename}: cannot install into {staging}: {exc}") from exc
    log.debug("%s: %d files placed (%s)", entry.filename, len(entry.files), dict(linker.used))
    return StagedWheel(name=entry.name, version=entry.version, files=tuple(destination.staged))
