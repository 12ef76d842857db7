"""What the workers of one run share, and the errors they end with.

:class:`Context` carries the read-only settings and the thread-safe services (HTTP session,
credentials, checkpoint, cache, progress); :meth:`Context.interrupt` stops every worker soon,
waking those blocked in a socket read. A mirror is any :class:`Mirror`, so this module needs
none of the modules that use it.
"""

from __future__ import annotations

import contextlib
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import requests
from requests.adapters import HTTPAdapter

from fetchplan import __version__
from fetchplan._connections import pool_classes, watch_proxied
from fetchplan.auth import CredentialStore
from fetchplan.cache import ArtifactCache
from fetchplan.errors import FetchplanError
from fetchplan.executor.checkpoint import CheckpointStore
from fetchplan.executor.limits import TransferLimits
from fetchplan.executor.progress import ProgressState
from fetchplan.executor.retry import RetryPolicy
from fetchplan.executor.verified import FileTiming

if TYPE_CHECKING:
    from fetchplan.schemas.plan import Artifact

__all__ = [
    "ArtifactFailed",
    "Cancelled",
    "Context",
    "FileTiming",
    "Mirror",
    "SocketRegistry",
    "build_session",
]


class ArtifactFailed(FetchplanError):
    """One artifact could not be obtained; ``str()`` names it and says why."""

    def __init__(self, destination: str, reason: str) -> None:
        self.destination = destination
        self.reason = reason
        self.timing: FileTiming | None = None
        super().__init__(f"{destination}: {reason}")


class Cancelled(FetchplanError):
    """The run was interrupted; partial files and the checkpoint were kept."""

    exit_code = 130


class Mirror(Protocol):
    """Where files are looked for before their own URLs (a
    :class:`~fetchplan.executor.mirror.MirrorIndex`)."""

    @property
    def url(self) -> str:
        """The mirror's URL, without credentials."""
        ...

    def locate(self, artifact: Artifact, ctx: Context) -> str | None:
        """The URL where the mirror offers ``artifact``'s file, or None."""
        ...


class SocketRegistry:
    """Sockets being read, so an interrupt can wake workers blocked in ``recv``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()

    def add(self, sock: socket.socket | None) -> None:
        if sock is not None:
            with self._lock:
                self._sockets.add(sock)

    def discard(self, sock: socket.socket | None) -> None:
        if sock is not None:
            with self._lock:
                self._sockets.discard(sock)

    def abort_all(self) -> None:
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


@dataclass(kw_only=True)
class Context:
    """What every worker shares: read-only settings plus thread-safe services."""

    destination: Path
    session: requests.Session
    credentials: CredentialStore
    checkpoint: CheckpointStore
    cache: ArtifactCache | None
    retry: RetryPolicy
    limits: TransferLimits
    progress: ProgressState
    trusted_hosts: frozenset[str] = frozenset()
    mirror: Mirror | None = None
    """Where to look for each file before its own URL."""
    offline: bool = False
    """No request may leave the machine: a file not found locally fails."""
    seeds: tuple[Path, ...] = ()
    """Directories that may already hold the plan's files under their destination names."""
    plan_dir: Path = Path()
    """The plan file's directory: local archives and directories are relative to it."""
    cancel: threading.Event = field(default_factory=threading.Event)
    random: Callable[[], float] = random.random
    clock_origin: float = field(default_factory=time.monotonic)
    sockets: SocketRegistry = field(default_factory=SocketRegistry)

    @property
    def partial_dir(self) -> Path:
        return self.destination / ".fetchplan" / "partial"

    def partial_path(self, destination: str) -> Path:
        """Where the bytes of the artifact bound for ``destination`` arrive while it downloads."""
        return self.partial_dir / f"{destination}.part"

    def now(self) -> float:
        return time.monotonic() - self.clock_origin

    def raise_if_cancelled(self) -> None:
        """Raise :class:`Cancelled` once the run is interrupted (the cancel hook of copies)."""
        if self.cancel.is_set():
            raise Cancelled("interrupted")

    def interrupt(self) -> None:
        """Stop every worker soon: set the cancel flag and wake blocked reads."""
        self.cancel.set()
        self.sockets.abort_all()


class _Adapter(HTTPAdapter):
    """requests' adapter whose connections keep to the deadlines of :mod:`fetchplan._deadline`
    (a server that trickles its headers cannot hold a try past them)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = pool_classes()

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        return watch_proxied(super().proxy_manager_for(proxy, **kwargs), proxy)


def build_session(pool_size: int, hosts: int) -> requests.Session:
    """One keep-alive connection pool for all workers; retries are ours, not urllib3's."""
    session = requests.Session()
    adapter = _Adapter(
        pool_connections=max(hosts, 1) + 2, pool_maxsize=max(pool_size, 1), max_retries=0
    )
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers.update(
        {
            "User-Agent": f"fetchplan/{__version__}",
            "Accept-Encoding": "identity",
            "Accept": "*/*",
        }
    )
    return session
