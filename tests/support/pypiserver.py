"""pypiserver (2.x) in a subprocess, serving a directory of wheels and sdists on loopback.

``PypiServer(packages, log_dir)`` runs ``python -m pypiserver run`` on a free port of
``127.0.0.1`` with ``--disable-fallback`` (unknown projects 404 instead of redirecting to a
public index), no authentication, ``--hash-algo sha256`` and the ``simple-dir`` backend (the
directory is re-listed on every request, so files added later show up). It is answering
``/simple/`` when the constructor returns; failure to start raises ``RuntimeError`` with its log.

pypiserver serves PEP 503 HTML only (no PEP 691 JSON, no PEP 658 metadata files), from
``/simple/<project>/`` with links to ``/packages/<filename>#sha256=...``.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path

from tests.support.servers import ProcessServer

__all__ = ["PypiServer"]

_START_ATTEMPTS = 3


class PypiServer(ProcessServer):
    """A running pypiserver over ``packages``; see the module docstring."""

    def __init__(self, packages: Path, log_dir: Path, start_timeout: float = 20.0) -> None:
        self.packages = Path(packages).resolve()
        self.log_path = Path(log_dir).resolve() / "pypiserver.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)

        def launch() -> subprocess.Popen[bytes]:
            argv = [
                sys.executable,
                "-m",
                "pypiserver",
                "run",
                "-p",
                str(self.port),
                "-i",
                "127.0.0.1",
                "--disable-fallback",
                "-a",
                ".",
                "-P",
                ".",
                "--hash-algo",
                "sha256",
                "--backend",
                "simple-dir",
                "--server",
                "wsgiref",
                str(self.packages),
            ]
            with self.log_path.open("ab") as log:
                return subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
                )

        status = self._start("pypiserver", launch, timeout=start_timeout, attempts=_START_ATTEMPTS)
        if status != 200:
            self.close()
            raise RuntimeError(f"pypiserver answered {status} on /simple/:\n{self._log()}")

    def _log(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-4000:]
        return ""
