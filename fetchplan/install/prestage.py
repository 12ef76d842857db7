"""Unpacking a large wheel while it downloads, so that installing it does not start from zero.

``fetchplan run`` installs only wheels the executor has verified, so the last large wheel to
arrive used to be unpacked from scratch after its last byte (on the bench, a 274 MB wheel of
15,000 files took 15 s, as long as ``unzip`` takes). A :class:`Prestager` follows such a
wheel's partial file as it grows and unpacks its members, in archive order from their local
headers, at their archive paths into the temporary directory the wheel store fills the
wheel's entry in (:mod:`fetchplan.install.store`), hashing each.

Nothing it writes is trusted. When the wheel is verified and stored as usual
(:meth:`fetchplan.install.store.WheelStore.fill`: central directory, RECORD, every check), a
member is taken from the prestaged file only if that file sits at exactly the member's path
and its sha256 and size are the ones the verified wheel's RECORD gives for the member; its
bytes are then the bytes the wheel vouches for. Every other prestaged file (a member the
central directory does not list, a name the wheel declares twice, bytes from a partial the
executor started over) is deleted before the entry is renamed into the store, and the member
is extracted from the verified archive instead.

Unpacking stops, leaving the rest to the store, on anything it does not handle plainly
(encryption, a method other than stored or deflate, sizes it cannot know), on an unsafe
member name, when it has written more than :data:`MAX_EXPANSION` times the archive's size,
or when told to stop.
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from fetchplan._fs import CHUNK_SIZE, TooLarge, copy_hashing
from fetchplan.install.wheel import check_member_path

__all__ = ["MAX_EXPANSION", "PreFile", "Prestager", "prestage_min_size"]

log = logging.getLogger(__name__)

MAX_EXPANSION = 16
"""Prestaging stops once it has written this many times the archive's size."""
_DEFAULT_MIN_SIZE = 16 << 20
_POLL = 0.02
_STALL = 300.0

_LOCAL = b"PK\x03\x04"
_DESCRIPTOR = b"PK\x07\x08"
_HEADER = struct.Struct("<HHHHHIIIHH")
_ZIP64_EXTRA = 0x0001
_STORED, _DEFLATED = 0, 8
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)


def prestage_min_size() -> int:
    """Wheels at least this large are prestaged (``FETCHPLAN_PRESTAGE_MIN_BYTES``, else 16 MiB)."""
    value = os.environ.get("FETCHPLAN_PRESTAGE_MIN_BYTES", "")
    return int(value) if value.isdigit() else _DEFAULT_MIN_SIZE


@dataclass(frozen=True, slots=True)
class PreFile:
    """A member unpacked whole: the sha256 and size of the bytes written."""

    sha256: bytes
    size: int


class _Stop(Exception):
    """Unpacking ends here; what is complete so far stays usable."""


class _Growing:
    """Reads a file that another process or thread is still writing, up to ``size`` bytes."""

    def __init__(self, partial: Path, final: Path, size: int, stopping: threading.Event) -> None:
        self._paths = (partial, final)
        self._size = size
        self._stopping = stopping
        self._finishing = threading.Event()
        self._fd = -1
        self._pushed = b""
        self.position = 0

    def finish(self) -> None:
        """The download is over: read what is there, wait for nothing more."""
        self._finishing.set()

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _open(self) -> None:
        waited = 0.0
        while self._fd < 0:
            for path in self._paths:
                with contextlib.suppress(OSError):
                    self._fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
                    return
            if self._finishing.is_set() or self._stopping.is_set() or waited > _STALL:
                raise _Stop("the download never started here")
            time.sleep(_POLL)
            waited += _POLL

    def unread(self, data: bytes) -> None:
        self._pushed = data + self._pushed
        self.position -= len(data)

    def read(self, n: int) -> bytes:
        """Up to ``n`` bytes (at least one), waiting for them while the download goes on."""
        if self._pushed:
            data, self._pushed = self._pushed[:n], self._pushed[n:]
            self.position += len(data)
            return data
        self._open()
        waited = 0.0
        while True:
            if self._stopping.is_set():
                raise _Stop("stopped")
            want = min(n, self._size - self.position)
            if want <= 0:
                raise _Stop("past the end of the archive")
            data = os.read(self._fd, want)
            if data:
                self.position += len(data)
                return data
            if self._finishing.is_set() or waited > _STALL:
                raise _Stop("the file ended early")
            time.sleep(_POLL)
            waited += _POLL

    def read_exact(self, n: int) -> bytes:
        parts = []
        while n > 0:
            data = self.read(n)
            parts.append(data)
            n -= len(data)
        return b"".join(parts)


class Prestager:
    """Unpacks one wheel from its growing partial file into ``directory``, in a thread.

    Members are written at their archive paths below ``directory`` (bytecode in
    ``__pycache__`` and directories aside).
    """

    def __init__(
        self,
        *,
        partial: Path,
        final: Path,
        size: int,
        directory: Path,
    ) -> None:
        self.directory = directory
        self.files: dict[str, PreFile] = {}
        """Members unpacked whole, by the path they were written to."""
        self.written: set[str] = set()
        """Every file created, whole or not."""
        self._dirs: set[str] = set()
        self._limit = max(64 << 20, MAX_EXPANSION * size)
        self._total = 0
        self._stopping = threading.Event()
        self._source = _Growing(partial, final, size, self._stopping)
        self._thread = threading.Thread(
            target=self._run, name=f"fetchplan-prestage-{final.name}", daemon=True
        )
        self.reason = ""

    def start(self) -> Prestager:
        self._thread.start()
        return self

    def downloaded(self) -> None:
        """The wheel is downloaded: unpack what is left without waiting for more (returns at
        once; :meth:`finish` waits)."""
        self._source.finish()

    def finish(self) -> None:
        """The wheel is downloaded: unpack what is left, then wait for the thread."""
        self.downloaded()
        self._thread.join()

    def cancel(self) -> None:
        """Stop as soon as possible and wait for the thread."""
        self._stopping.set()
        self.finish()

    def discard_unclaimed(self, claimed: set[str]) -> int:
        """Delete every file written that staging did not take, and the directories left
        empty; return how many files were deleted. Call after :meth:`finish`."""
        removed = 0
        for path in self.written:
            if path not in claimed:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)  # noqa: PTH108
                    removed += 1
        for directory in sorted(self._dirs, key=len, reverse=True):
            with contextlib.suppress(OSError):
                os.rmdir(directory)  # noqa: PTH106
        return removed

    # -- the thread ------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while self._member():
                pass
            self.reason = "complete"
        except _Stop as stop:
            self.reason = str(stop)
        except (OSError, zlib.error, struct.error, UnicodeDecodeError) as exc:
            self.reason = f"{type(exc).__name__}: {exc}"
        finally:
            self._source.close()
        log.debug(
            "prestaged %d files of %s (%s)", len(self.files), self.directory.name, self.reason
        )

    def _target(self, name: str) -> str | None:
        """Where member ``name`` is unpacked, or None when it is not ours to unpack."""
        if name.endswith("/") or check_member_path(name) is not None:
            return None
        if "__pycache__" in name.split("/")[:-1]:
            return None
        return os.path.join(self.directory, name)  # noqa: PTH118

    def _member(self) -> bool:
        source = self._source
        if source.read_exact(4) != _LOCAL:
            return False  # the central directory: every member has been seen
        (_version, flags, method, _time, _date, _crc, csize, usize, name_len, extra_len) = (
            _HEADER.unpack(source.read_exact(_HEADER.size))
        )
        raw_name = source.read_exact(name_len)
        extra = source.read_exact(extra_len)
        if flags & 0x1:
            raise _Stop("encrypted member")
        if method not in (_STORED, _DEFLATED):
            raise _Stop(f"compression method {method}")
        described = bool(flags & 0x8)
        zip64 = 0xFFFFFFFF in (csize, usize)
        if zip64:
            csize, usize = _zip64_sizes(extra, csize, usize)
        if described and method == _STORED:
            raise _Stop("stored member of unknown size")
        name = raw_name.decode("utf-8" if flags & 0x800 else "cp437")
        target = self._target(name)
        out = self._create(target) if target is not None else -1
        try:
            result = self._copy(out, method, None if described else csize)
        finally:
            if out >= 0:
                os.close(out)
        if described:
            self._skip_descriptor(zip64)
        if target is not None and out >= 0 and result is not None:
            self.files[target] = result
        return True

    def _create(self, target: str) -> int:
        parent = os.path.dirname(target)  # noqa: PTH120
        if parent not in self._dirs:
            for directory in _new_dirs(parent):
                os.mkdir(directory)  # noqa: PTH102
                self._dirs.add(directory)
            self._dirs.add(parent)
        try:
            fd = os.open(target, _CREATE, 0o666)
        except FileExistsError:
            # A name the archive holds twice: neither copy is taken.
            self.files.pop(target, None)
            return -1
        self.written.add(target)
        return fd

    def _copy(self, out: int, method: int, csize: int | None) -> PreFile | None:
        """Unpack one member's data into ``out`` (or nowhere, when it is -1)."""
        source = self._source
        if out < 0 and csize is not None:
            while csize > 0:  # not ours to unpack: skip its bytes
                csize -= len(source.read(min(CHUNK_SIZE, csize)))
            return None
        pieces = self._data(method, csize)
        try:
            if out < 0:  # of unknown size, so read through, but not kept
                hashed = copy_hashing(pieces, limit=self._limit - self._total)
            else:
                with open(out, "wb", buffering=0, closefd=False) as sink:
                    hashed = copy_hashing(pieces, sink, limit=self._limit - self._total)
        except TooLarge:
            raise _Stop("unpacked more than the archive could plausibly hold") from None
        self._total += hashed.size
        return PreFile(hashed.hasher.digest(), hashed.size) if out >= 0 else None

    def _data(self, method: int, csize: int | None) -> Iterator[bytes]:
        """One member's data, inflated if need be, ``csize`` bytes of the archive (None: up
        to the end of its deflate stream); what the stream leaves goes back to the source."""
        source = self._source
        inflate = zlib.decompressobj(-15) if method == _DEFLATED else None
        left = csize
        while left is None or left > 0:
            chunk = source.read(CHUNK_SIZE if left is None else min(CHUNK_SIZE, left))
            if left is not None:
                left -= len(chunk)
            data = chunk
            while True:
                if inflate is not None:
                    data = inflate.decompress(data, CHUNK_SIZE)
                yield data
                if inflate is None or not inflate.unconsumed_tail:
                    break
                data = inflate.unconsumed_tail
            if inflate is not None and inflate.eof:
                if inflate.unused_data:
                    source.unread(inflate.unused_data)
                    if left is not None:
                        left += len(inflate.unused_data)
                break
        if inflate is not None and not inflate.eof:
            raise _Stop("deflate data ends early")
        if left is not None and left != 0:
            raise _Stop("member data does not match its header's size")

    def _skip_descriptor(self, zip64: bool) -> None:
        head = self._source.read_exact(4)
        if head != _DESCRIPTOR:
            self._source.unread(head)
        # crc32 and the two sizes, of 8 bytes each after a zip64 header.
        self._source.read_exact(20 if zip64 else 12)


def _zip64_sizes(extra: bytes, csize: int, usize: int) -> tuple[int, int]:
    offset = 0
    while offset + 4 <= len(extra):
        kind, length = struct.unpack_from("<HH", extra, offset)
        if kind == _ZIP64_EXTRA:
            values = list(struct.unpack_from(f"<{length // 8}Q", extra, offset + 4))
            if usize == 0xFFFFFFFF and values:
                usize = values.pop(0)
            if csize == 0xFFFFFFFF and values:
                csize = values.pop(0)
            return csize, usize
        offset += 4 + length
    raise _Stop("zip64 sizes missing")


def _new_dirs(directory: str) -> list[str]:
    """``directory`` and its ancestors that do not exist yet, outermost first."""
    missing: list[str] = []
    while not os.path.isdir(directory):  # noqa: PTH112
        missing.append(directory)
        parent = os.path.dirname(directory)  # noqa: PTH120
        if parent == directory:
            break
        directory = parent
    return missing[::-1]
