"""Credentials from ``~/.netrc`` (or ``$NETRC``), and whether ``keyring`` could supply more.

Standard library only, so that the planner's entry (:mod:`fetchplan.planner.api`) can ask before
the HTTP stack is imported; :mod:`fetchplan.auth` reads credentials through it.
"""

from __future__ import annotations

import importlib.util
import logging
import netrc
import os
from pathlib import Path

from fetchplan._urls import Credentials

__all__ = ["keyring_installed", "netrc_credentials"]

log = logging.getLogger(__name__)


def netrc_credentials(host: str, *, warn: bool = True) -> Credentials | None:
    """The login and password netrc gives ``host`` (its ``default`` entry included), or None;
    an unreadable or malformed file gives None, with a warning unless ``warn`` is false."""
    path = Path(os.environ["NETRC"]) if "NETRC" in os.environ else Path.home() / ".netrc"
    if not path.is_file():
        return None
    try:
        entry = netrc.netrc(str(path)).authenticators(host)
    except (netrc.NetrcParseError, OSError) as exc:
        if warn:
            log.warning("ignoring %s: %s", path, exc)
        return None
    if entry is None:
        return None
    login, _account, password = entry
    return login, password or ""


def keyring_installed() -> bool:
    """Whether the ``keyring`` library can be imported (without importing it)."""
    return importlib.util.find_spec("keyring") is not None
