"""What :func:`~fetchplan.planner.api.make_plan` takes and gives: :class:`PlanOptions` in (the
command line, as plain values), :class:`PlanResult` out.

Light on purpose, like :mod:`.sources`: the planner's entry, its settings (:mod:`.settings`)
and the commands import it before the HTTP stack and the resolver are loaded.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from fetchplan.pipconfig import PipSettings
from fetchplan.planner.sources import IndexStrategy

if TYPE_CHECKING:
    from fetchplan.cache import ArtifactCache
    from fetchplan.planner.targets import TargetSpec
    from fetchplan.planner.timings import Timings
    from fetchplan.schemas.plan import Plan

__all__ = ["DEFAULT_JOBS", "DEFAULT_MAX_SDIST_BUILDS", "FormatOp", "PlanOptions", "PlanResult"]

FormatOp = tuple[Literal["no_binary", "only_binary"], str]

DEFAULT_JOBS = 50
"""Index and metadata requests each wait a round trip for a few kB, so many in flight keep a
high-latency link busy; with a few hundred of them, a wider fan-out also keeps the next level
of the dependency graph from queueing behind the current one (the large bench set: 32 -> 50
took its plan from 1.28 s to 1.24 s over a 25 ms each-way link, 10 alternating runs)."""
DEFAULT_MAX_SDIST_BUILDS = 10
"""Most sdists of one project whose metadata a plan prepares by a build (``--max-sdist-builds``):
backtracking can reach every old version of a project, and each costs a build."""


@dataclass(frozen=True, kw_only=True, slots=True)
class PlanOptions:
    """Everything ``fetchplan plan`` accepts, as plain values (paths relative to the cwd)."""

    requirements: Sequence[str] = ()
    requirement_files: Sequence[Path] = ()
    """Requirements files; a ``pyproject.toml`` among them is read by :mod:`.pyproject`."""
    constraint_files: Sequence[Path] = ()
    extras: Sequence[str] = ()
    """Optional dependencies of the ``pyproject.toml`` inputs to plan (``--extra``)."""
    all_extras: bool = False
    groups: Sequence[str] = ()
    """PEP 735 dependency groups, ``NAME`` or ``PATH:NAME`` (``--group``, as pip takes it)."""
    override_files: Sequence[Path] = ()
    """Requirements replacing every requirement on their projects (uv's ``--override``)."""
    no_deps: bool = False
    """Plan the requirements alone, none of their dependencies (pip's ``--no-deps``)."""
    pins_from: Path | None = None
    """An earlier plan, ``pylock.toml`` or pinned requirements file whose pins are kept where
    they still satisfy the inputs (``--from``); default: the plan at ``output``, if any."""
    upgrade: bool = False
    """Keep no earlier pins (``--upgrade``)."""
    upgrade_packages: Sequence[str] = ()
    """``NAME`` or ``NAME<SPECIFIER>``: keep no earlier pin of NAME, and constrain it so."""
    index_url: str | None = None
    extra_index_urls: Sequence[str] = ()
    find_links: Sequence[str] = ()
    no_index: bool = False
    trusted_hosts: Sequence[str] = ()
    index_strategy: IndexStrategy = IndexStrategy.FIRST_INDEX
    pre: bool = False
    exclude_newer: datetime.datetime | None = None
    """Files uploaded after this (aware) time, or of unknown upload time, are no candidates
    (uv's ``--exclude-newer``, already resolved to an absolute time: it is recorded)."""
    exclude_newer_package: Mapping[str, datetime.datetime | None] = field(default_factory=dict)
    """Per project (canonical name): the cut-off that stands in for ``exclude_newer`` on its
    files, later or earlier, or None for none at all (uv's ``--exclude-newer-package NAME=TIME``
    and ``NAME=false``); recorded like ``exclude_newer``."""
    format_ops: Sequence[FormatOp] = ()
    """``--no-binary``/``--only-binary`` values in command-line order."""
    prefer_binary: bool = False
    require_hashes: bool = False
    python_version: str | None = None
    platforms: Sequence[str] = ()
    implementation: str | None = None
    abis: Sequence[str] = ()
    targets: Sequence[str | TargetSpec] = ()
    """Several target environments (``--target`` values, see :mod:`.targets`): one resolution
    each, one plan. Not combined with the single-target fields above."""
    build_deps: bool = True
    """Resolve the build requirements of every sdist into the plan (and prepare dynamic
    metadata with them); False plans sdists alone, as files to fetch."""
    max_sdist_builds: int = DEFAULT_MAX_SDIST_BUILDS
    """Most sdists of one project whose metadata is prepared by their backend in one run
    (metadata already in the cache costs no build and is not counted); a further version of
    that project needing a build is unusable, and the resolver goes on without it."""
    output: Path = Path("plan.json")
    """Where the plan will be written: the destination is recorded relative to its directory."""
    dest: Path | None = None
    """Destination directory (relative to the cwd); default: ``wheels`` beside the plan file."""
    cache_dir: Path | None = None
    no_cache: bool = False
    """Use no cache at all: no artifacts, pages or metadata read from it or written to it."""
    refresh: bool = False
    """Ignore the pages and metadata in the cache (fetched again, and kept anew), uv's
    ``--refresh``."""
    refresh_packages: Sequence[str] = ()
    """Ignore the cached pages and metadata of these projects only (``--refresh-package``)."""
    compute_hashes: bool = False
    attestations: bool = False
    """Fetch every chosen file's PEP 740 provenance and verify its attestations against the
    file's sha256 (``pypi-attestations``, offline trust root); record the verified publishers."""
    jobs: int = DEFAULT_JOBS
    """Parallel index and metadata requests (and connections opened ahead to the index)."""
    timeout: float = 30.0
    retries: int = 3
    backoff: float = 0.25
    isolated: bool = False
    """Ignore ``PIP_*`` variables and pip's configuration files (pip's ``--isolated``)."""
    offline: bool = False
    """Open no network connection: only ``file://`` indexes, find-links directories and the
    cache serve; a source or file that needs the network is an error naming it."""
    use_netrc: bool = True
    pip_settings: PipSettings | None = None
    """Settings to use instead of asking pip (tests, embedding)."""
    default_index: str | None = None
    """pip's default index, when already known (else pip is asked, only if needed)."""


@dataclass(frozen=True, slots=True)
class PlanResult:
    """A plan not yet written, where its time went, and the artifact cache it consulted."""

    plan: Plan
    timings: Timings
    cache: ArtifactCache | None = field(default=None)
