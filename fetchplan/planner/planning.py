""":func:`~fetchplan.planner.api.make_plan`'s work once the inputs are read (see that module).

Resolution per target (several targets side by side, sharing every page and metadata file)
and for the build requirements of sdists, then the facts of every chosen file (hashes, sizes,
local copies), and :func:`open_indexes` for the commands that only read indexes. Imported by
:mod:`.api` only after the connections to the index have started opening.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import requests
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name

from fetchplan._age import format_time
from fetchplan._fs import sha256_file
from fetchplan._offline import disable_network
from fetchplan._parse import load_json
from fetchplan._urls import is_secure_or_trusted, redact
from fetchplan.auth import CredentialStore
from fetchplan.cache import ArtifactCache, MetadataCache, PageCache, default_cache_dir
from fetchplan.errors import FetchplanError, FileFormatError, HashMismatch, InputError
from fetchplan.planner import metadata as md
from fetchplan.planner import reqfile
from fetchplan.planner.build import ArtifactFacts, created_now, find_satisfied
from fetchplan.planner.candidates import DistMetadata, FormatControl
from fetchplan.planner.context import CachingIndexClient, Memo, ResolveContext, TargetResolution
from fetchplan.planner.http import HttpPolicy, make_session
from fetchplan.planner.index import IndexClient, IndexSource, Link, file_url_path
from fetchplan.planner.locations import Sources, find_sources
from fetchplan.planner.options import PlanOptions, PlanResult
from fetchplan.planner.preconnect import Preconnector
from fetchplan.planner.provider import Req, is_pinned
from fetchplan.planner.resolve import Resolution
from fetchplan.planner.sdist import WHEELS_ONLY, SdistBuildError, SdistPlanner, build_requirements
from fetchplan.planner.target import TargetEnv, make_target
from fetchplan.planner.targets import (
    Role,
    make_targets,
    merge_artifacts,
    parse_target_spec,
)
from fetchplan.planner.timings import Timings
from fetchplan.schemas.plan import HashSource, IndexRef, Inputs, Plan, SatisfiedBy

__all__ = ["IndexAccess", "open_indexes", "plan"]

log = logging.getLogger(__name__)


def plan(
    options: PlanOptions,
    *,
    timings: Timings,
    requirement_set: reqfile.RequirementSet,
    sources: Sources,
    preconnector: Preconnector | None = None,
) -> PlanResult:
    """:func:`~fetchplan.planner.api.make_plan` once its inputs are read: resolve, then hashes,
    sizes and local copies of every chosen file; the session starts from ``preconnector``'s
    connections."""
    targets = _targets(options)
    settings = sources.settings
    pre = settings.pre
    prefer_binary = settings.prefer_binary
    formats = FormatControl(
        only_binary=frozenset(settings.only_binary), no_binary=frozenset(settings.no_binary)
    )
    per_target = {t.name: _requirements(requirement_set, t) for t in targets}
    hashed = any(allowed for _reqs, _constraints, allowed in per_target.values())
    require_hashes = settings.require_hashes or hashed
    if require_hashes:
        _check_pinned(requirement_set)

    session = _session(options, sources, timings, preconnector)
    cache_root = options.cache_dir or default_cache_dir()
    cache = None if options.no_cache else ArtifactCache(cache_root)
    pages = None if options.no_cache else PageCache(cache_root / "pages")
    metadata_cache = None if options.no_cache else MetadataCache(cache_root / "metadata")
    refresh = _refresher(options)
    plan_dir = options.output.absolute().parent
    if str(options.output) == "-" or plan_dir.parts[1:2] in (("dev",), ("proc",)):
        plan_dir = Path.cwd()  # a plan on standard output (or a device) is read from here
    dest_dir = (plan_dir / "wheels") if options.dest is None else options.dest.absolute()
    trusted = frozenset(sources.trusted_hosts)

    pool = ThreadPoolExecutor(max_workers=options.jobs, thread_name_prefix="fetchplan")
    # Speculative work may still write here when planning fails: cleanup must not raise then.
    scratch = tempfile.TemporaryDirectory(prefix="fetchplan-plan-", ignore_cleanup_errors=True)
    succeeded = False
    try:
        context = ResolveContext(
            client=CachingIndexClient(
                session, timeout=options.timeout, timings=timings, pages=pages, refresh=refresh
            ),
            indexes=sources.indexes,
            find_links=sources.find_links,
            strategy=options.index_strategy,
            url_ok=lambda url: is_secure_or_trusted(url, trusted),
            fetch_metadata=_metadata_fetcher(
                session,
                cache,
                dest_dir,
                options.timeout,
                lambda: sdists,
                metadata_cache=metadata_cache,
                refresh=refresh,
            ),
            executor=pool,
            timings=timings,
            pre=pre,
            exclude_newer=options.exclude_newer,
        )
        sdists = SdistPlanner(
            session=session,
            context=context,
            cache=cache,
            scratch=Path(scratch.name),
            timeout=options.timeout,
            build=options.build_deps,
        )

        def roles_of(target: TargetEnv) -> list[Role]:
            user_reqs, constraints, allowed_hashes = per_target[target.name]
            resolved = context.resolve(
                user_reqs,
                target,
                formats=formats,
                allowed_hashes=allowed_hashes,
                constraints=constraints,
                prefer_binary=prefer_binary,
            )
            if require_hashes:
                _check_hashes_given(resolved.resolution, allowed_hashes)
            roles = [Role(resolved)]
            if options.build_deps:
                build = _resolve_build(context, sdists, resolved)
                if build is not None:
                    roles.append(Role(build, build=True))
            return roles

        roles = [role for found in _side_by_side(roles_of, targets) for role in found]
        facts = _facts(
            roles,
            allowed_hashes=_merged_hashes(per_target.values()),
            session=session,
            pool=pool,
            cache=cache,
            dest_dir=dest_dir,
            compute_hashes=options.compute_hashes,
            timeout=options.timeout,
            timings=timings,
            offline=options.offline,
            metadata_cache=metadata_cache,
        )
        succeeded = True
    finally:
        # On failure, do not wait for speculative fetches still running.
        pool.shutdown(wait=succeeded, cancel_futures=True)
        session.close()
        scratch.cleanup()

    inputs = _inputs(requirement_set, options, sources)
    plan = Plan(
        created=created_now(),
        inputs=inputs,
        targets=tuple(t.to_plan() for t in targets),
        indexes=tuple(
            IndexRef(url=s.url, kind=s.kind) for s in (*sources.indexes, *sources.find_links)
        ),
        destination=_relative(dest_dir, plan_dir),
        artifacts=merge_artifacts(roles, facts, [t.name for t in targets]),
    )
    if pages is not None and metadata_cache is not None:
        timings.set_cache(pages=dict(pages.stats), metadata=dict(metadata_cache.stats))
    timings.finish()
    return PlanResult(plan=plan, timings=timings, cache=cache)


def _refresher(options: PlanOptions) -> Callable[[NormalizedName], bool]:
    """Whether the cached pages and metadata of a project are to be ignored."""
    if options.refresh:
        return lambda _name: True
    names = frozenset(canonicalize_name(name) for name in options.refresh_packages)
    return lambda name: name in names


_TARGET_THREADS = 4
"""Resolutions run at once in a plan for several targets. Each is CPU on the GIL while it has
its answers, and waits for the network while it has not: a few side by side overlap the waits
(a target's own dependencies, such as those of its platform's markers) without queueing a
dozen threads for one core."""

R = TypeVar("R")


def _side_by_side(work: Callable[[TargetEnv], R], targets: Sequence[TargetEnv]) -> list[R]:
    """``work`` for every target, some at once; results in target order. The first target
    (in order) whose work failed raises, as when they ran one after the other."""
    if len(targets) == 1:
        return [work(targets[0])]
    workers = ThreadPoolExecutor(
        max_workers=min(_TARGET_THREADS, len(targets)), thread_name_prefix="fetchplan-target"
    )
    try:
        futures = [workers.submit(work, target) for target in targets]
        return [future.result() for future in futures]
    finally:
        # After a failure, the targets not started yet are not started; those running finish
        # on their own (their answers are no longer awaited).
        workers.shutdown(wait=False, cancel_futures=True)


def _targets(options: PlanOptions) -> tuple[TargetEnv, ...]:
    single = (
        options.python_version is not None
        or bool(options.platforms)
        or options.implementation is not None
        or bool(options.abis)
    )
    if options.targets:
        if single:
            raise InputError(
                "--target cannot be combined with --python-version, --platform, "
                "--implementation or --abi: put those in the --target values"
            )
        specs = [
            parse_target_spec(spec) if isinstance(spec, str) else spec for spec in options.targets
        ]
        return make_targets(specs)
    return (
        make_target(
            python_version=options.python_version,
            platforms=options.platforms,
            implementation=options.implementation,
            abis=options.abis,
        ),
    )


def _resolve_build(
    context: ResolveContext, sdists: SdistPlanner, resolved: TargetResolution
) -> TargetResolution | None:
    """The build requirements of ``resolved``'s sdists, resolved for its target (wheels only)."""
    chosen = [
        (candidate, sdists.facts(candidate.link))
        for candidate in resolved.resolution.pins.values()
        if candidate.link is not None and candidate.link.kind == "sdist"
    ]
    if not chosen:
        return None
    target = resolved.target
    requirements = build_requirements(chosen, target)
    if not requirements:
        return None
    try:
        return context.resolve(requirements, target, formats=WHEELS_ONLY)
    except SdistBuildError:
        raise
    except FetchplanError as exc:
        names = ", ".join(f"{c.name} {c.version}" for c, _ in chosen)
        raise SdistBuildError(
            f"cannot plan the build requirements of {names} for target {target.name} "
            f"(wheels only): {exc}"
        ) from None


def _merged_hashes(
    per_target: Iterable[tuple[Any, Any, Mapping[NormalizedName, Mapping[str, frozenset[str]]]]],
) -> dict[NormalizedName, dict[str, frozenset[str]]]:
    merged: dict[NormalizedName, dict[str, frozenset[str]]] = {}
    for _reqs, _constraints, allowed in per_target:
        for name, by_algo in allowed.items():
            into = merged.setdefault(name, {})
            for algo, values in by_algo.items():
                into[algo] = into.get(algo, frozenset()) | values
    return merged


@dataclass(frozen=True, slots=True)
class IndexAccess:
    """The locations :func:`make_plan` would read, and a client to read them with."""

    client: IndexClient
    session: requests.Session
    indexes: tuple[IndexSource, ...]
    find_links: tuple[IndexSource, ...]
    trusted_hosts: frozenset[str]

    def url_ok(self, url: str) -> bool:
        """True when a file at ``url`` may be fetched (https, loopback or a trusted host)."""
        return is_secure_or_trusted(url, self.trusted_hosts)

    def close(self) -> None:
        self.session.close()


def open_indexes(options: PlanOptions) -> IndexAccess:
    """The indexes and find-links locations :func:`make_plan` would read for ``options``.

    The same settings in the same order: the command-line values of ``options``, the options
    written in ``options.requirement_files`` (their requirements are ignored), ``PIP_*``
    variables and pip's configuration (unless ``isolated``), then pip's default index. The
    client shares one session with make_plan's credentials, trusted hosts, timeout and retry
    policy; nothing is requested here. The caller closes it. Raises :class:`InputError` for a
    plain-http location that is neither loopback nor trusted, as make_plan does.
    """
    file_options = reqfile.merge(
        *(reqfile.parse_requirements_file(path) for path in options.requirement_files)
    ).options
    sources = find_sources(options, file_options)
    session = _session(options, sources, None)
    return IndexAccess(
        client=IndexClient(session, timeout=options.timeout),
        session=session,
        indexes=sources.indexes,
        find_links=sources.find_links,
        trusted_hosts=frozenset(sources.trusted_hosts),
    )


def _session(
    options: PlanOptions,
    sources: Sources,
    timings: Timings | None,
    preconnector: Preconnector | None = None,
) -> requests.Session:
    store = CredentialStore(sources.raw_urls, use_netrc=options.use_netrc)
    if not options.offline:
        store.preload(s.url for s in (*sources.indexes, *sources.find_links))
    policy = HttpPolicy(
        timeout=options.timeout,
        retries=options.retries,
        backoff=options.backoff,
        pool_size=options.jobs,
    )
    session = make_session(
        policy,
        store,
        trusted_hosts=sources.trusted_hosts,
        timings=timings,
        preconnector=preconnector,
    )
    sources.settings.apply_tls(session)
    if options.offline:
        # Whatever a file:// page links to, nothing leaves the machine.
        disable_network(session)
    return session


# -- inputs -----------------------------------------------------------------------------------


def _requirements(
    requirement_set: reqfile.RequirementSet, target: TargetEnv
) -> tuple[
    list[Req],
    dict[NormalizedName, SpecifierSet],
    dict[NormalizedName, dict[str, frozenset[str]]],
]:
    reqs: list[Req] = []
    constraints: dict[NormalizedName, SpecifierSet] = {}
    hashes: dict[NormalizedName, dict[str, set[str]]] = {}
    for parsed in (*requirement_set.requirements, *requirement_set.constraints):
        requirement = parsed.requirement
        if requirement.url is not None:
            raise InputError(
                f"{parsed.source}: direct URL requirements ({requirement.name} @ ...) are not "
                "supported; put the file on an index or in a --find-links directory"
            )
        if not target.evaluate(requirement.marker):
            log.info(
                "ignoring %s (%s): markers do not match the target", requirement, parsed.source
            )
            continue
        name = canonicalize_name(requirement.name)
        for algo, values in parsed.hashes.items():
            hashes.setdefault(name, {}).setdefault(algo, set()).update(v.lower() for v in values)
        if parsed.constraint:
            constraints[name] = constraints.get(name, SpecifierSet()) & requirement.specifier
        else:
            reqs.append(Req.from_requirement(requirement, origin=parsed.source))
    frozen = {
        name: {algo: frozenset(values) for algo, values in by_algo.items()}
        for name, by_algo in hashes.items()
    }
    return reqs, constraints, frozen


def _check_pinned(requirement_set: reqfile.RequirementSet) -> None:
    for parsed in requirement_set.requirements:
        if not is_pinned(parsed.requirement.specifier):
            raise InputError(
                f"{parsed.source}: in hash-checking mode every requirement must be pinned "
                f"with ==, but {parsed.requirement} is not"
            )


def _check_hashes_given(
    resolution: Resolution, allowed: Mapping[NormalizedName, Mapping[str, frozenset[str]]]
) -> None:
    for name, candidate in resolution.pins.items():
        if name not in allowed:
            raise InputError(
                f"hash-checking mode: {name} {candidate.version} has no --hash in the "
                "requirements (every dependency needs one, as with pip --require-hashes)"
            )


def _inputs(
    requirement_set: reqfile.RequirementSet, options: PlanOptions, sources: Sources
) -> Inputs:
    settings = sources.settings
    opts: dict[str, Any] = {
        "pre": settings.pre,
        "only_binary": sorted(settings.only_binary),
        "no_binary": sorted(settings.no_binary),
        "no_index": sources.no_index,
        "index_strategy": options.index_strategy.value,
        "compute_hashes": options.compute_hashes,
        "trusted_hosts": sorted(set(sources.trusted_hosts)),
    }
    if settings.prefer_binary:
        opts["prefer_binary"] = True
    if options.exclude_newer is not None:
        opts["exclude_newer"] = format_time(options.exclude_newer)
    if not options.build_deps:
        opts["build_deps"] = False
    return Inputs(
        requirements=tuple(str(p.requirement) for p in requirement_set.requirements),
        constraints=tuple(str(p.requirement) for p in requirement_set.constraints),
        options=opts,
    )


def _relative(path: Path, start: Path) -> str:
    try:
        return Path(os.path.relpath(path, start)).as_posix()
    except ValueError:  # another drive on Windows
        return path.as_posix()


# -- metadata ---------------------------------------------------------------------------------


def _metadata_fetcher(
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


def _remember_size(cache: MetadataCache, link: Link, sha256: str, size: int) -> None:
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


# -- hashes, sizes, local copies --------------------------------------------------------------


def _facts(
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
    files: dict[str, tuple[NormalizedName, Link, DistMetadata]] = {}
    installed: set[str] = set()
    for role in roles:
        resolved = role.resolved
        for name, candidate in resolved.resolution.pins.items():
            link = candidate.link
            assert link is not None
            files.setdefault(link.filename, (name, link, resolved.metadata[name]))
            if not role.build:
                installed.add(link.filename)

    hashes: dict[str, tuple[dict[str, str], HashSource | None]] = {}
    to_compute: dict[str, Future[str]] = {}
    for filename, (name, link, metadata) in files.items():
        # The user's --hash values are about what gets installed, not about build tools.
        allowed = allowed_hashes.get(name) if filename in installed else None
        # With --compute-hashes a digest the requirements claim is checked, not just taken.
        claimed = None if compute_hashes else allowed
        found, source = _known_hashes(link, metadata, claimed)
        hashes[filename] = (found, source)
        if "sha256" not in found:
            if compute_hashes:
                to_compute[filename] = pool.submit(
                    _timed, timings, "hash", _download_hash, session, link, cache, timeout
                )
            else:
                log.warning(
                    "%s: the index gives no sha256 for %s; use --compute-hashes to fetch and "
                    "hash it now",
                    name,
                    link.filename,
                )
    for filename, future in to_compute.items():
        hashes[filename] = ({"sha256": future.result()}, "computed")
    for filename, (found, _source) in hashes.items():
        name, link, _metadata = files[filename]
        if filename in installed:
            _check_allowed(link, found, allowed_hashes.get(name))

    sizes: dict[str, int | None] = {}
    heads: dict[str, Future[int | None]] = {}
    for filename, (_name, link, metadata) in files.items():
        size = _known_size(link, metadata)
        sizes[filename] = size
        if size is None and not link.is_local and not offline:
            heads[filename] = pool.submit(
                _timed, timings, "size", md.head_size, session, link.url, timeout
            )
    satisfied: dict[str, Future[SatisfiedBy | None]] = {}
    for filename in files:
        satisfied[filename] = pool.submit(
            _timed,
            timings,
            "hash",
            find_satisfied,
            filename,
            hashes[filename][0].get("sha256"),
            dest_dir,
            cache,
        )
    for filename, head in heads.items():
        size = sizes[filename] = head.result()
        link = files[filename][1]
        if metadata_cache is not None and size is not None and link.sha256 is not None:
            _remember_size(metadata_cache, link, link.sha256, size)
    return {
        filename: ArtifactFacts(
            hashes=hashes[filename][0],
            hash_source=hashes[filename][1],
            size=sizes[filename],
            satisfied_by=satisfied[filename].result(),
        )
        for filename in files
    }


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
