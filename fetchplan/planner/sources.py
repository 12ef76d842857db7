"""Where the planner looks: index and find-links locations, and how several indexes combine.

Light on purpose (no HTTP stack, no resolver): :mod:`fetchplan.planner.api` works out the
sources before it imports the rest of the planner, so that connections to the index can open
while those imports run (:mod:`fetchplan.planner.preconnect`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Literal
from urllib.request import pathname2url

from fetchplan import __version__
from fetchplan._urls import split_credentials

__all__ = [
    "ACCEPT",
    "HTML_TYPE",
    "JSON_TYPE",
    "SESSION_HEADERS",
    "USER_AGENT",
    "IndexSource",
    "IndexStrategy",
    "SourceKind",
    "source_for",
]

SourceKind = Literal["index", "find-links"]

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
HTML_TYPE = "application/vnd.pypi.simple.v1+html"
ACCEPT = f"{JSON_TYPE}, {HTML_TYPE};q=0.2, text/html;q=0.01"
"""What a project page is asked for with: JSON preferred (PEP 691), HTML accepted from old
servers that know no content negotiation."""

USER_AGENT = f"fetchplan/{__version__}"
SESSION_HEADERS: dict[str, str] = {
    "User-Agent": USER_AGENT,
    "Accept-Encoding": "gzip, deflate",
    "Accept": "*/*",
    "Connection": "keep-alive",
}
"""Every planner request's headers (a request's own replace them by name): the planner's HTTP
session and the pages requested early (:mod:`fetchplan.planner.preconnect`) send the same."""


@dataclass(frozen=True, slots=True)
class IndexSource:
    """An index (``<url>/<project>/`` pages) or a find-links location, without credentials."""

    url: str
    kind: SourceKind = "index"

    def page_url(self, name: str) -> str:
        """The URL of project ``name``'s page (``name`` normalised) on this index."""
        return f"{self.url.rstrip('/')}/{name}/"


def source_for(location: str, kind: SourceKind) -> IndexSource:
    """Normalise a user-given index URL or find-links location (a path is made a file URL)."""
    clean, _creds = split_credentials(location)
    if "://" not in clean:
        clean = "file://" + pathname2url(str(Path(clean).resolve()))
    if kind == "index" and not clean.endswith("/"):
        clean += "/"
    return IndexSource(url=clean, kind=kind)


class IndexStrategy(Enum):
    """Which indexes' files a project may come from.

    Find-links locations are local or explicitly named by the user, so their files are always
    considered next to those of the index(es) the strategy picks.
    """

    FIRST_INDEX = "first-index"
    """Only the first index that has the project (protects against dependency confusion)."""
    UNSAFE_BEST_MATCH = "unsafe-best-match"
    """Every index, best version wins (pip's behaviour)."""
