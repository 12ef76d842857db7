"""Opening a wheel file once, checking it is the one the manifest vouches for, and that it is safe.

:func:`open_wheel` hashes the file through the handle it keeps open, so the bytes checked are
the bytes later installed even if the path is swapped meanwhile. :func:`inspect_wheel` reads
only the archive's directory and its small metadata files and refuses, before anything is
written, every member or RECORD entry that could escape the target, a member RECORD does not
cover, a symbolic link, a console-script name with a path in it, and a name or version that is
not the expected one. Member hashes are checked while the members are extracted
(:mod:`fetchplan.install.staging`).
"""

from __future__ import annotations

import base64
import binascii
import configparser
import csv
import hashlib
import logging
import os
import re
import stat
import zipfile
from dataclasses import dataclass
from email.parser import HeaderParser
from typing import BinaryIO, Literal

from packaging.utils import (
    InvalidWheelFilename,
    canonicalize_name,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from fetchplan._fs import check_hashed, copy_hashing, read_chunks
from fetchplan.install.errors import InstallError, UnsafeWheel
from fetchplan.install.selection import WheelToInstall

__all__ = [
    "SCHEMES",
    "OpenWheel",
    "RecordRow",
    "ScriptEntry",
    "WheelLayout",
    "check_member_path",
    "inspect_wheel",
    "open_wheel",
]

log = logging.getLogger(__name__)

SCHEMES = ("purelib", "platlib", "headers", "scripts", "data")

# RECORD hashes we accept: PEP 427 asks for sha256 or stronger.
_RECORD_ALGORITHMS = frozenset(
    {"sha256", "sha384", "sha512", "sha3_256", "sha3_384", "sha3_512", "blake2b", "blake2s"}
)
_SIGNATURES = ("RECORD.jws", "RECORD.p7s")
# METADATA, WHEEL, RECORD and entry_points.txt are read whole; none is near this in practice.
_MAX_METADATA_SIZE = 64 * 1024 * 1024
_DRIVE = re.compile(r"^[A-Za-z]:")
_CONTROL = re.compile(r"[\x00-\x1f]")
# One or more "/"-separated segments without a backslash or control character, none
# empty, "." or "..": what check_member_path accepts, matched at once (every member and
# RECORD row of every wheel is checked).
_SEGMENT = r"(?!\.\.?(?:/|\Z))[^/\\\x00-\x1f]+"
_PLAIN_PATH = re.compile(rf"{_SEGMENT}(?:/{_SEGMENT})*")
# The entry point syntax installer's script maker accepts.
_ENTRY_POINT = re.compile(r"^(?P<module>[\w.]+)\s*:\s*(?P<attr>[\w.]+)\s*(\[.*\])?\s*$")


@dataclass(frozen=True, slots=True)
class RecordRow:
    """A RECORD row of a wheel member: its hash (urlsafe base64, unpadded) and size."""

    path: str
    algorithm: str
    digest: str
    size: int


@dataclass(frozen=True, slots=True)
class ScriptEntry:
    name: str
    module: str
    attr: str
    section: Literal["console", "gui"]


@dataclass(frozen=True, kw_only=True, slots=True)
class WheelLayout:
    """What inspecting a wheel established: its directories, RECORD and members to install."""

    dist_info: str
    data_dir: str
    record_path: str
    record: dict[str, RecordRow]
    members: tuple[zipfile.ZipInfo, ...]
    """The file members to extract, in archive order (RECORD and signatures excluded)."""
    scripts: tuple[ScriptEntry, ...]


def check_member_path(path: str) -> str | None:
    """Why the archive path ``path`` may not be written under a target directory, or None."""
    if _PLAIN_PATH.fullmatch(path) and not _DRIVE.match(path):
        # Segments of ordinary characters, none of them "." or "..": nothing refuses it.
        return None
    return _member_path_problem(path)


def _member_path_problem(path: str) -> str | None:
    if "\\" in path:
        return "backslash in path"
    if path.startswith("/"):
        return "absolute path"
    if _DRIVE.match(path):
        return "drive letter in path"
    parts = path.split("/")
    if ".." in parts:
        return "'..' in path escapes the target"
    if "" in parts or "." in parts or _CONTROL.search(path):
        return "path is not normalised"
    return None


def _hash_ok(algorithm: str, digest: str) -> bool:
    try:
        raw = base64.urlsafe_b64decode(digest + "=" * (-len(digest) % 4))
    except (binascii.Error, ValueError):
        return False
    return len(raw) == hashlib.new(algorithm).digest_size


def _parse_record(wheel: str, record_path: str, text: str) -> dict[str, RecordRow | None]:
    """RECORD rows by path; ``None`` for a row without hash or size."""
    rows: dict[str, RecordRow | None] = {}
    for number, row in enumerate(csv.reader(text.splitlines()), start=1):
        if not row:
            continue
        if len(row) != 3:
            raise UnsafeWheel(wheel, record_path, f"row {number}: expected 3 fields")
        path, hash_field, size_field = row
        reason = check_member_path(path)
        if reason is not None:
            raise UnsafeWheel(wheel, path, f"RECORD entry: {reason}")
        if path in rows:
            raise UnsafeWheel(wheel, path, "listed twice in RECORD")
        if hash_field == "" and size_field == "":
            rows[path] = None
            continue
        algorithm, _, digest = hash_field.partition("=")
        if algorithm not in _RECORD_ALGORITHMS or not _hash_ok(algorithm, digest):
            raise UnsafeWheel(wheel, path, f"RECORD hash {hash_field!r} is not a usable hash")
        if not size_field.isdigit():
            raise UnsafeWheel(wheel, path, f"RECORD size {size_field!r} is not a size")
        rows[path] = RecordRow(path, algorithm, digest, int(size_field))
    return rows


def _parse_scripts(wheel: str, member: str, text: str) -> tuple[ScriptEntry, ...]:
    # Configured as installer's own parser is, so we check exactly what it will generate.
    config = configparser.ConfigParser(delimiters="=")
    config.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        config.read_string(text)
        items = [
            (section, name, value)
            for section in ("console_scripts", "gui_scripts")
            if config.has_section(section)
            for name, value in config.items(section)
        ]
    except configparser.Error as exc:
        first = str(exc).splitlines()[0]
        raise UnsafeWheel(wheel, member, f"unreadable: {first}") from exc
    scripts = []
    for section, name, value in items:
        if name in ("", ".") or "/" in name or "\\" in name or ".." in name or "\0" in name:
            raise UnsafeWheel(
                wheel, member, f"[{section}] name {name!r} would leave the scripts directory"
            )
        match = _ENTRY_POINT.match(value)
        if match is None:
            raise UnsafeWheel(wheel, member, f"[{section}] {name}: not an entry point: {value!r}")
        kind: Literal["console", "gui"] = "console" if section == "console_scripts" else "gui"
        scripts.append(ScriptEntry(name, match["module"], match["attr"], kind))
    return tuple(scripts)


def _read_text(zf: zipfile.ZipFile, wheel: str, member: str) -> str:
    try:
        info = zf.getinfo(member)
    except KeyError:
        raise UnsafeWheel(wheel, member, "missing") from None
    if info.file_size > _MAX_METADATA_SIZE:
        raise UnsafeWheel(wheel, member, f"implausibly large ({info.file_size} bytes)")
    try:
        return zf.read(info).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnsafeWheel(wheel, member, f"not UTF-8: {exc.reason}") from exc
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise UnsafeWheel(wheel, member, f"unreadable: {exc}") from exc


def _same_version(text: str, expected: str) -> bool:
    try:
        return Version(text) == Version(expected)
    except InvalidVersion:
        return text == expected


def _check_identity(zf: zipfile.ZipFile, spec: WheelToInstall) -> tuple[str, str]:
    """Check names and versions (file name, .dist-info, METADATA); return dist-info, data dir."""
    wheel = spec.filename
    try:
        name, version, _, _ = parse_wheel_filename(spec.filename)
    except (InvalidWheelFilename, InvalidVersion) as exc:
        raise UnsafeWheel(wheel, None, f"not a valid wheel file name: {exc}") from exc
    if name != spec.name or version != Version(spec.version):
        raise UnsafeWheel(
            wheel, None, f"file name says {name} {version}, expected {spec.name} {spec.version}"
        )
    tops = {info.filename.split("/", 1)[0] for info in zf.infolist()}
    dist_infos = sorted(t for t in tops if t.endswith(".dist-info"))
    if len(dist_infos) != 1:
        found = ", ".join(dist_infos) or "none"
        raise UnsafeWheel(wheel, None, f"expected exactly one .dist-info directory, found {found}")
    dist_info = dist_infos[0]
    di_name, _, di_version = dist_info.removesuffix(".dist-info").rpartition("-")
    if canonicalize_name(di_name) != spec.name or not _same_version(di_version, spec.version):
        raise UnsafeWheel(wheel, dist_info, f"does not match {spec.name} {spec.version}")
    data_dir = dist_info.removesuffix(".dist-info") + ".data"
    for top in tops:
        if top.endswith(".data") and top != data_dir:
            raise UnsafeWheel(wheel, top, f"data directory of another distribution ({data_dir})")

    metadata_path = f"{dist_info}/METADATA"
    metadata = HeaderParser().parsestr(_read_text(zf, wheel, metadata_path))
    meta_name, meta_version = metadata.get("Name"), metadata.get("Version")
    if meta_name is None or meta_version is None:
        raise UnsafeWheel(wheel, metadata_path, "lacks Name or Version")
    if canonicalize_name(meta_name) != spec.name or not _same_version(meta_version, spec.version):
        raise UnsafeWheel(
            wheel,
            metadata_path,
            f"says {meta_name} {meta_version}, expected {spec.name} {spec.version}",
        )
    wheel_meta_path = f"{dist_info}/WHEEL"
    wheel_meta = HeaderParser().parsestr(_read_text(zf, wheel, wheel_meta_path))
    if not (wheel_meta.get("Wheel-Version") or "").startswith("1."):
        raise UnsafeWheel(wheel, wheel_meta_path, "unsupported Wheel-Version (want 1.x)")
    return dist_info, data_dir


def inspect_wheel(zf: zipfile.ZipFile, spec: WheelToInstall) -> WheelLayout:
    """Check an open wheel archive is ``spec`` and can be installed safely; describe its layout.

    Reads the archive directory, METADATA, WHEEL, entry_points.txt and RECORD only. Raises
    :class:`UnsafeWheel` naming the wheel file and member at the first problem.
    """
    wheel = spec.filename
    dist_info, data_dir = _check_identity(zf, spec)
    record_path = f"{dist_info}/RECORD"
    record = _parse_record(wheel, record_path, _read_text(zf, wheel, record_path))

    seen: set[str] = set()
    members: list[zipfile.ZipInfo] = []
    rows: dict[str, RecordRow] = {}
    for info in zf.infolist():
        path = info.filename
        is_dir = path.endswith("/")
        reason = check_member_path(path.rstrip("/") if is_dir else path)
        if reason is not None:
            raise UnsafeWheel(wheel, path, reason)
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise UnsafeWheel(wheel, path, "symbolic link")
        if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise UnsafeWheel(wheel, path, "not a regular file")
        if is_dir:
            continue
        if path in seen:
            raise UnsafeWheel(wheel, path, "appears twice in the archive")
        seen.add(path)
        parts = path.split("/")
        if parts[0] == data_dir and (len(parts) < 3 or parts[1] not in SCHEMES):
            raise UnsafeWheel(wheel, path, f"not in a known scheme ({', '.join(SCHEMES)})")
        if path == record_path or (parts[0] == dist_info and parts[-1] in _SIGNATURES):
            continue
        if path not in record:
            raise UnsafeWheel(wheel, path, "not listed in RECORD")
        row = record[path]
        if row is None:
            raise UnsafeWheel(wheel, path, "RECORD gives no hash or size")
        if row.size != info.file_size:
            raise UnsafeWheel(wheel, path, f"size in RECORD ({row.size}) differs from the member's")
        rows[path] = row
        members.append(info)

    entry_points = f"{dist_info}/entry_points.txt"
    scripts: tuple[ScriptEntry, ...] = ()
    if entry_points in seen:
        scripts = _parse_scripts(wheel, entry_points, _read_text(zf, wheel, entry_points))
    return WheelLayout(
        dist_info=dist_info,
        data_dir=data_dir,
        record_path=record_path,
        record=rows,
        members=tuple(members),
        scripts=scripts,
    )


@dataclass(frozen=True, kw_only=True, slots=True)
class _Identity:
    """What tells that an open file was written to since we hashed it.

    Not the change time: unlinking the path (a harmless swap, as we read our open handle)
    changes it too.
    """

    size: int
    mtime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> _Identity:
        return cls(size=st.st_size, mtime_ns=st.st_mtime_ns)


class OpenWheel:
    """A wheel file verified through its open handle, with its archive and layout.

    Install only from :attr:`zipfile`, which reads the very handle that was hashed; call
    :meth:`check_unchanged` after extracting to catch writes into the file meanwhile.
    """

    def __init__(self, spec: WheelToInstall, handle: BinaryIO, identity: _Identity) -> None:
        self.spec = spec
        self._handle = handle
        self._identity = identity
        try:
            self.zipfile = zipfile.ZipFile(handle)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise UnsafeWheel(spec.filename, None, f"not a readable zip archive: {exc}") from exc
        self.layout = inspect_wheel(self.zipfile, spec)

    def check_unchanged(self) -> None:
        """Raise if the file was written to since it was hashed."""
        if _Identity.of(os.fstat(self._handle.fileno())) != self._identity:
            raise InstallError(f"{self.spec.path}: modified while being installed")

    def close(self) -> None:
        self.zipfile.close()
        self._handle.close()


def open_wheel(spec: WheelToInstall) -> OpenWheel:
    """Open ``spec.path``, check its size and sha256 through the open handle, then inspect it.

    Raises :class:`HashMismatch` or :class:`InstallError` naming the file when it is not the
    file the manifest vouches for, :class:`UnsafeWheel` when it must not be installed.
    """
    try:
        handle: BinaryIO = spec.path.open("rb")
    except OSError as exc:
        raise InstallError(f"{spec.path}: cannot open: {exc.strerror or exc}") from exc
    try:
        st = os.fstat(handle.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise InstallError(f"{spec.path}: not a regular file")
        if st.st_size != spec.size:
            raise InstallError(
                f"{spec.path}: size {st.st_size} differs from the manifest's {spec.size}"
            )
        check_hashed(
            str(spec.path), copy_hashing(read_chunks(handle)), sha256=spec.sha256, size=None
        )
        handle.seek(0)
        opened = OpenWheel(spec, handle, _Identity.of(st))
    except BaseException:
        handle.close()
        raise
    log.debug("verified %s (%d bytes)", spec.path, spec.size)
    return opened
