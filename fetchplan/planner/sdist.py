"""sdists in a plan: their metadata, built when it is dynamic, and their build requirements.

For every sdist the resolver looks at, :class:`SdistPlanner` reads the file once (a local copy
matching its hash, else a download into the artifact cache) and its ``[build-system]``
(:mod:`fetchplan.build.source`). When PKG-INFO states the dependencies (PEP 643, Metadata
2.2 without ``Dynamic: Requires-Dist``/``Requires-Python``) that is the metadata. Otherwise it
is prepared as a build frontend would, on this machine:

1. the build requirements are resolved for this interpreter, from wheels only (so preparing
   never needs another build), and those wheels fetched into the cache;
2. a virtual environment without pip gets exactly those wheels, through fetchplan's installer;
3. the backend's ``get_requires_for_build_wheel`` is asked for more (resolved and added the same
   way), then ``prepare_metadata_for_build_wheel`` (``build_wheel`` for a backend without it).

The prepared metadata and the backend's extra requirements are kept in the cache by the sdist's
sha256, so a file is prepared once per cache. The plan itself gets, per target, one resolution
of the build requirements of all that target's sdists (wheels only, for that target: what
``fetchplan install`` builds them with there); :func:`build_requirements` lists them.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from fetchplan._fs import atomic_write_bytes, sha256_file
from fetchplan._parse import load_json
from fetchplan.build.errors import BuildError
from fetchplan.build.source import BuildSystem, read_build_system
from fetchplan.cache import ArtifactCache
from fetchplan.errors import FetchplanError, FileFormatError, NetworkError
from fetchplan.planner import metadata as md
from fetchplan.planner.candidates import Candidate, DistMetadata, FormatControl
from fetchplan.planner.context import Memo, ResolveContext, TargetResolution
from fetchplan.planner.http import BodyTooLarge, download_file
from fetchplan.planner.index import Link, file_url_path
from fetchplan.planner.provider import Req
from fetchplan.planner.target import TargetEnv, host_target
from fetchplan.wheels import WheelToInstall

__all__ = [
    "WHEELS_ONLY",
    "SdistBuildError",
    "SdistFacts",
    "SdistPlanner",
    "build_requirements",
]

log = logging.getLogger(__name__)

WHEELS_ONLY = FormatControl(only_binary=frozenset({":all:"}))
"""Build requirements come from wheels only: a build never needs another build first."""

_PREPARED_FORMAT = "fetchplan.prepared-metadata"
_PREPARED_DIR = "prepared-metadata"


class SdistBuildError(md.UnusableMetadata):
    """An sdist's metadata or build requirements could not be planned; names the sdist."""


@dataclass(frozen=True, slots=True)
class SdistFacts:
    """What building an sdist needs, as learnt while reading its metadata."""

    build_system: BuildSystem
    backend_requires: tuple[Requirement, ...] = ()
    """What ``get_requires_for_build_wheel`` asked for (only known when the backend ran)."""
    prepared: bool = False
    """Whether the metadata came from the backend rather than PKG-INFO."""

    @property
    def requirements(self) -> tuple[Requirement, ...]:
        return self.build_system.requires + self.backend_requires


@dataclass(frozen=True, slots=True)
class _LocalFile:
    path: Path
    sha256: str
    size: int
    requests: int = 0
    received: int = 0


def build_requirements(
    sdists: Iterable[tuple[Candidate, SdistFacts]], target: TargetEnv
) -> list[Req]:
    """The build requirements of ``sdists`` that apply on ``target`` (markers evaluated)."""
    reqs: list[Req] = []
    for candidate, facts in sdists:
        origin = f"to build {candidate.name} {candidate.version}"
        reqs.extend(
            Req.from_requirement(r, origin=origin)
            for r in facts.requirements
            if target.evaluate(r.marker)
        )
    return reqs


class SdistPlanner:
    """The sdists of one planning run: metadata (prepared when dynamic) and build facts.

    ``scratch`` is a private directory for downloads (when there is no cache) and build
    environments; the caller removes it. Thread-safe: each sdist is read and prepared once.
    ``max_builds`` bounds the sdists of one project prepared by a build (None: no bound).
    """

    def __init__(
        self,
        *,
        session: requests.Session,
        context: ResolveContext,
        cache: ArtifactCache | None,
        scratch: Path,
        timeout: float,
        build: bool = True,
        max_builds: int | None = None,
    ) -> None:
        self._session = session
        self._context = context
        self._cache = cache
        self._scratch = scratch
        self._timeout = timeout
        self._build = build
        self._max_builds = max_builds
        self._builds: dict[str, int] = {}
        self._metadata: Memo[str, DistMetadata] = Memo()
        self._files: Memo[str, _LocalFile] = Memo()
        self._facts: dict[str, SdistFacts] = {}
        self._lock = threading.Lock()

    # -- metadata ------------------------------------------------------------------------

    def metadata(self, link: Link, local_files: Sequence[Path] = ()) -> DistMetadata:
        """The core metadata of the sdist ``link``; prepared by its backend when dynamic.

        Raises :class:`SdistBuildError` when preparing fails (naming the sdist and the cause),
        and the errors of :func:`fetchplan.planner.metadata.sdist_metadata` otherwise.
        """
        return self._metadata.get(link.url, lambda: self._read(link, local_files))

    def facts(self, link: Link) -> SdistFacts:
        """What building ``link`` needs (its metadata is read first if it was not yet)."""
        self.metadata(link)
        with self._lock:
            return self._facts[link.url]

    def _read(self, link: Link, local_files: Sequence[Path]) -> DistMetadata:
        local = self._file(link, local_files)
        try:
            fetched = md.sdist_metadata(
                self._session,
                url=link.url,
                filename=link.filename,
                sha256=local.sha256,
                local_files=[local.path],
                timeout=self._timeout,
            )
        except md.SdistNeedsBuild as exc:
            if not self._build:
                raise SdistBuildError(
                    f"{link.filename}: {exc.project} {exc.version} needs a build to learn its "
                    f"dependencies ({exc.reason}), and --no-build-deps forbids planning one"
                ) from None
            build_system = self._build_system(local, link)
            raw, backend_requires = self._prepare(link, local, build_system)
            where = f"{link.filename} (prepared metadata)"
            meta = md.parse_metadata(raw, where=where, project=exc.project, version=exc.version)
            facts = SdistFacts(build_system, backend_requires, prepared=True)
        else:
            meta = fetched.metadata
            build_system = (
                self._build_system(local, link)
                if self._build
                else BuildSystem(requires=(), backend="", declared=False)
            )
            facts = SdistFacts(build_system)
        with self._lock:
            self._facts[link.url] = facts
        return DistMetadata(
            name=canonicalize_name(meta.name),
            version=meta.version,
            requires_dist=tuple(meta.requires_dist or ()),
            requires_python=meta.requires_python,
            provides_extra=frozenset(canonicalize_name(e) for e in meta.provides_extra or ()),
            source="sdist" if local.requests else "local",
            requests=local.requests,
            bytes_received=local.received,
            total_size=local.size,
            sha256=local.sha256,
        )

    @staticmethod
    def _build_system(local: _LocalFile, link: Link) -> BuildSystem:
        try:
            return read_build_system(local.path, link.filename)
        except BuildError as exc:
            raise SdistBuildError(str(exc)) from None

    # -- files -----------------------------------------------------------------------------

    def _file(self, link: Link, local_files: Sequence[Path] = ()) -> _LocalFile:
        return self._files.get(link.url, lambda: self._obtain(link, local_files))

    def _obtain(self, link: Link, local_files: Sequence[Path]) -> _LocalFile:
        """A local copy of ``link``'s file: a matching local file, the cache, or a download."""
        sha256 = link.sha256.lower() if link.sha256 is not None else None
        candidates = list(local_files)
        if link.is_local:
            path = file_url_path(link.url)
            if sha256 is None and path.is_file():
                # A local file without an index hash: its content is what the plan records.
                return _LocalFile(path, sha256_file(path), path.stat().st_size)
            candidates.insert(0, path)
        if sha256 is not None:
            if self._cache is not None and (cached := self._cache.get(sha256)) is not None:
                candidates.append(cached)
            for path in candidates:
                try:
                    if path.is_file() and sha256_file(path) == sha256:
                        return _LocalFile(path, sha256, path.stat().st_size)
                except OSError as exc:
                    log.debug("skipping local candidate %s: %s", path, exc)
        return self._download(link, sha256)

    def _download(self, link: Link, sha256: str | None) -> _LocalFile:
        """``link``'s file downloaded whole (the planner's one whole-file download, at most
        :data:`~fetchplan._limits.MAX_UNSIZED_BYTES`), into the cache when there is one."""
        self._scratch.mkdir(parents=True, exist_ok=True)
        with ExitStack() as stack:
            try:
                path, hashed = stack.enter_context(
                    download_file(
                        self._session, link.url, self._scratch, sha256=sha256, timeout=self._timeout
                    )
                )
            except BodyTooLarge as exc:
                raise NetworkError(str(exc)) from None
            if self._cache is not None:
                final = self._cache.add(path, hashed.sha256)
            else:
                final = self._scratch / hashed.sha256 / link.filename
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(path, final)
        return _LocalFile(final, hashed.sha256, hashed.size, requests=1, received=hashed.size)

    # -- preparing metadata --------------------------------------------------------------

    def _prepared_path(self, sha256: str) -> Path | None:
        if self._cache is None:
            return None
        return self._cache.root / _PREPARED_DIR / sha256[:2] / f"{sha256}.json"

    def _load_prepared(self, sha256: str) -> tuple[bytes, tuple[Requirement, ...]] | None:
        path = self._prepared_path(sha256)
        if path is None or not path.is_file():
            return None
        try:
            document: Any = load_json(path.read_bytes(), str(path))
            if document.get("format") != _PREPARED_FORMAT or document.get("sdist") != sha256:
                raise ValueError("not a prepared-metadata record of this sdist")
            raw = str(document["metadata"]).encode("utf-8")
            with md.PARSE_LOCK:
                requires = tuple(Requirement(r) for r in document["backend_requires"])
        except (
            OSError,
            ValueError,
            KeyError,
            TypeError,
            AttributeError,
            InvalidRequirement,
            FileFormatError,
        ):
            log.warning("%s: unreadable prepared metadata; preparing it again", path)
            return None
        log.debug("prepared metadata of %s from %s", sha256, path)
        return raw, requires

    def _store_prepared(
        self, sha256: str, raw: bytes, backend_requires: Sequence[Requirement]
    ) -> None:
        path = self._prepared_path(sha256)
        if path is None:
            return
        document = {
            "format": _PREPARED_FORMAT,
            "version": 1,
            "sdist": sha256,
            "metadata": raw.decode("utf-8", errors="replace"),
            "backend_requires": [str(r) for r in backend_requires],
        }
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(path, json.dumps(document, indent=1).encode("utf-8"))
        except OSError as exc:
            log.warning("%s: cannot keep the prepared metadata: %s", path, exc)

    def _prepare(
        self, link: Link, local: _LocalFile, build_system: BuildSystem
    ) -> tuple[bytes, tuple[Requirement, ...]]:
        what = f"{link.name} {link.version}"
        if self._load_prepared(local.sha256) is None:
            self._count_build(link.name, what)
        return self._prepare_source(what, link.filename, local, build_system)

    def _count_build(self, name: str, what: str) -> None:
        """Count one more build of project ``name``'s sdists, refusing one past the bound."""
        with self._lock:
            done = self._builds.get(name, 0)
            if self._max_builds is not None and done >= self._max_builds:
                raise SdistBuildError(
                    f"cannot prepare the metadata of {what}: {done} sdists of {name} were "
                    f"prepared already, the most --max-sdist-builds allows"
                )
            self._builds[name] = done + 1

    def _prepare_source(
        self, what: str, filename: str, local: _LocalFile, build_system: BuildSystem
    ) -> tuple[bytes, tuple[Requirement, ...]]:
        kept = self._load_prepared(local.sha256)
        if kept is not None:
            return kept
        from fetchplan.build.prepare import prepare_metadata

        host = host_target()

        def needs(requirements: Iterable[Requirement]) -> list[Req]:
            origin = f"to build {what}"
            return [
                Req.from_requirement(r, origin=origin)
                for r in requirements
                if host.evaluate(r.marker)
            ]

        def more(backend_requires: tuple[Requirement, ...]) -> list[WheelToInstall]:
            return self._wheels(
                self._resolve_host(needs((*build_system.requires, *backend_requires)), what)
            )

        log.info("preparing the metadata of %s with %s", filename, build_system.backend)
        self._scratch.mkdir(parents=True, exist_ok=True)
        try:
            with tempfile.TemporaryDirectory(dir=self._scratch, prefix="build-") as work_name:
                first = self._resolve_host(needs(build_system.requires), what)
                raw, backend_requires = prepare_metadata(
                    local.path,
                    filename,
                    build_system,
                    Path(work_name),
                    wheels=self._wheels(first),
                    more=more,
                    markers=host.markers,
                )
        except BuildError as exc:
            raise SdistBuildError(f"cannot prepare the metadata of {what}: {exc}") from None
        self._store_prepared(local.sha256, raw, backend_requires)
        return raw, backend_requires

    def prepare_tree(
        self, what: str, archive: Path, sha256: str, size: int
    ) -> tuple[bytes, SdistFacts]:
        """The metadata (``METADATA`` bytes) of a source tree archive
        (:mod:`fetchplan._sourcetree`), always prepared by its backend, and what building it
        needs. ``what`` names it in errors."""
        local = _LocalFile(archive, sha256, size)
        try:
            build_system = read_build_system(archive, archive.name)
        except BuildError as exc:
            raise SdistBuildError(f"{what}: {exc}") from None
        raw, backend_requires = self._prepare_source(what, archive.name, local, build_system)
        return raw, SdistFacts(build_system, backend_requires, prepared=True)

    def register(self, link: Link, metadata: DistMetadata, facts: SdistFacts) -> None:
        """Make ``link`` (a directory or VCS commit) known with what :meth:`prepare_tree`
        learnt, so that :meth:`metadata` and :meth:`facts` answer for it."""
        with self._lock:
            self._facts[link.url] = facts
        self._metadata.get(link.url, lambda: metadata)

    def _resolve_host(self, requirements: Sequence[Req], what: str) -> TargetResolution:
        try:
            return self._context.resolve(
                requirements, host_target(), formats=WHEELS_ONLY, record_resolver=False
            )
        except SdistBuildError:
            raise
        except FetchplanError as exc:
            raise SdistBuildError(
                f"cannot prepare the metadata of {what}: its build requirements (wheels only, "
                f"for this interpreter): {exc}"
            ) from None

    def _wheels(self, resolved: TargetResolution) -> list[WheelToInstall]:
        wheels = []
        for name, candidate in resolved.resolution.pins.items():
            link = candidate.link
            assert link is not None
            local = self._file(link)
            wheels.append(
                WheelToInstall(
                    path=local.path,
                    filename=link.filename,
                    name=name,
                    version=str(candidate.version),
                    sha256=local.sha256,
                    size=local.size,
                )
            )
        return wheels
