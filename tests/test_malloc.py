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


def test_a_tuned_process_still_allocates_and_frees_large_blocks() -> None:
    script = (
        "from fetchplan import _malloc\n"
        "import threading\n"
        "_malloc.tune()\n"
        "def work():\n"
        "    for n in range(200):\n"
        "        block = bytes(2_000_000 + n)\n"
        "        assert len(block) == 2_000_000 + n\n"
        "threads = [threading.Thread(target=work) for _ in range(8)]\n"
        "[t.start() for t in threads]\n"
        "[t.join() for t in threads]\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"
