"""Keep glibc's allocator from holding memory a plan freed long ago (peak RSS).

A plan reads hundreds of index pages of up to a few MB each on a pool of worker threads.
With glibc's defaults two things make the process's resident size grow far past what it
holds alive (a plan of the benchmark's large set: 165 MB resident for about 80 MB of live
Python objects):

* every thread that allocates gets an arena of its own, up to eight per core, and each
  arena keeps the holes its freed page bodies leave;
* an allocation past the ``mmap`` threshold (128 kB) is mapped on its own and given back
  to the system when freed, but freeing one *raises* the threshold to its size, so every
  later page body comes from an arena, and stays there as a hole.

:func:`tune` caps the arenas and fixes the threshold (which turns its raising off), through
``mallopt(3)``, before any thread starts. Elsewhere (musl, macOS, Windows) it does nothing.
Only the command-line entry point calls it: it changes the whole process.
"""

from __future__ import annotations

import ctypes
import sys

__all__ = ["tune"]

# mallopt(3) parameters (malloc.h).
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8

ARENA_MAX = 2
MMAP_THRESHOLD = 128 * 1024


def tune() -> bool:
    """Cap glibc's arenas and fix its ``mmap`` threshold; whether that was done."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    # gnu_get_libc_version exists only in glibc: musl has a mallopt that does nothing.
    if not hasattr(libc, "gnu_get_libc_version"):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    arenas: int = mallopt(_M_ARENA_MAX, ARENA_MAX)
    threshold: int = mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    return arenas == 1 and threshold == 1
