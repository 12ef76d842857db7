"""URL helpers shared by every stage: credentials kept out of plans and logs, origins, loopback."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import unquote, urlsplit, urlunsplit

__all__ = [
    "Credentials",
    "host_of",
    "is_loopback",
    "is_secure_or_trusted",
    "origin",
    "parses",
    "redact",
    "split_credentials",
]

Credentials = tuple[str, str]

_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@")


def split_credentials(url: str) -> tuple[str, Credentials | None]:
    """Return ``url`` without its user-info part, and the credentials it carried (if any)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    clean = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    user = unquote(parts.username or "")
    password = unquote(parts.password or "")
    return clean, (user, password)


def redact(text: str) -> str:
    """Replace every ``scheme://user:password@`` in ``text`` with ``scheme://***@``."""
    return _USERINFO.sub(r"\g<scheme>***@", text)


def host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def origin(url: str) -> tuple[str, str, int | None]:
    """Scheme, host and effective port: two URLs may share credentials only if these match."""
    parts = urlsplit(url)
    port = parts.port
    if port is None:
        port = {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme.lower(), (parts.hostname or "").lower(), port


def parses(url: str) -> bool:
    """Whether ``url``'s host and port parse: ``http://[abc/`` and ``https://h:port/`` make
    every URL library raise, so readers refuse them up front."""
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises for a port that is not a number from 0 to 65535
        if "[" in parts.netloc or "]" in parts.netloc:
            host = parts.netloc.rpartition("@")[2]
            if not host.startswith("["):
                return False
            ipaddress.IPv6Address(host[1:].partition("]")[0].partition("%")[0])
    except ValueError:
        return False
    return True


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (IPv4 127/8, IPv6 ::1)."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_secure_or_trusted(url: str, trusted_hosts: frozenset[str] | set[str]) -> bool:
    """pip's rule: https and file always; plain http only for loopback or a trusted host.

    A trusted host is given as ``host`` or ``host:port``, as with pip's ``--trusted-host``.
    """
    parts = urlsplit(url)
    if parts.scheme in ("https", "file"):
        return True
    if parts.scheme != "http":
        return False
    host = (parts.hostname or "").lower()
    if is_loopback(host):
        return True
    with_port = f"{host}:{parts.port}" if parts.port is not None else host
    return host in trusted_hosts or with_port in trusted_hosts
