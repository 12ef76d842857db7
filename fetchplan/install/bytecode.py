"""Byte-compiling installed modules with the target interpreter, as pip does after installing.

The target compiles its own bytecode (its magic number and cache tag may differ from ours), in
one subprocess per core, each given its share of the files on stdin.

The subprocess runs nothing of the environment's: ``-I`` keeps out ``PYTHON*`` variables, the
user's site directory and the current directory, and ``-S`` keeps out :mod:`site`, so no
``.pth`` file (of the wheels just installed or any other) and no ``sitecustomize`` runs.
``compileall`` needs only the standard library, which ``-S`` leaves on the path.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

from fetchplan.install.errors import InstallError
from fetchplan.install.interpreter import NO_SITE, TargetInterpreter

__all__ = ["compile_files"]

log = logging.getLogger(__name__)

_COMPILE = r"""
import compileall, json, sys
failed = [f for f in json.load(sys.stdin) if not compileall.compile_file(f, force=True, quiet=2)]
json.dump(failed, sys.stdout)
"""

# Below this many files one process is quicker than starting a second interpreter.
_FILES_PER_PROCESS = 200
_TIMEOUT = 900.0


def compile_files(target: TargetInterpreter, files: Sequence[Path]) -> int:
    """Compile ``files`` to bytecode with ``target``; return how many compiled.

    A file that does not compile (a syntax error in a wheel) is logged and skipped, as pip
    does. Raises :class:`InstallError` when the interpreter itself fails.
    """
    if not files or target.cache_tag is None:
        return 0
    workers = max(1, min(os.cpu_count() or 1, len(files) // _FILES_PER_PROCESS))
    shares = [[str(f) for f in files[i::workers]] for i in range(workers)]
    argv = [target.executable, *NO_SITE, "-c", _COMPILE]
    processes = [
        subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in shares
    ]
    failed: list[str] = []
    for process, share in zip(processes, shares, strict=True):
        try:
            out, err = process.communicate(json.dumps(share), timeout=_TIMEOUT)
        except subprocess.TimeoutExpired as exc:
            process.kill()
            process.communicate()
            raise InstallError(f"{target.executable}: byte-compiling timed out") from exc
        if process.returncode != 0:
            last = (err.strip().splitlines() or ["no output"])[-1]
            raise InstallError(f"{target.executable}: byte-compiling failed: {last}")
        failed.extend(json.loads(out))
    for path in failed:
        log.warning("%s: does not compile; installed without bytecode", path)
    return len(files) - len(failed)
