"""Credentials for index and file URLs, resolved before any worker thread starts.

Sources, strongest first: credentials written into the index and find-links URLs the user gave
(command line or pip configuration), matched to a request by the longest URL prefix on the same
origin; then ``~/.netrc`` (or ``$NETRC``); then the ``keyring`` library when it is installed.
netrc and keyring are consulted once per origin in :meth:`CredentialStore.preload`, on the
calling thread, so no prompt can ever come from a worker. Afterwards the store is read-only,
which is what makes one instance safe to share between threads.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import requests
from requests.auth import AuthBase, HTTPBasicAuth
from requests.structures import CaseInsensitiveDict

from fetchplan._netrc import keyring_installed, netrc_credentials
from fetchplan._urls import Credentials, origin, split_credentials

__all__ = ["CredentialStore", "StoreAuth"]

log = logging.getLogger(__name__)

Origin = tuple[str, str, int | None]


class CredentialStore:
    """Looks up the credentials for a URL; never reveals them in ``repr`` or logs."""

    def __init__(self, urls: Iterable[str] = (), *, use_netrc: bool = True) -> None:
        self._prefixes: list[tuple[str, Credentials]] = []
        for url in urls:
            clean, creds = split_credentials(url)
            if creds is not None:
                self._prefixes.append((clean.rstrip("/") + "/", creds))
        # Longest prefix first, so the most specific index wins.
        self._prefixes.sort(key=lambda item: len(item[0]), reverse=True)
        self._by_origin: dict[Origin, Credentials | None] = {}
        self._use_netrc = use_netrc

    def __repr__(self) -> str:
        return f"CredentialStore({len(self._prefixes)} URL prefixes, {len(self._by_origin)} hosts)"

    def preload(self, urls: Iterable[str]) -> None:
        """Resolve netrc and keyring credentials for the origins of ``urls``, on this thread."""
        for url in urls:
            key = origin(url)
            if key in self._by_origin or self._from_prefix(url) is not None:
                continue
            self._by_origin[key] = self._lookup_slow(key)

    def lookup(self, url: str) -> Credentials | None:
        """The credentials to send with a request to ``url``, or None. Never blocks or prompts."""
        found = self._from_prefix(url)
        if found is not None:
            return found
        return self._by_origin.get(origin(url))

    def _from_prefix(self, url: str) -> Credentials | None:
        clean, embedded = split_credentials(url)
        if embedded is not None:
            return embedded
        for prefix, creds in self._prefixes:
            if clean.startswith(prefix) or clean.rstrip("/") + "/" == prefix:
                return creds
        # Same origin as a configured index (say, its /files/ path): use that index's login.
        for prefix, creds in self._prefixes:
            if origin(prefix) == origin(clean):
                return creds
        return None

    def _lookup_slow(self, key: Origin) -> Credentials | None:
        host = key[1]
        if self._use_netrc:
            found = netrc_credentials(host)
            if found is not None:
                return found
        return _keyring_lookup(f"{key[0]}://{host}", host)


def _keyring_lookup(service: str, host: str) -> Credentials | None:
    if not keyring_installed():
        return None
    try:
        import keyring  # type: ignore[import-not-found, unused-ignore]

        cred = keyring.get_credential(service, None) or keyring.get_credential(host, None)
    except Exception as exc:  # noqa: BLE001 - a broken keyring backend must not stop a run
        log.debug("keyring lookup for %s failed: %s", host, exc)
        return None
    if cred is None:
        return None
    return str(cred.username), str(cred.password)


class StoreAuth(AuthBase):
    """requests auth that asks a :class:`CredentialStore` for each request's URL.

    requests removes the Authorization header itself when a redirect leaves the origin
    (``Session.rebuild_auth``), and this object is not consulted again for the new URL.
    """

    def __init__(self, store: CredentialStore) -> None:
        self.store = store

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if request.url is None or "Authorization" in request.headers:
            return request
        value = self.header_for(request.url)
        if value is not None:
            request.headers["Authorization"] = value
        return request

    def header_for(self, url: str) -> str | None:
        """The ``Authorization`` value for ``url`` (HTTP Basic), or None without credentials."""
        creds = self.store.lookup(url)
        if creds is None:
            return None
        request = requests.PreparedRequest()
        request.headers = CaseInsensitiveDict()
        HTTPBasicAuth(*creds)(request)
        return str(request.headers["Authorization"])
