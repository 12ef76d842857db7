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
from types import TracebackType

from tests.support.servers import free_port, wait_for_http

__all__ = ["PypiServer"]

_START_ATTEMPTS = 3


class PypiServer:
    """A running pypiserver over ``packages``; see the module docstring."""

    def __init__(self, packages: Path, log_dir: Path, start_timeout: float = 20.0) -> None:
        self.packages = Path(packages).resolve()
        self.log_path = Path(log_dir).resolve() / "pypiserver.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        problems: list[str] = []
        for _ in range(_START_ATTEMPTS):
            self.port = free_port()
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
                self._proc = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
                )
            proc = self._proc
            try:
                status = wait_for_http(self.index_url, start_timeout, process=proc)
            except RuntimeError as exc:
                self._stop()
                log_text = self._log()
                problems.append(f"{exc}\n{log_text}")
                if "Address already in use" not in log_text:
                    break
                continue
            if status != 200:
                self._stop()
                raise RuntimeError(f"pypiserver answered {status} on /simple/:\n{self._log()}")
            return
        raise RuntimeError("pypiserver failed to start:\n" + "\n".join(problems))

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def index_url(self) -> str:
        """The simple index: ``http://127.0.0.1:PORT/simple/``."""
        return f"{self.url}/simple/"

    def close(self) -> None:
        """Stop the server and wait for it (idempotent)."""
        self._stop()

    def __enter__(self) -> PypiServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _stop(self) -> None:
        proc = self._proc
        if proc is None:
            return
        self._proc = None
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def _log(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-4000:]
        return ""
