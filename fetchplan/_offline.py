"""Offline mode, enforced by construction: a requests session that cannot open a socket.

Every command that could touch the network takes ``--offline``. Rather than trusting each code
path to check a flag, an offline run hands its code a session whose only adapter refuses every
request before any connection is attempted; whatever slips through fails with a message naming
the URL it wanted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests
from requests.adapters import BaseAdapter

from fetchplan import __version__
from fetchplan._urls import redact

__all__ = ["NetworkDisabled", "OfflineAdapter", "disable_network", "offline_session"]


class NetworkDisabled(requests.RequestException):
    """A request was attempted while offline. Not a ``ConnectionError``: nothing retries it."""


class OfflineAdapter(BaseAdapter):
    """A transport adapter that refuses every request."""

    def send(  # noqa: PLR0917 - the signature requests calls it with
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float, float] | tuple[float, None] | None = None,
        verify: bool | str = True,
        cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        raise NetworkDisabled(
            f"offline: refusing to fetch {redact(request.url or '?')}", request=request
        )

    def close(self) -> None:
        return None


def disable_network(session: requests.Session) -> requests.Session:
    """Make ``session`` refuse every request, whatever adapters it had; return it."""
    for adapter in session.adapters.values():
        adapter.close()
    session.adapters.clear()
    # The empty prefix matches every URL, so no more specific adapter can win.
    session.mount("", OfflineAdapter())
    return session


def offline_session(headers: Mapping[str, Any] | None = None) -> requests.Session:
    """A new session that refuses every request."""
    session = requests.Session()
    session.headers.update({"User-Agent": f"fetchplan/{__version__}", **(headers or {})})
    return disable_network(session)
