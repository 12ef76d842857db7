"""Extracting a verified wheel into a private staging directory with pypa/installer.

Every member is hashed while it is extracted and compared with its RECORD row; nothing reaches
the environment here. The staging directory mirrors the final absolute paths (installer's
``destdir``), so committing is a rename per file (:mod:`fetchplan.install.environment`).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import logging
import os
import posixpath
import stat
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, BinaryIO, cast

from installer import install
from installer.destinations import SchemeDictionaryDestination
from installer.records import Hash, RecordEntry
from installer.sources import WheelSource
from installer.utils import Scheme, get_launcher_kind

from fetchplan._fs import CHUNK_SIZE
from fetchplan.install.errors import InstallError, UnsafeWheel
from fetchplan.install.interpreter import TargetInterpreter
from fetchplan.install.prestage import PreFile, Prestager, staged_path
from fetchplan.install.wheel import OpenWheel, RecordRow

__all__ = ["INSTALLER_NAME", "StagedFile", "StagedWheel", "stage_wheel"]

log = logging.getLogger(__name__)

INSTALLER_NAME = "fetchplan"
# Files of the .dist-info that the installer writes, never the wheel (PEP 376, PEP 610).
_GENERATED = ("INSTALLER", "REQUESTED", "direct_url.json")


@dataclass(frozen=True, slots=True)
class StagedFile:
    """A file extracted to ``staged`` that belongs at ``final`` (in scheme directory ``root``)."""

    scheme: str
    root: Path
    final: Path
    staged: Path


@dataclass(frozen=True, kw_only=True, slots=True)
class StagedWheel:
    """A wheel fully extracted and verified in staging, ready to be moved into place."""

    name: str
    version: str
    files: tuple[StagedFile, ...]

    def python_files(self) -> list[Path]:
        """Final paths of the installed modules, for byte-compiling."""
        return [
            f.final
            for f in self.files
            if f.scheme in ("purelib", "platlib") and f.final.suffix == ".py"
        ]


class _CheckedStream(io.RawIOBase):
    """Reads a member while hashing it; at its end, compares hash and size with RECORD.

    When the destination writes the member's bytes unchanged and hashes them anyway with
    RECORD's algorithm (:meth:`_StagingDestination.write_to_fs`), it calls :meth:`defer_hash`
    first and hands the digest to :meth:`check_digest` at the end: one hash per member
    instead of two. Only :attr:`verified` says the member matched its RECORD row.
    """

    def __init__(self, open_raw: Callable[[], IO[bytes]], row: RecordRow, wheel: str) -> None:
        super().__init__()
        # Opened on the first read: a member taken as prestaged is never read.
        self._open_raw = open_raw
        self._raw_stream: IO[bytes] | None = None
        self.row = row
        self._wheel = wheel
        self._expected = base64.urlsafe_b64decode(row.digest + "=" * (-len(row.digest) % 4))
        self.verified = False
        self._deferred = False
        self._complete = False
        self._reset()

    @property
    def _raw(self) -> IO[bytes]:
        if self._raw_stream is None:
            self._raw_stream = self._open_raw()
        return self._raw_stream

    def _reset(self) -> None:
        self._digest = None if self._deferred else hashlib.new(self.row.algorithm)
        self._size = 0
        self._complete = False

    def claim(self, pre: PreFile) -> bool:
        """Take a prestaged copy instead of reading: True (and verified) when its sha256 and
        size are RECORD's for this member."""
        if self._size or self.row.algorithm != "sha256":
            return False
        if pre.size != self.row.size or pre.sha256 != self._expected:
            return False
        self._complete = True
        self.verified = True
        return True

    def defer_hash(self) -> None:
        """The reader hashes what it reads and calls :meth:`check_digest` at the end."""
        if self._size:
            raise io.UnsupportedOperation("the hash can only be deferred before reading")
        self._deferred = True
        self._digest = None

    def check_digest(self, digest: bytes) -> None:
        """Compare the reader's digest of the whole member with RECORD's."""
        if not (self._deferred and self._complete):
            raise UnsafeWheel(self._wheel, self.row.path, "not read to its end")
        if digest != self._expected:
            raise UnsafeWheel(self._wheel, self.row.path, "hash or size differs from RECORD")
        self.verified = True

    def _take(self, data: bytes) -> bytes:
        self._size += len(data)
        if self._size > self.row.size:
            raise UnsafeWheel(self._wheel, self.row.path, "longer than RECORD says")
        if self._digest is not None:
            self._digest.update(data)
        return data

    def _finish(self) -> None:
        if self._size != self.row.size or (
            self._digest is not None and self._digest.digest() != self._expected
        ):
            raise UnsafeWheel(self._wheel, self.row.path, "hash or size differs from RECORD")
        self._complete = True
        if self._digest is not None:
            self.verified = True

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        data = self._raw.read(-1 if size is None else size)
        self._take(data)
        if size is None or size < 0 or (size > 0 and not data):
            self._finish()
        return data

    def readline(self, size: int | None = -1) -> bytes:
        return self._take(self._raw.readline(-1 if size is None else size))

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        # installer's shebang fixer rewinds to re-read the first line; only that is needed.
        if offset != 0 or whence != os.SEEK_SET:
            raise io.UnsupportedOperation("only rewinding is supported")
        self._raw.seek(0)
        self._reset()
        return 0

    def close(self) -> None:
        if self._raw_stream is not None:
            self._raw_stream.close()
        super().close()


class _CheckedSource(WheelSource):
    """installer's view of an :class:`OpenWheel`: members as hash-checking streams."""

    def __init__(self, opened: OpenWheel) -> None:
        layout = opened.layout
        distribution, _, version = layout.dist_info.removesuffix(".dist-info").rpartition("-")
        super().__init__(distribution=distribution, version=version)
        self._opened = opened
        self.streams: list[_CheckedStream] = []

    @property
    def dist_info_dir(self) -> str:
        return self._opened.layout.dist_info

    @property
    def data_dir(self) -> str:
        return self._opened.layout.data_dir

    @property
    def dist_info_filenames(self) -> list[str]:
        prefix = self.dist_info_dir + "/"
        return [
            name[len(prefix) :]
            for name in self._opened.zipfile.namelist()
            if name.startswith(prefix) and not name.endswith("/")
        ]

    def read_dist_info(self, filename: str) -> str:
        data = self._opened.zipfile.read(posixpath.join(self.dist_info_dir, filename))
        return data.decode("utf-8")

    def validate_record(self) -> None:
        """Done by :func:`fetchplan.install.wheel.inspect_wheel` and while extracting."""

    def get_contents(self) -> Iterator[tuple[tuple[str, str, str], BinaryIO, bool]]:
        layout = self._opened.layout
        ours = {f"{layout.dist_info}/{name}" for name in _GENERATED}
        for info in layout.members:
            path = info.filename
            if "__pycache__" in path.split("/")[:-1] or path in ours:
                # Bytecode is the target interpreter's to write (installer would skip it too);
                # the install metadata files are ours to write.
                log.warning("%s: skipping %s", self._opened.spec.filename, path)
                continue
            row = layout.record[path]
            mode = info.external_attr >> 16
            executable = bool(mode and stat.S_ISREG(mode) and mode & 0o111)
            with _CheckedStream(
                functools.partial(self._opened.zipfile.open, info),
                row,
                self._opened.spec.filename,
            ) as s:
                self.streams.append(s)
                elements = (path, f"{row.algorithm}={row.digest}", str(row.size))
                yield elements, cast(BinaryIO, s), executable


_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)


@dataclass
class _StagingDestination(SchemeDictionaryDestination):
    """installer's scheme destination redirected into staging, remembering each file.

    Writes each file as installer would (refusing to overwrite, hashing what it writes for
    the new RECORD, executable bits copied from the read bits), with fewer system calls per
    file: ``O_EXCL`` instead of a look before creating, each directory made once. A member
    written unchanged is checked against the wheel's RECORD with that same hash.
    """

    pyc_tag: str | None = None
    staged: list[StagedFile] = field(default_factory=list)
    prestaged: Prestager | None = None
    claimed: set[str] = field(default_factory=set)
    _made: set[str] = field(default_factory=set)
    _roots: dict[str, Path] = field(default_factory=dict)

    def write_to_fs(
        self, scheme: Scheme, path: str, stream: BinaryIO, is_executable: bool
    ) -> RecordEntry:
        assert self.destdir is not None
        final, staged = staged_path(self.destdir, self.scheme_dict[scheme], path)
        parent = os.path.dirname(staged)  # noqa: PTH120
        if parent not in self._made:
            os.makedirs(parent, exist_ok=True)  # noqa: PTH103
            self._made.add(parent)
        if self.prestaged is not None and staged in self.prestaged.written:
            entry = self._take_prestaged(
                scheme, path, final=final, staged=staged, stream=stream, executable=is_executable
            )
            if entry is not None:
                return entry
            # Not taken: extracted from the archive instead, and no longer the prestager's.
            os.unlink(staged)  # noqa: PTH108
            self.prestaged.written.discard(staged)
        checked = stream if isinstance(stream, _CheckedStream) else None
        if checked is not None and checked.row.algorithm == self.hash_algorithm:
            checked.defer_hash()
        else:
            checked = None
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
        digest = hasher.digest()
        if checked is not None:
            checked.check_digest(digest)
        return self._record(scheme, path, final=final, staged=staged, digest=digest, size=size)

    def _take_prestaged(
        self,
        scheme: Scheme,
        path: str,
        *,
        final: str,
        staged: str,
        stream: BinaryIO,
        executable: bool,
    ) -> RecordEntry | None:
        """The member as prestaged, when that copy is whole and RECORD vouches for its bytes."""
        assert self.prestaged is not None
        pre = self.prestaged.files.get(staged)
        if (
            pre is None
            or self.hash_algorithm != "sha256"
            or not isinstance(stream, _CheckedStream)
            or not stream.claim(pre)
        ):
            return None
        if executable:
            mode = os.stat(staged).st_mode  # noqa: PTH116
            os.chmod(staged, mode | ((mode & 0o444) >> 2))  # noqa: PTH101
        self.claimed.add(staged)
        return self._record(
            scheme, path, final=final, staged=staged, digest=pre.sha256, size=pre.size
        )

    def _record(
        self, scheme: Scheme, path: str, *, final: str, staged: str, digest: bytes, size: int
    ) -> RecordEntry:
        root = self._roots.get(scheme)
        if root is None:
            root = self._roots[scheme] = Path(self.scheme_dict[scheme])
        self.staged.append(StagedFile(str(scheme), root, Path(final), Path(staged)))
        encoded = base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")
        return RecordEntry(path, Hash(self.hash_algorithm, encoded), size)

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


def stage_wheel(
    opened: OpenWheel,
    target: TargetInterpreter,
    staging: Path,
    *,
    compile: bool,
    prestaged: Prestager | None = None,
) -> StagedWheel:
    """Extract ``opened`` for ``target`` into the empty directory ``staging``.

    Writes console scripts for ``target.executable``, ``INSTALLER`` (``fetchplan``),
    ``REQUESTED`` when the wheel was requested, and a RECORD with hashes (and the bytecode
    files to come when ``compile``). Raises :class:`UnsafeWheel` when a member's hash or size
    differs from its RECORD row; ``staging`` may then hold partial files for the caller to remove.
    """
    spec = opened.spec
    kind = "posix" if target.os_name != "nt" else get_launcher_kind()
    destination = _StagingDestination(
        scheme_dict=target.scheme(spec.name),
        interpreter=target.executable,
        script_kind=kind,
        destdir=str(staging),
        pyc_tag=target.cache_tag if compile else None,
        prestaged=prestaged,
    )
    source = _CheckedSource(opened)
    metadata = {"INSTALLER": f"{INSTALLER_NAME}\n".encode()}
    if spec.requested:
        metadata["REQUESTED"] = b""
    try:
        install(source, destination, metadata)
    except UnsafeWheel:
        raise
    except (zipfile.BadZipFile, EOFError, ValueError, FileExistsError) as exc:
        # Bad CRC or truncated data, a path installer refuses, a member colliding with the
        # files we generate: all are the wheel's fault.
        raise UnsafeWheel(spec.filename, None, f"cannot extract: {exc}") from exc
    except OSError as exc:
        raise InstallError(f"{spec.path}: cannot extract into {staging}: {exc}") from exc
    unread = [s for s in source.streams if not s.verified]
    if unread:
        raise InstallError(f"{spec.path}: {len(unread)} members were not read to their end")
    if prestaged is not None:
        # Whatever staging did not take must not move into the environment with its directory.
        dropped = prestaged.discard_unclaimed(destination.claimed)
        log.debug(
            "%s: %d members taken as prestaged, %d prestaged files dropped",
            spec.filename,
            len(destination.claimed),
            dropped,
        )
    return StagedWheel(name=spec.name, version=spec.version, files=tuple(destination.staged))
