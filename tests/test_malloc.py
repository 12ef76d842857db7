"""The allocator tuning the command line applies before planning (fetchplan._malloc)."""

from __future__ import annotations

import platform
import subprocess
import sys


def test_tune_applies_on_glibc_and_does_nothing_elsewhere() -> None:
    # In a process of its own: the setting is process-wide.
    out = subprocess.run(
        [sys.executable, "-c", "from fetchplan import _malloc; print(_malloc.tune())"],
        capture_output=True,
        text=True,
        check=True,
    )
    glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert out.stdout.strip() == str(glibc)


_ARENAS = """
import ctypes, re, sys, tempfile, threading
from fetchplan import _malloc
if sys.argv[1] == "tuned":
    _malloc.tune()
alive = threading.Barrier(8)
def work():
    block = bytes(4096)
    alive.wait()  # all eight hold an allocation at once: none hands its arena on
    for n in range(50):
        block = bytes(2_000_000 + n)
        assert len(block) == 2_000_000 + n
threads = [threading.Thread(target=work) for _ in range(8)]
[t.start() for t in threads]
[t.join() for t in threads]
libc = ctypes.CDLL(None)
libc.fopen.restype = ctypes.c_void_p
libc.fopen.argtypes = (ctypes.c_char_p, ctypes.c_char_p)
libc.malloc_info.argtypes = (ctypes.c_int, ctypes.c_void_p)
libc.fclose.argtypes = (ctypes.c_void_p,)
with tempfile.NamedTemporaryFile() as out:
    stream = libc.fopen(out.name.encode(), b"w")
    assert libc.malloc_info(0, stream) == 0
    libc.fclose(stream)
    print(len(re.findall(r"<heap nr=", open(out.name).read())))
"""


def _arenas(mode: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", _ARENAS, mode], capture_output=True, text=True, check=True
    )
    return int(done.stdout)


def test_tuned_threads_share_two_arenas_where_untuned_ones_take_their_own() -> None:
    """What :func:`fetchplan._malloc.tune` is for, seen in glibc's own account
    (``malloc_info``): eight threads alive at once that allocate 2 MB blocks get arenas of
    their own by default, and share at most two once tuned; and their allocations still work."""
    assert platform.libc_ver()[0] == "glibc", "these tests run where fetchplan tunes glibc"
    assert _arenas("default") > 2
    assert _arenas("tuned") <= 2
