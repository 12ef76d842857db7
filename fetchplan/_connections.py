"""urllib3 connections that keep to the deadlines of :mod:`fetchplan._deadline`."""

from __future__ import annotations

import socket
from typing import Any

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from fetchplan._deadline import watch

__all__ = ["DeadlineConnection", "DeadlineSecureConnection", "pool_classes", "watch_proxied"]


class _Watched:
    """Connection methods that put the socket under the thread's deadline while a request is
    sent and its headers awaited, then under the request's own."""

    sock: socket.socket | None

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        watch(self.sock, headers=True)

    def request(self, *args: Any, **kwargs: Any) -> None:
        watch(self.sock, headers=True)
        super().request(*args, **kwargs)  # type: ignore[misc]

    def getresponse(self) -> Any:
        response = super().getresponse()  # type: ignore[misc]
        watch(self.sock, headers=False)
        return response


class DeadlineConnection(_Watched, HTTPConnection):
    """urllib3's HTTP connection under :func:`deadline`."""


class DeadlineSecureConnection(_Watched, HTTPSConnection):
    """urllib3's HTTPS connection under :func:`deadline`."""


def pool_classes(
    http: type[HTTPConnection] = DeadlineConnection,
    https: type[HTTPSConnection] = DeadlineSecureConnection,
) -> dict[str, type[HTTPConnectionPool]]:
    """urllib3 pool classes (for a pool manager's ``pool_classes_by_scheme``) whose
    connections are ``http`` and ``https``."""

    class Pool(HTTPConnectionPool):
        ConnectionCls = http

    class SecurePool(HTTPSConnectionPool):
        ConnectionCls = https

    return {"http": Pool, "https": SecurePool}


def watch_proxied(manager: Any, proxy: str) -> Any:
    """``manager`` (a requests adapter's proxy manager for ``proxy``) with connections under
    :func:`~fetchplan._deadline.deadline` too; a SOCKS proxy's own connections are left as
    they are."""
    if not proxy.lower().startswith("socks"):
        manager.pool_classes_by_scheme = pool_classes()
    return manager
