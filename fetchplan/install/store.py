"""The wheel store: every wheel installed once, unpacked, in the cache, shared by every environment.

Layout: ``<cache>/store/v1/<aa>/<sha256>/`` per wheel, named by the sha256 of the wheel file,
holding ``files/`` (the members, at their archive paths, with their modes) and ``entry.json``
(what installing needs: name, version, ``.dist-info``, each file's scheme, sha256 and size, the
console scripts; schema ``store-entry``).

An entry is filled once, from a wheel verified through its open handle
(:func:`fetchplan.install.wheel.open_wheel`: the manifest's size and sha256, then
:func:`~fetchplan.install.wheel.inspect_wheel`'s checks), each member hashed as it is written
and compared with its RECORD row, in a temporary directory beside the entries that is renamed
into place only when every member matched and the wheel file was not written to meanwhile.
Two processes filling the same entry both do the work; the first rename wins and the other
takes its entry. Readers only ever see whole entries.

An entry is trusted afterwards because of the key (the wheel's sha256, which the manifest
vouches for) and the checks made when it was filled: installing from it reads ``entry.json``
and links the files, hashing nothing. :meth:`WheelStore.verify` (``fetchplan cache verify``)
re-hashes every file against the wheel's RECORD and evicts the entries that changed (a file
edited through a hard link in some environment, a disk that rotted).
"""

from __future__ import annotations

import base64
import contextlib
import csv
import dataclasses
import errno
import hashlib
import json
import logging
import os
import shutil
import stat
import tempfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from installer.utils import parse_metadata_file

from fetchplan._fs import DIR_MODE, TooLarge, copy_hashing, read_chunks
from fetchplan.cache import default_cache_dir
from fetchplan.errors import FieldProblem, FileFormatError
from fetchplan.install.errors import InstallError, UnsafeWheel
from fetchplan.install.prestage import Prestager
from fetchplan.install.wheel import OpenWheel, RecordRow

__all__ = [
    "GENERATED",
    "ScriptSpec",
    "StoreEntry",
    "StoreFile",
    "StoreProblem",
    "WheelStore",
    "default_store_dir",
]

log = logging.getLogger(__name__)

_VERSION = "v1"
_ENTRY = "entry.json"
_FILES = "files"
# Files of the .dist-info that the installer writes, never the wheel (PEP 376, PEP 610).
GENERATED = ("INSTALLER", "REQUESTED", "direct_url.json")
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)

Scheme = Literal["purelib", "platlib", "headers", "scripts", "data"]
_SCHEMES = frozenset(("purelib", "platlib", "headers", "scripts", "data"))


def default_store_dir(cache_dir: Path | None = None) -> Path:
    """The store in ``cache_dir`` (default: the user's fetchplan cache)."""
    return (cache_dir if cache_dir is not None else default_cache_dir()) / "store"


@dataclass(frozen=True, slots=True)
class StoreFile:
    """A member of a stored wheel: where it goes (``scheme``, ``rel`` within it) and its
    sha256 (urlsafe base64, unpadded, as RECORD writes it) and size."""

    path: str
    scheme: Scheme
    rel: str
    sha256: str
    size: int
    executable: bool


@dataclass(frozen=True, slots=True)
class ScriptSpec:
    name: str
    module: str
    attr: str
    section: Literal["console", "gui"]


@dataclass(frozen=True, kw_only=True, slots=True)
class StoreEntry:
    """A whole store entry, as its ``entry.json`` describes it."""

    directory: Path
    sha256: str
    filename: str
    name: str
    version: str
    dist_info: str
    root_scheme: Literal["purelib", "platlib"]
    files: tuple[StoreFile, ...]
    scripts: tuple[ScriptSpec, ...]

    @property
    def files_dir(self) -> Path:
        return self.directory / _FILES

    def source(self, item: StoreFile) -> str:
        """The path of ``item`` in the store."""
        return os.path.join(self.directory, _FILES, item.path)  # noqa: PTH118

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "fetchplan.store-entry",
            "version": 1,
            "sha256": self.sha256,
            "filename": self.filename,
            "name": self.name,
            "project_version": self.version,
            "dist_info": self.dist_info,
            "root_scheme": self.root_scheme,
            "files": [
                [f.path, f.scheme, f.rel, f.sha256, f.size, f.executable] for f in self.files
            ],
            "scripts": [[s.name, s.module, s.attr, s.section] for s in self.scripts],
        }

    @classmethod
    def from_dict(cls, directory: Path, d: dict[str, Any]) -> StoreEntry:
        """The entry ``d`` (valid per the schema) describes; raises :class:`FileFormatError`
        when a row's positions have the wrong types (which the schema cannot say)."""
        where = str(directory / _ENTRY)
        for number, row in enumerate(d["files"]):
            # The schema made each row six strings, integers or booleans.
            path, scheme, rel, sha256, size, executable = row
            if not (
                type(path) is str
                and path
                and scheme in _SCHEMES
                and type(rel) is str
                and rel
                and type(sha256) is str
                and sha256
                and type(size) is int
                and size >= 0
                and type(executable) is bool
            ):
                raise FileFormatError(where, [FieldProblem(f"files.{number}", "not a file row")])
        for number, row in enumerate(d["scripts"]):
            if row[3] not in ("console", "gui"):
                raise FileFormatError(where, [FieldProblem(f"scripts.{number}", "bad section")])
        return cls(
            directory=directory,
            sha256=d["sha256"],
            filename=d["filename"],
            name=d["name"],
            version=d["project_version"],
            dist_info=d["dist_info"],
            root_scheme=d["root_scheme"],
            files=tuple(StoreFile(*row) for row in d["files"]),
            scripts=tuple(ScriptSpec(*row) for row in d["scripts"]),
        )


@dataclass(frozen=True, slots=True)
class StoreProblem:
    """What :meth:`WheelStore.verify` found wrong with an entry (then evicted)."""

    sha256: str
    filename: str
    path: str
    reason: str


def _b64(digest: bytes) -> str:
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


class WheelStore:
    """Unpacked, verified wheels by sha256 under ``root``; safe for several processes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._swept = False

    def entry_dir(self, sha256: str) -> Path:
        return self.root / _VERSION / sha256[:2] / sha256

    def get(self, sha256: str, *, use: bool = True) -> StoreEntry | None:
        """The whole entry for the wheel of ``sha256``, or None (also for an unreadable one).

        With ``use`` the entry is marked used now (its ``entry.json``'s mtime), which is what
        ``cache prune --unused-days`` reads; a store on a read-only disk is read all the same.
        """
        directory = self.entry_dir(sha256)
        from fetchplan.schemas import load_document

        try:
            entry = StoreEntry.from_dict(
                directory, load_document(directory / _ENTRY, "store-entry")
            )
        except FileFormatError as exc:
            if directory.exists():
                log.warning("%s: unreadable store entry, ignored: %s", directory, exc)
            return None
        if entry.sha256 != sha256:
            return None
        if use:
            with contextlib.suppress(OSError):
                os.utime(directory / _ENTRY)
        return entry

    def new_temp(self) -> Path:
        """A new, empty directory in the store to fill an entry in (then :meth:`fill`)."""
        temp = self.root / "tmp"
        try:
            temp.mkdir(parents=True, exist_ok=True)
            if not self._swept:
                self._swept = True
                _sweep(temp)
            return Path(tempfile.mkdtemp(prefix="fill-", dir=temp))
        except OSError as exc:
            raise InstallError(f"{temp}: cannot write to the wheel store: {exc}") from exc

    def fill(self, opened: OpenWheel, *, prestaged: Prestager | None = None) -> StoreEntry:
        """The entry of ``opened`` (verified by ``open_wheel``), filled now if absent.

        ``prestaged`` (finished) unpacked the wheel into ``<temp>/files`` of a
        :meth:`new_temp` directory; a file of it is taken only when its sha256 and size are
        the member's RECORD row, every other file is deleted. Raises :class:`UnsafeWheel`
        when a member differs from RECORD, having added nothing.
        """
        sha256 = opened.spec.sha256
        existing = self.get(sha256)
        temp = prestaged.directory.parent if prestaged is not None else None
        if existing is not None:
            if temp is not None:
                shutil.rmtree(temp, ignore_errors=True)
            return existing
        if temp is None:
            temp = self.new_temp()
        try:
            entry = _extract(opened, temp, prestaged)
            opened.check_unchanged()
            document = entry.to_dict()
            from fetchplan.schemas import validate

            validate(document, "store-entry", _ENTRY)
            # Compact: json's C encoder (an indented document is encoded in Python, a tenth
            # of a second for a wheel of a few thousand files).
            data = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
            # Not fsynced, like the files beside it: the directory appears whole by its
            # rename, and an entry a crash left short is what `cache verify` finds.
            (temp / _ENTRY).write_bytes(data.encode("utf-8"))
            return self._rename_in(temp, sha256, entry)
        finally:
            if temp.exists():
                shutil.rmtree(temp, ignore_errors=True)

    def _rename_in(self, temp: Path, sha256: str, entry: StoreEntry) -> StoreEntry:
        final = self.entry_dir(sha256)
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(temp, DIR_MODE)  # noqa: PTH101 - mkdtemp made it private
            os.rename(temp, final)  # noqa: PTH104
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise InstallError(f"{final}: cannot add to the wheel store: {exc}") from exc
            # Another process filled it first: theirs is as good.
            won = self.get(sha256)
            if won is not None:
                return won
            # What is there cannot be read (a crash left it short): ours replaces it.
            self.evict(sha256)
            try:
                os.rename(temp, final)  # noqa: PTH104
            except OSError as again:
                won = self.get(sha256)
                if won is None:
                    raise InstallError(f"{final}: unreadable store entry in the way") from again
                return won
        log.debug("stored %s as %s (%d files)", entry.filename, sha256, len(entry.files))
        return dataclasses.replace(entry, directory=final)

    def evict(self, sha256: str) -> bool:
        """Remove the entry of ``sha256`` (renamed away first, so no reader sees half of it)."""
        final = self.entry_dir(sha256)
        if not final.exists():
            return False
        gone = self.new_temp()
        try:
            os.rename(final, gone / "evicted")  # noqa: PTH104
        except FileNotFoundError:
            return False
        finally:
            shutil.rmtree(gone, ignore_errors=True)
        return True

    def digests(self) -> Iterator[str]:
        """The sha256 of every entry directory, whole or not, sorted."""
        base = self.root / _VERSION
        if not base.is_dir():
            return
        for fan in sorted(base.iterdir()):
            if fan.is_dir():
                yield from sorted(p.name for p in fan.iterdir())

    def prune(
        self, *, unused_days: float | None = None, now: float | None = None
    ) -> tuple[int, int]:
        """Remove what killed fills left a day or more ago, entries no install can read (no
        whole ``entry.json``) and, with ``unused_days``, entries no install or run has taken
        for that long; return how many files and bytes went.

        An entry is renamed away before it is deleted, so an install that takes it at that
        moment finds it absent (and fills it again) rather than half there."""
        now = time.time() if now is None else now
        files = size = 0
        doomed: list[Path] = []
        temp = self.root / "tmp"
        if temp.is_dir():
            limit = now - _STALE
            doomed.extend(p for p in temp.iterdir() if _mtime(p) < limit)
        for key in self.digests():
            directory = self.entry_dir(key)
            if self.get(key, use=False) is None or (
                unused_days is not None and now - _mtime(directory / _ENTRY) > unused_days * 86400
            ):
                doomed.append(directory)
        for path in doomed:
            counted = _usage(path)
            if path.parent != temp:
                if not self.evict(path.name):
                    continue
            else:
                shutil.rmtree(path, ignore_errors=True)
                if path.exists():
                    continue
            files, size = files + counted[0], size + counted[1]
        return files, size

    def verify(self) -> tuple[int, int, list[StoreProblem]]:
        """Re-hash every entry against its wheel's RECORD; evict those that differ.

        Returns the number of entries and files checked and the problems found (one per
        evicted entry: the first file that differs).
        """
        entries = files = 0
        problems: list[StoreProblem] = []
        for sha256 in self.digests():
            entries += 1
            entry = self.get(sha256, use=False)
            if entry is None:
                problems.append(StoreProblem(sha256, "?", _ENTRY, "missing or unreadable"))
                self.evict(sha256)
                continue
            files += len(entry.files)
            problem = _check_entry(entry)
            if problem is not None:
                problems.append(problem)
                self.evict(sha256)
        return entries, files, problems


_STALE = 24 * 3600.0


def _mtime(path: Path) -> float:
    try:
        return path.lstat().st_mtime
    except OSError:
        return time.time()


def _usage(path: Path) -> tuple[int, int]:
    files = size = 0
    for top, _, names in os.walk(path):
        for name in names:
            with contextlib.suppress(OSError):
                size += os.lstat(os.path.join(top, name)).st_size  # noqa: PTH118
                files += 1
    return files, size


def _sweep(temp: Path) -> None:
    """Remove what fills killed a day or more ago left in ``temp`` (a live fill is younger)."""
    limit = time.time() - _STALE
    for left in temp.iterdir():
        try:
            if left.lstat().st_mtime < limit:
                shutil.rmtree(left, ignore_errors=True)
        except OSError:
            continue


def _check_entry(entry: StoreEntry) -> StoreProblem | None:
    def problem(path: str, reason: str) -> StoreProblem:
        return StoreProblem(entry.sha256, entry.filename, path, reason)

    record_path = f"{entry.dist_info}/RECORD"
    try:
        text = (entry.files_dir / record_path).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return problem(record_path, f"unreadable: {exc}")
    record: dict[str, tuple[str, str]] = {}
    for fields in csv.reader(text.splitlines()):
        if len(fields) == 3:
            record[fields[0]] = (fields[1], fields[2])
    for item in entry.files:
        row = record.get(item.path)
        if row is None:
            return problem(item.path, "not in the wheel's RECORD")
        hash_field, size_field = row
        algorithm, _, digest = hash_field.partition("=")
        try:
            recorded = hashlib.new(algorithm)
        except ValueError:
            return problem(item.path, f"RECORD hash {hash_field!r} unusable")
        try:
            with open(entry.source(item), "rb") as fh:  # noqa: PTH123
                hashed = copy_hashing(read_chunks(fh), also=[recorded])
        except OSError as exc:
            return problem(item.path, f"unreadable: {exc.strerror or exc}")
        size = hashed.size
        if (
            size != item.size
            or str(size) != size_field
            or _b64(recorded.digest()) != digest
            or _b64(hashed.hasher.digest()) != item.sha256
        ):
            return problem(item.path, "changed since it was stored (hash or size)")
    return None


def _root_scheme(opened: OpenWheel) -> Literal["purelib", "platlib"]:
    text = opened.zipfile.read(f"{opened.layout.dist_info}/WHEEL").decode("utf-8")
    return "purelib" if parse_metadata_file(text)["Root-Is-Purelib"] == "true" else "platlib"


def _place(layout_data: str, root: Literal["purelib", "platlib"], path: str) -> tuple[Scheme, str]:
    """The scheme of archive member ``path`` and its path within that scheme."""
    if path.startswith(layout_data + "/"):
        scheme, _, rest = path[len(layout_data) + 1 :].partition("/")
        # inspect_wheel refused members of .data outside the known schemes.
        return scheme, rest  # type: ignore[return-value]
    return root, path


def _extract(opened: OpenWheel, temp: Path, prestaged: Prestager | None) -> StoreEntry:
    """Write every member of ``opened`` into ``temp/files``, each checked against RECORD."""
    spec = opened.spec
    layout = opened.layout
    files_dir = os.path.join(temp, _FILES)  # noqa: PTH118
    root = _root_scheme(opened)
    ours = {f"{layout.dist_info}/{name}" for name in GENERATED}
    made: set[str] = set()
    claimed: set[str] = set()
    files: list[StoreFile] = []
    # RECORD is a member too, kept for ``cache verify``; inspect_wheel leaves it out of
    # ``members`` (it has no row of its own).
    record_info = opened.zipfile.getinfo(layout.record_path)
    try:
        for info in (*layout.members, record_info):
            path = info.filename
            if "__pycache__" in path.split("/")[:-1] or path in ours:
                # Bytecode is the target interpreter's to write (installer skips it too); the
                # install metadata files are ours to write.
                log.warning("%s: skipping %s", spec.filename, path)
                continue
            target = os.path.join(files_dir, path)  # noqa: PTH118
            parent = os.path.dirname(target)  # noqa: PTH120
            if parent not in made:
                os.makedirs(parent, exist_ok=True)  # noqa: PTH103
                made.add(parent)
            mode = info.external_attr >> 16
            executable = bool(mode and stat.S_ISREG(mode) and mode & 0o111)
            row = None if info is record_info else layout.record[path]
            digest = _take_prestaged(prestaged, target, row)
            if digest is not None:
                claimed.add(target)
                if executable:
                    _make_executable(target)
            else:
                if prestaged is not None and target in prestaged.written:
                    # Not taken: extracted from the verified archive instead.
                    os.unlink(target)  # noqa: PTH108
                    prestaged.written.discard(target)
                digest = _write_member(opened, info, target, row, executable)
            if row is None:
                continue
            placed = _place(layout.data_dir, root, path)
            files.append(StoreFile(path, placed[0], placed[1], digest, row.size, executable))
    except UnsafeWheel:
        raise
    except (zipfile.BadZipFile, EOFError, ValueError, NotADirectoryError, FileExistsError) as exc:
        # Bad CRC or truncated data, a member where another's directory goes: the wheel's fault.
        raise UnsafeWheel(spec.filename, None, f"cannot extract: {exc}") from exc
    except OSError as exc:
        raise InstallError(f"{spec.path}: cannot extract into the wheel store: {exc}") from exc
    finally:
        if prestaged is not None:
            dropped = prestaged.discard_unclaimed(claimed)
            log.debug(
                "%s: %d members taken as prestaged, %d prestaged files dropped",
                spec.filename,
                len(claimed),
                dropped,
            )
    return StoreEntry(
        directory=temp,
        sha256=spec.sha256,
        filename=spec.filename,
        name=spec.name,
        version=spec.version,
        dist_info=layout.dist_info,
        root_scheme=root,
        files=tuple(files),
        scripts=tuple(ScriptSpec(s.name, s.module, s.attr, s.section) for s in layout.scripts),
    )


def _take_prestaged(prestaged: Prestager | None, target: str, row: RecordRow | None) -> str | None:
    """The sha256 of the prestaged copy of a member, when it is the one RECORD vouches for."""
    if prestaged is None or row is None or row.algorithm != "sha256":
        return None
    pre = prestaged.files.get(target)
    if pre is None or pre.size != row.size or _b64(pre.sha256) != row.digest:
        return None
    return row.digest


def _make_executable(path: str) -> None:
    mode = os.stat(path).st_mode  # noqa: PTH116
    os.chmod(path, mode | ((mode & 0o444) >> 2))  # noqa: PTH101


def _write_member(
    opened: OpenWheel, info: zipfile.ZipInfo, target: str, row: RecordRow | None, executable: bool
) -> str:
    """Extract one member to ``target``, hashing it; compare with ``row`` (unless None).

    Returns its sha256 (urlsafe base64, unpadded).
    """
    wheel = opened.spec.filename
    other = None if row is None or row.algorithm == "sha256" else hashlib.new(row.algorithm)
    limit = row.size if row is not None else None
    fd = os.open(target, _CREATE, 0o666)
    try:
        with (
            opened.zipfile.open(info) as member,
            open(fd, "wb", buffering=0, closefd=False) as out,
        ):
            hashed = copy_hashing(
                read_chunks(member), out, limit=limit, also=() if other is None else (other,)
            )
        if executable:
            mode = os.fstat(fd).st_mode
            os.fchmod(fd, mode | ((mode & 0o444) >> 2))
    except TooLarge:
        raise UnsafeWheel(wheel, info.filename, "longer than RECORD says") from None
    finally:
        os.close(fd)
    digest = _b64(hashed.hasher.digest())
    size = hashed.size
    if row is not None:
        ours = digest if other is None else _b64(other.digest())
        if size != row.size or ours != row.digest:
            raise UnsafeWheel(wheel, info.filename, "hash or size differs from RECORD")
    return digest
