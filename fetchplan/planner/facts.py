"""What the planner learns about every chosen file besides its metadata: hashes, size, and a
copy already in the destination or the artifact cache that satisfies it.

Hashes come from the index first, then from a file the metadata step read whole, then from a
single ``--hash`` of the requirements; ``compute_hashes`` downloads the rest. Sizes come from
the index, the metadata step or a local file, else a HEAD request (whose answer goes into the
metadata cache). The slow steps run on the plan's thread pool; the result is
:class:`~.build.ArtifactFacts` per file name, for :func:`.build.build_plan`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import requests
from packaging.utils import NormalizedName

from fetchplan._fs import sha256_file
from fetchplan._urls import redact
from fetchplan.cache import ArtifactCache, MetadataCache
from fetchplan.errors import HashMismatch
from fetchplan.planner import metadata as md
from fetchplan.planner.build import ArtifactFacts, Role
from fetchplan.planner.candidates import DistMetadata
from fetchplan.planner.fetch_metadata import remember_size
from fetchplan.planner.index import Link, file_url_path
from fetchplan.planner.timings import Timings
from fetchplan.schemas.plan import HashSource, SatisfiedBy

__all__ = ["file_facts", "find_satisfied"]

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _Chosen:
    """A chosen file: its project, link and metadata, and whether a target installs it (else
    only sdist builds use it)."""

    name: NormalizedName
    link: Link
    metadata: DistMetadata
    installed: bool


_Hashes = tuple[dict[str, str], HashSource | None]


def file_facts(
    roles: Sequence[Role],
    *,
    allowed_hashes: Mapping[NormalizedName, Mapping[str, frozenset[str]]],
    session: requests.Session,
    pool: ThreadPoolExecutor,
    cache: ArtifactCache | None,
    dest_dir: Path,
    compute_hashes: bool,
    timeout: float,
    timings: Timings,
    offline: bool = False,
    metadata_cache: MetadataCache | None = None,
) -> dict[str, ArtifactFacts]:
    """Hashes, size and a satisfying local copy of every chosen file, keyed by file name.

    A size learnt by a HEAD request is added to the file's entry in ``metadata_cache``, so
    that the next plan needs no HEAD either.
    """
    files = _chosen_files(roles)

    def submit(phase: str, function: Callable[..., T], *args: Any) -> Future[T]:
        return pool.submit(_timed, timings, phase, function, *args)

    hashes = _hashes(
        files,
        allowed_hashes,
        compute=(lambda link: submit("hash", _download_hash, session, link, cache, timeout))
        if compute_hashes
        else None,
    )
    sizes = {filename: _known_size(f.link, f.metadata) for filename, f in files.items()}
    heads = {
        filename: submit("size", md.head_size, session, f.link.url, timeout)
        for filename, f in files.items()
        if sizes[filename] is None and not f.link.is_local and not offline
    }
    satisfied = {
        filename: submit(
            "hash", find_satisfied, filename, hashes[filename][0].get("sha256"), dest_dir, cache
        )
        for filename in files
    }
    for filename, head in heads.items():
        size = sizes[filename] = head.result()
        link = files[filename].link
        if metadata_cache is not None and size is not None and link.sha256 is not None:
            remember_size(metadata_cache, link, link.sha256, size)
    return {
        filename: ArtifactFacts(
            hashes=hashes[filename][0],
            hash_source=hashes[filename][1],
            size=sizes[filename],
            satisfied_by=satisfied[filename].result(),
        )
        for filename in files
    }


def _chosen_files(roles: Sequence[Role]) -> dict[str, _Chosen]:
    """Every file the roles chose, once, by file name (the first role's choice of it)."""
    first: dict[str, tuple[NormalizedName, Link, DistMetadata]] = {}
    installed: set[str] = set()
    for role in roles:
        resolved = role.resolved
        for name, candidate in resolved.resolution.pins.items():
            link = candidate.link
            assert link is not None
            first.setdefault(link.filename, (name, link, resolved.metadata[name]))
            if not role.build:
                installed.add(link.filename)
    return {
        filename: _Chosen(name, link, metadata, installed=filename in installed)
        for filename, (name, link, metadata) in first.items()
    }


def _hashes(
    files: Mapping[str, _Chosen],
    allowed_hashes: Mapping[NormalizedName, Mapping[str, frozenset[str]]],
    *,
    compute: Callable[[Link], Future[str]] | None,
) -> dict[str, _Hashes]:
    """The hashes of every file and where they come from; ``compute`` (``--compute-hashes``)
    downloads the files whose sha256 nothing gives. A hash an installed file has but its
    ``--hash`` values do not allow raises :class:`HashMismatch`."""
    hashes: dict[str, _Hashes] = {}
    to_compute: dict[str, Future[str]] = {}
    for filename, chosen in files.items():
        # The user's --hash values are about what gets installed, not about build tools.
        allowed = allowed_hashes.get(chosen.name) if chosen.installed else None
        # With --compute-hashes a digest the requirements claim is checked, not just taken.
        claimed = None if compute is not None else allowed
        found, source = _known_hashes(chosen.link, chosen.metadata, claimed)
        hashes[filename] = (found, source)
        if "sha256" in found:
            continue
        if compute is not None:
            to_compute[filename] = compute(chosen.link)
        else:
            log.warning(
                "%s: the index gives no sha256 for %s; use --compute-hashes to fetch and "
                "hash it now",
                chosen.name,
                chosen.link.filename,
            )
    for filename, future in to_compute.items():
        hashes[filename] = ({"sha256": future.result()}, "computed")
    for filename, (found, _source) in hashes.items():
        chosen = files[filename]
        if chosen.installed:
            _check_allowed(chosen.link, found, allowed_hashes.get(chosen.name))
    return hashes


def _timed(timings: Timings, phase: str, function: Callable[..., Any], *args: Any) -> Any:
    started = time.monotonic()
    with timings.phase(phase):
        result = function(*args)
    timings.add_task(phase, time.monotonic() - started)
    return result


def _known_hashes(
    link: Link, metadata: DistMetadata, allowed: Mapping[str, frozenset[str]] | None
) -> tuple[dict[str, str], HashSource | None]:
    found = dict(link.hashes)
    if "sha256" in found:
        return found, "index"
    if metadata.sha256 is not None:
        # The metadata step already read the whole file (local copy, whole download, sdist).
        found["sha256"] = metadata.sha256
        return found, "computed"
    if allowed is not None and len(allowed.get("sha256", ())) == 1:
        (only,) = allowed["sha256"]
        found["sha256"] = only
        return found, "requirements"
    return found, None


def _check_allowed(
    link: Link, found: Mapping[str, str], allowed: Mapping[str, frozenset[str]] | None
) -> None:
    if not allowed:
        return
    common = [algo for algo in allowed if algo in found]
    if not common:
        return  # nothing to compare now; the executor verifies the sha256 it downloads
    if any(found[algo] in allowed[algo] for algo in common):
        return
    algo = common[0]
    raise HashMismatch(redact(link.url), algo, " or ".join(sorted(allowed[algo])), found[algo])


def _known_size(link: Link, metadata: DistMetadata) -> int | None:
    if link.size is not None:
        return link.size
    if metadata.total_size is not None and metadata.source != "pep658":
        return metadata.total_size
    if link.is_local:
        try:
            return file_url_path(link.url).stat().st_size
        except OSError:
            return None
    return None


def _download_hash(
    session: requests.Session, link: Link, cache: ArtifactCache | None, timeout: float
) -> str:
    """Fetch ``link`` whole, return its sha256, and keep it in the cache when there is one."""
    return md.download_whole(session, link.url, sha256=None, cache=cache, timeout=timeout)


def find_satisfied(
    filename: str, sha256: str | None, dest_dir: Path, cache: ArtifactCache | None
) -> SatisfiedBy | None:
    """A file that already satisfies the artifact: in ``dest_dir`` first, then the cache.

    Each is hashed now; a file whose content differs does not count. Without a known
    ``sha256`` nothing can be trusted to satisfy the artifact.
    """
    if sha256 is None:
        return None
    present = dest_dir / filename
    try:
        if present.is_file() and sha256_file(present) == sha256:
            return SatisfiedBy(source="destination", sha256=sha256)
    except OSError as exc:
        log.debug("cannot hash %s: %s", present, exc)
    if cache is not None:
        cached = cache.get(sha256)
        try:
            if cached is not None and sha256_file(cached) == sha256:
                return SatisfiedBy(source="cache", sha256=sha256)
        except OSError as exc:
            log.debug("cannot hash %s: %s", cached, exc)
    return None
