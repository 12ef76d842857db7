"""The metadata of every file the resolver considers, for one run: fetched once however many
resolutions read it (:mod:`.metadata` does the fetching, cheapest way first), and kept in the
metadata cache, by the sha256 the index gives, for later runs.

A cache entry is a JSON line of facts learnt on the way (the file's size, which spares a HEAD
request), then the metadata file as it is; an entry that does not parse, or whose metadata no
longer matches what the index says, is a miss. sdists go to :class:`.sdist.SdistPlanner`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path

import requests
from packaging.utils import NormalizedName, canonicalize_name

from fetchplan._fs import sha256_file
from fetchplan._parse import load_json
from fetchplan.cache import ArtifactCache, MetadataCache
from fetchplan.errors import FileFormatError
from fetchplan.planner import metadata as md
from fetchplan.planner.candidates import DistMetadata
from fetchplan.planner.context import Memo
from fetchplan.planner.index import Link, file_url_path
from fetchplan.planner.sdist import SdistPlanner

__all__ = ["metadata_fetcher", "remember_size"]

log = logging.getLogger(__name__)


def metadata_fetcher(
    session: requests.Session,
    cache: ArtifactCache | None,
    dest_dir: Path,
    timeout: float,
    sdists: Callable[[], SdistPlanner],
    *,
    metadata_cache: MetadataCache | None = None,
    refresh: Callable[[NormalizedName], bool] = lambda _name: False,
) -> Callable[[Link], DistMetadata]:
    """Metadata of a file, fetched once per run whatever the number of resolutions using it,
    and kept in ``metadata_cache`` (by the sha256 the index gives) for later runs.

    The metadata of a shared file counts again in ``--timings`` metadata totals for each
    resolution that reads it; requests and bytes on the wire are counted once.
    """
    memo: Memo[str, DistMetadata] = Memo()

    def local_files(link: Link) -> tuple[str | None, list[Path]]:
        sha256 = link.sha256
        local: list[Path] = []
        if link.is_local:
            path = file_url_path(link.url)
            local.append(path)
            if sha256 is None and path.is_file():
                # A local file without an index hash: hashing it costs no download.
                sha256 = sha256_file(path)
        present = dest_dir / link.filename
        if present.is_file():
            local.append(present)
        return sha256, local

    def fetch_wheel(link: Link) -> DistMetadata:
        known = link.sha256
        if metadata_cache is not None and known is not None and not refresh(link.name):
            cached = _cached_metadata(metadata_cache, link, known)
            if cached is not None:
                return cached
        sha256, local = local_files(link)
        fetched = md.wheel_metadata(
            session,
            url=link.url,
            filename=link.filename,
            sha256=sha256,
            metadata_url=link.metadata_url,
            metadata_sha256=link.metadata_sha256,
            local_files=local,
            cache=cache,
            timeout=timeout,
        )
        if metadata_cache is not None and known is not None:
            metadata_cache.put(link.index, known, _metadata_entry(fetched))
        return _dist_metadata(fetched)

    def fetch(link: Link) -> DistMetadata:
        if link.kind == "wheel":
            return memo.get(link.url, lambda: fetch_wheel(link))
        present = dest_dir / link.filename
        return sdists().metadata(link, [present] if present.is_file() else [])

    return fetch


def _metadata_entry(fetched: md.FetchedMetadata) -> bytes:
    """What the metadata cache keeps of ``fetched``: a JSON line of facts learnt on the way
    (the file's size, which spares a HEAD request), then the metadata file as it is."""
    size = None if fetched.source is md.MetadataSource.PEP658 else fetched.total_size
    return json.dumps({"total_size": size}).encode("utf-8") + b"\n" + fetched.raw


def remember_size(cache: MetadataCache, link: Link, sha256: str, size: int) -> None:
    """Add ``size`` to the metadata cache's entry of ``link`` (if it has one)."""
    entry = cache.get(link.index, sha256, count=False)
    if entry is None:
        return
    head, _, raw = entry.partition(b"\n")
    try:
        facts = load_json(head, "metadata cache entry")
    except FileFormatError:
        return
    if not isinstance(facts, dict) or facts.get("total_size") == size:
        return
    facts["total_size"] = size
    cache.put(link.index, sha256, json.dumps(facts).encode("utf-8") + b"\n" + raw, what="sizes")


def _cached_metadata(cache: MetadataCache, link: Link, sha256: str) -> DistMetadata | None:
    """``link``'s metadata from ``cache``, or None (absent, or not what the index now says)."""
    entry = cache.get(link.index, sha256)
    if entry is None:
        return None
    head, _, raw = entry.partition(b"\n")
    try:
        facts = load_json(head, "metadata cache entry")
        total_size = facts["total_size"]
        if total_size is not None and not isinstance(total_size, int):
            raise TypeError("total_size is not an integer")
        if link.metadata_sha256 is not None and (
            hashlib.sha256(raw).hexdigest() != link.metadata_sha256
        ):
            raise ValueError("the index now gives another sha256 for the metadata file")
        parsed = md.parse_metadata(
            raw, where=link.filename, project=str(link.name), version=str(link.version)
        )
    except (ValueError, KeyError, TypeError, FileFormatError, md.MetadataError) as exc:
        log.debug("%s: cached metadata not used: %s", link.filename, exc)
        return None
    fetched = md.FetchedMetadata(
        metadata=parsed,
        raw=raw,
        source=md.MetadataSource.CACHE,
        requests=0,
        bytes_received=0,
        total_size=total_size,
        sha256=None,
        cached_path=None,
    )
    return _dist_metadata(fetched)


def _dist_metadata(fetched: md.FetchedMetadata) -> DistMetadata:
    meta = fetched.metadata
    return DistMetadata(
        name=canonicalize_name(meta.name),
        version=meta.version,
        requires_dist=tuple(meta.requires_dist or ()),
        requires_python=meta.requires_python,
        provides_extra=frozenset(canonicalize_name(e) for e in meta.provides_extra or ()),
        source=fetched.source.value,
        requests=fetched.requests,
        bytes_received=fetched.bytes_received,
        total_size=fetched.total_size,
        sha256=fetched.sha256,
        json=md.metadata_json(fetched.raw),
    )
