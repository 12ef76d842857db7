"""Placing a file of the wheel store into an environment: clone, hard link, copy or symlink.

The modes are uv's (``--link-mode``). ``auto`` (the default) clones where the file system can
copy on write (``FICLONE`` on Linux: btrfs, XFS), else hard links, else copies. A method the
two places cannot share (another file system, a file system without the call) is given up
for the rest of the install after its first failure and the next one is tried; a failure
that concerns one file only (too many links to it) falls back for that file alone. Copy, the
last resort, raises.

A clone or a copy is the environment's own file. A hard link *is* the store's file: editing
it in the environment edits the store (and every environment linked from it). A symlink
points into the store.
"""

from __future__ import annotations

import errno
import logging
import os
import sys
import threading
from collections import Counter
from typing import Literal, get_args

__all__ = ["LINK_MODES", "LinkMode", "Linker", "Method"]

log = logging.getLogger(__name__)

LinkMode = Literal["auto", "clone", "hardlink", "copy", "symlink"]
Method = Literal["clone", "hardlink", "copy", "symlink"]
LINK_MODES: tuple[LinkMode, ...] = get_args(LinkMode)

# _IOW(0x94, 9, int): ioctl_ficlone(2).
_FICLONE = 0x40049409
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
_READ = os.O_RDONLY | getattr(os, "O_BINARY", 0)

_CHAINS: dict[LinkMode, tuple[Method, ...]] = {
    "auto": ("clone", "hardlink", "copy"),
    "clone": ("clone", "copy"),
    "hardlink": ("hardlink", "copy"),
    "symlink": ("symlink", "copy"),
    "copy": ("copy",),
}
# The method cannot work between these two places: no use trying it for the next file.
_UNSUPPORTED = frozenset(
    {
        errno.EXDEV,
        errno.EPERM,
        errno.EACCES,
        errno.EOPNOTSUPP,
        errno.ENOTSUP,
        errno.ENOTTY,
        errno.EINVAL,
        errno.ENOSYS,
        errno.EBADF,
    }
)


def _clone(source: str, target: str) -> None:
    if not sys.platform.startswith("linux"):
        raise OSError(errno.ENOTSUP, "no FICLONE here", target)
    import fcntl

    src = os.open(source, _READ)
    try:
        dst = os.open(target, _CREATE, os.fstat(src).st_mode & 0o777)
        try:
            fcntl.ioctl(dst, _FICLONE, src)
        except BaseException:
            os.close(dst)
            os.unlink(target)  # noqa: PTH108
            raise
        os.close(dst)
    finally:
        os.close(src)


def _copy(source: str, target: str) -> None:
    src = os.open(source, _READ)
    try:
        st = os.fstat(src)
        dst = os.open(target, _CREATE, st.st_mode & 0o777)
        try:
            _copy_data(src, dst, st.st_size)
        except BaseException:
            os.close(dst)
            os.unlink(target)  # noqa: PTH108
            raise
        os.close(dst)
    finally:
        os.close(src)


def _copy_data(src: int, dst: int, size: int) -> None:
    left = size
    if hasattr(os, "sendfile"):
        try:
            while left > 0:
                sent = os.sendfile(dst, src, size - left, left)
                if sent == 0:
                    break
                left -= sent
        except OSError as exc:
            if exc.errno not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP) or left != size:
                raise
        else:
            return
    while chunk := os.read(src, 1 << 20):
        view = memoryview(chunk)
        while view:
            view = view[os.write(dst, view) :]


def _hardlink(source: str, target: str) -> None:
    os.link(source, target)


def _symlink(source: str, target: str) -> None:
    os.symlink(os.path.abspath(source), target)  # noqa: PTH100, PTH211


_METHODS = {"clone": _clone, "hardlink": _hardlink, "copy": _copy, "symlink": _symlink}


class Linker:
    """Places files by ``mode``, remembering which methods failed; safe across threads.

    :attr:`used` counts the files placed by each method, so a caller (and a test) can tell a
    fallback happened.
    """

    def __init__(self, mode: LinkMode = "auto") -> None:
        if mode not in _CHAINS:
            raise ValueError(f"unknown link mode {mode!r}")
        self.mode = mode
        self._chain = _CHAINS[mode]
        self._first = 0
        self._lock = threading.Lock()
        self.used: Counter[Method] = Counter()

    def _gave_up(self, method: Method, exc: OSError) -> None:
        following = self._chain[self._chain.index(method) + 1]
        # Asked for by name, a fallback is worth a warning (as uv gives); by default it is
        # what ``auto`` means.
        level = logging.WARNING if self.mode == method else logging.DEBUG
        log.log(
            level,
            "cannot %s from the wheel store into the environment (%s); using %s instead "
            "(--link-mode %s skips trying)",
            method,
            exc.strerror or exc,
            following,
            following,
        )

    def link(self, source: str, target: str) -> Method:
        """Place the store file ``source`` at ``target`` (which must not exist)."""
        start = self._first
        for index in range(start, len(self._chain)):
            method = self._chain[index]
            try:
                _METHODS[method](source, target)
            except FileExistsError:
                raise
            except OSError as exc:
                if method == "copy":
                    raise
                if exc.errno in _UNSUPPORTED:
                    with self._lock:
                        given_up = self._first <= index
                        self._first = max(self._first, index + 1)
                    if given_up:
                        self._gave_up(method, exc)
                continue
            with self._lock:
                self.used[method] += 1
            return method
        raise AssertionError("copy is the last method of every chain")  # pragma: no cover
