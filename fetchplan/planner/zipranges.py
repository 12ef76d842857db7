"""Read one member of a zip archive from a few byte ranges, without the rest of the archive.

Pure: every function works on bytes already in hand, and :func:`read_metadata_member` takes a
``read(start, end)`` callable, so the same code serves HTTP range requests, local files and
archives built in memory by tests. A zip ends with the end-of-central-directory record (EOCD,
possibly preceded by a ZIP64 locator and record); the EOCD gives the central directory's place;
the central directory gives each member's local header offset and sizes.

Problems raise :class:`ZipFormatError`, whose message says what is wrong but not which file:
callers know the file or URL and wrap it.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

__all__ = [
    "MAX_EOCD_SEARCH",
    "CentralDirectory",
    "NeedBytes",
    "RangeReader",
    "ZipEntry",
    "ZipFormatError",
    "extract_member",
    "locate_central_directory",
    "member_range",
    "parse_central_directory",
    "read_metadata_member",
    "select_metadata_name",
]

_EOCD = struct.Struct("<4sHHHHIIH")
_ZIP64_LOCATOR = struct.Struct("<4sIQI")
_ZIP64_EOCD = struct.Struct("<4sQHHIIQQQQ")
_CD_ENTRY = struct.Struct("<4sHHHHHHIIIHHHHHII")
_LOCAL = struct.Struct("<4sHHHHHIIIHH")

_EOCD_SIG = b"PK\x05\x06"
_ZIP64_LOCATOR_SIG = b"PK\x06\x07"
_ZIP64_EOCD_SIG = b"PK\x06\x06"
_CD_SIG = b"PK\x01\x02"
_LOCAL_SIG = b"PK\x03\x04"

_U16_MAX = 0xFFFF
_U32_MAX = 0xFFFFFFFF
_ZIP64_EXTRA_ID = 0x0001
_FLAG_ENCRYPTED = 0x1
_FLAG_UTF8 = 0x800
_STORED = 0
_DEFLATED = 8

MAX_EOCD_SEARCH = _EOCD.size + _U16_MAX
"""The EOCD lies within this many bytes of the end (its comment is at most 65535 bytes)."""

RangeReader = Callable[[int, int], bytes]
"""``read(start, end)``: the archive's bytes ``start..end`` inclusive, exactly."""


class ZipFormatError(ValueError):
    """The bytes are not a zip archive we can read (truncated, corrupt or unsupported)."""


@dataclass(frozen=True, slots=True)
class NeedBytes:
    """More of the archive's end is needed: the bytes in hand must start at or before ``start``."""

    start: int


@dataclass(frozen=True, slots=True)
class CentralDirectory:
    """Where the central directory lies in the file, and how many entries it holds.

    ``shift`` is the length of any data prepended to the archive (offsets inside the archive
    are relative to its own start); it is 0 for every wheel a build backend writes.
    """

    start: int
    size: int
    entries: int
    shift: int = 0

    @property
    def end(self) -> int:
        """The offset just past the central directory."""
        return self.start + self.size


@dataclass(frozen=True, slots=True)
class ZipEntry:
    """One central-directory entry, offsets already in file coordinates."""

    name: str
    raw_name: bytes
    flags: int
    method: int
    crc32: int
    compressed_size: int
    file_size: int
    header_offset: int


def locate_central_directory(tail: bytes, tail_start: int) -> CentralDirectory | NeedBytes:
    """Find the central directory from the last bytes of an archive.

    ``tail`` holds the archive's bytes from offset ``tail_start`` to its end. Returns
    :class:`NeedBytes` when the records needed lie before ``tail_start``.
    """
    total = tail_start + len(tail)
    pos = _find_eocd(tail)
    if pos is None:
        if tail_start > 0 and len(tail) < MAX_EOCD_SEARCH:
            return NeedBytes(max(0, total - MAX_EOCD_SEARCH))
        raise ZipFormatError("no end-of-central-directory record (not a zip, or truncated)")
    (_, disk, cd_disk, disk_entries, entries, cd_size, cd_offset, _) = _EOCD.unpack_from(tail, pos)
    eocd_at = tail_start + pos
    end_of_cd = eocd_at
    needs_zip64 = _U16_MAX in (entries, disk_entries) or _U32_MAX in (cd_size, cd_offset)
    locator = _zip64_locator(tail, tail_start, eocd_at)
    if isinstance(locator, NeedBytes):
        return locator
    if locator is not None:
        found = _zip64_record(tail, tail_start, eocd_at - _ZIP64_LOCATOR.size, locator)
        if isinstance(found, NeedBytes):
            return found
        record, end_of_cd = found
        (_, _, _, _, disk, cd_disk, disk_entries, entries, cd_size, cd_offset) = record
    elif needs_zip64:
        raise ZipFormatError("end record needs ZIP64 values but there is no ZIP64 locator")
    if disk != 0 or cd_disk != 0 or disk_entries != entries:
        raise ZipFormatError("multi-disk zip archives are not supported")
    shift = end_of_cd - (cd_offset + cd_size)
    if shift < 0:
        raise ZipFormatError("central directory runs past the end record (corrupt or truncated)")
    if entries > cd_size // _CD_ENTRY.size + 1 and entries > 0:
        raise ZipFormatError(f"end record claims {entries} entries in {cd_size} bytes")
    return CentralDirectory(start=cd_offset + shift, size=cd_size, entries=entries, shift=shift)


def _zip64_locator(
    tail: bytes, tail_start: int, eocd_at: int
) -> tuple[bytes, int, int, int] | NeedBytes | None:
    """The ZIP64 locator right before the end record at ``eocd_at``, None when there is none."""
    locator_at = eocd_at - _ZIP64_LOCATOR.size
    if locator_at >= tail_start:
        fields = _ZIP64_LOCATOR.unpack_from(tail, locator_at - tail_start)
        return fields if fields[0] == _ZIP64_LOCATOR_SIG else None
    if locator_at >= 0:
        # A ZIP64 locator may sit there even when the classic record looks complete.
        return NeedBytes(max(0, locator_at - _ZIP64_EOCD.size))
    return None


def _zip64_record(
    tail: bytes, tail_start: int, locator_at: int, locator: tuple[bytes, int, int, int]
) -> tuple[tuple[Any, ...], int] | NeedBytes:
    """The ZIP64 end record ``locator`` (at ``locator_at``) leads to, and its offset."""
    _, locator_disk, record_offset, disks = locator
    if locator_disk != 0 or disks > 1:
        raise ZipFormatError("multi-disk zip archives are not supported")
    # Like CPython's zipfile, look for the record right before its locator first: the
    # offset the locator gives is relative to the archive, not to the file, when data is
    # prepended. The offset is the fallback, for a record with an extensible data sector.
    record_at = locator_at - _ZIP64_EOCD.size
    if record_at < 0:
        raise ZipFormatError("ZIP64 end record lies before the start of the file")
    if record_at < tail_start:
        return NeedBytes(record_at)
    if tail[record_at - tail_start : record_at - tail_start + 4] != _ZIP64_EOCD_SIG:
        record_at = record_offset
        if record_at >= locator_at - _ZIP64_EOCD.size:
            raise ZipFormatError("ZIP64 locator does not point at a ZIP64 end record")
        if record_at < tail_start:
            return NeedBytes(record_at)
    record = _ZIP64_EOCD.unpack_from(tail, record_at - tail_start)
    if record[0] != _ZIP64_EOCD_SIG:
        raise ZipFormatError("ZIP64 locator does not point at a ZIP64 end record")
    return record, record_at


def _find_eocd(tail: bytes) -> int | None:
    """The position of the EOCD whose comment reaches exactly to the end of ``tail``."""
    search_from = max(0, len(tail) - MAX_EOCD_SEARCH)
    pos = tail.rfind(_EOCD_SIG, search_from)
    while pos != -1:
        if pos + _EOCD.size <= len(tail):
            comment_length = _EOCD.unpack_from(tail, pos)[7]
            if pos + _EOCD.size + comment_length == len(tail):
                return pos
        pos = tail.rfind(_EOCD_SIG, search_from, pos)
    return None


def parse_central_directory(data: bytes, directory: CentralDirectory) -> tuple[ZipEntry, ...]:
    """Parse the central directory (``data`` is exactly its bytes) into entries."""
    if len(data) != directory.size:
        raise ZipFormatError(
            f"central directory is {len(data)} bytes, the end record says {directory.size}"
        )
    entries: list[ZipEntry] = []
    pos = 0
    for index in range(directory.entries):
        if pos + _CD_ENTRY.size > len(data):
            raise ZipFormatError(f"central directory truncated at entry {index}")
        fields = _CD_ENTRY.unpack_from(data, pos)
        if fields[0] != _CD_SIG:
            raise ZipFormatError(f"bad central directory entry signature at entry {index}")
        flags, method = fields[3], fields[4]
        crc, compressed, size = fields[7], fields[8], fields[9]
        name_length, extra_length, comment_length = fields[10], fields[11], fields[12]
        offset = fields[16]
        name_start = pos + _CD_ENTRY.size
        extra_start = name_start + name_length
        end = extra_start + extra_length + comment_length
        if end > len(data):
            raise ZipFormatError(f"central directory truncated at entry {index}")
        raw_name = data[name_start:extra_start]
        size, compressed, offset = _apply_zip64_extra(
            data[extra_start : extra_start + extra_length], size, compressed, offset
        )
        entries.append(
            ZipEntry(
                name=_decode_name(raw_name, flags),
                raw_name=raw_name,
                flags=flags,
                method=method,
                crc32=crc,
                compressed_size=compressed,
                file_size=size,
                header_offset=offset + directory.shift,
            )
        )
        pos = end
    return tuple(entries)


def _decode_name(raw: bytes, flags: int) -> str:
    if flags & _FLAG_UTF8:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ZipFormatError(f"member name {raw!r} is not valid UTF-8") from None
    return raw.decode("cp437")


def _apply_zip64_extra(
    extra: bytes, size: int, compressed: int, offset: int
) -> tuple[int, int, int]:
    """Replace saturated 32-bit fields by the ZIP64 extra field's 64-bit values, in order."""
    pos = 0
    while pos + 4 <= len(extra):
        header_id, length = struct.unpack_from("<HH", extra, pos)
        body = extra[pos + 4 : pos + 4 + length]
        if header_id == _ZIP64_EXTRA_ID:
            values = list(struct.unpack_from(f"<{len(body) // 8}Q", body))
            result = []
            for value in (size, compressed, offset):
                if value == _U32_MAX:
                    if not values:
                        raise ZipFormatError("ZIP64 extra field is too short")
                    result.append(values.pop(0))
                else:
                    result.append(value)
            return result[0], result[1], result[2]
        pos += 4 + length
    if _U32_MAX in (size, compressed, offset):
        raise ZipFormatError("entry needs ZIP64 values but has no ZIP64 extra field")
    return size, compressed, offset


_DIST_INFO = re.compile(r"^(?P<dir>(?P<name>[^/]+)-(?P<version>[^/-]+)\.dist-info)/METADATA$")


def select_metadata_name(names: Iterable[str], project: str, version: str) -> str:
    """The ``<name>-<version>.dist-info/METADATA`` member matching ``project`` and ``version``.

    Names and versions compare normalized (PEP 503 names, PEP 440 versions). Raises
    :class:`ZipFormatError` when no member, or more than one, matches.
    """
    want_name = canonicalize_name(project)
    want_version = _normal_version(version)
    seen: list[str] = []
    found: list[str] = []
    for name in names:
        match = _DIST_INFO.match(name)
        if match is None:
            continue
        seen.append(match["dir"])
        same_name = canonicalize_name(match["name"]) == want_name
        if same_name and _normal_version(match["version"]) == want_version:
            found.append(name)
    if len(found) == 1:
        return found[0]
    if found:
        raise ZipFormatError(f"several METADATA members match {project} {version}: {found}")
    if seen:
        listed = ", ".join(sorted(set(seen)))
        raise ZipFormatError(f"no .dist-info/METADATA for {project} {version} (found {listed})")
    raise ZipFormatError("no .dist-info/METADATA member")


def _normal_version(text: str) -> Version | str:
    try:
        return Version(text)
    except InvalidVersion:
        return text


def member_range(
    entries: Sequence[ZipEntry], entry: ZipEntry, directory: CentralDirectory
) -> tuple[int, int]:
    """The inclusive byte range holding ``entry``'s local header and data.

    It ends before the next member's local header (or the central directory) and never
    reaches further than the largest header that could precede the data, so a hostile
    archive cannot make a reader fetch more than the member needs.
    """
    start = entry.header_offset
    following = [e.header_offset for e in entries if e.header_offset > start]
    limit = min([*following, directory.start])
    longest = _LOCAL.size + len(entry.raw_name) + _U16_MAX + entry.compressed_size
    end = min(limit, start + longest)
    needed = _LOCAL.size + len(entry.raw_name) + entry.compressed_size
    if start < 0 or end - start < needed:
        raise ZipFormatError(f"member {entry.name!r} does not fit before the next member")
    return start, end - 1


def extract_member(entry: ZipEntry, blob: bytes, *, max_size: int) -> bytes:
    """Decompress ``entry`` from ``blob``, which starts at its local header.

    Checks the local header against the central directory, the size (at most ``max_size``)
    and the CRC-32. Supports stored and deflated members, as wheels use.
    """
    if entry.file_size > max_size:
        raise ZipFormatError(f"member {entry.name!r} is {entry.file_size} bytes (limit {max_size})")
    if entry.flags & _FLAG_ENCRYPTED:
        raise ZipFormatError(f"member {entry.name!r} is encrypted")
    if len(blob) < _LOCAL.size:
        raise ZipFormatError(f"local header of {entry.name!r} is truncated")
    fields = _LOCAL.unpack_from(blob, 0)
    if fields[0] != _LOCAL_SIG:
        raise ZipFormatError(f"bad local header signature for {entry.name!r}")
    name_length, extra_length = fields[9], fields[10]
    raw_name = blob[_LOCAL.size : _LOCAL.size + name_length]
    if raw_name != entry.raw_name:
        raise ZipFormatError(
            f"local header names {raw_name!r}, the central directory {entry.raw_name!r}"
        )
    data_start = _LOCAL.size + name_length + extra_length
    data = blob[data_start : data_start + entry.compressed_size]
    if len(data) < entry.compressed_size:
        raise ZipFormatError(f"member {entry.name!r} is truncated")
    if entry.method == _STORED:
        content = data
    elif entry.method == _DEFLATED:
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        try:
            content = inflater.decompress(data, entry.file_size + 1)
        except zlib.error as exc:
            raise ZipFormatError(f"member {entry.name!r} does not inflate: {exc}") from None
    else:
        raise ZipFormatError(
            f"member {entry.name!r} uses compression method {entry.method} (not stored/deflated)"
        )
    if len(content) != entry.file_size:
        raise ZipFormatError(
            f"member {entry.name!r} is {len(content)} bytes, the directory says {entry.file_size}"
        )
    if zlib.crc32(content) != entry.crc32:
        raise ZipFormatError(f"member {entry.name!r} fails its CRC-32 check")
    return content


# Rounds of "fetch more of the end": EOCD, ZIP64 record, central directory. More means a loop.
_MAX_ROUNDS = 4


def read_metadata_member(
    tail: bytes,
    total_size: int,
    read: RangeReader,
    *,
    project: str,
    version: str,
    max_size: int,
) -> tuple[bytes, int]:
    """Read a wheel's ``.dist-info/METADATA`` given its last bytes and a range reader.

    ``tail`` is the end of an archive of ``total_size`` bytes; ``read`` supplies other ranges
    (only those not already in hand are asked for). Returns the METADATA bytes and the number
    of ``read`` calls made.
    """
    buffer = tail
    buffer_start = total_size - len(tail)
    if buffer_start < 0:
        raise ZipFormatError("more bytes in hand than the archive's size")
    calls = 0

    def extend_to(start: int) -> None:
        nonlocal buffer, buffer_start, calls
        if start >= buffer_start:
            return
        calls += 1
        more = read(start, buffer_start - 1)
        if len(more) != buffer_start - start:
            raise ZipFormatError(f"asked for {buffer_start - start} bytes, got {len(more)}")
        buffer = more + buffer
        buffer_start = start

    located = locate_central_directory(buffer, buffer_start)
    rounds = 0
    while isinstance(located, NeedBytes):
        rounds += 1
        if rounds > _MAX_ROUNDS or located.start >= buffer_start:
            raise ZipFormatError("cannot find the central directory")
        extend_to(located.start)
        located = locate_central_directory(buffer, buffer_start)
    directory = located
    if directory.end > total_size:
        raise ZipFormatError("central directory runs past the end of the file")
    extend_to(directory.start)
    offset = directory.start - buffer_start
    entries = parse_central_directory(buffer[offset : offset + directory.size], directory)
    chosen = select_metadata_name(dict.fromkeys(e.name for e in entries), project, version)
    matching = [e for e in entries if e.name == chosen]
    if len(matching) > 1:
        # Two readers could disagree about which copy counts; refuse rather than pick one.
        raise ZipFormatError(f"member {chosen!r} appears {len(matching)} times")
    entry = matching[0]
    start, end = member_range(entries, entry, directory)
    if start >= buffer_start:
        blob = buffer[start - buffer_start : end - buffer_start + 1]
    else:
        calls += 1
        blob = read(start, end)
        if len(blob) != end - start + 1:
            raise ZipFormatError(f"asked for {end - start + 1} bytes, got {len(blob)}")
    return extract_member(entry, blob, max_size=max_size), calls
