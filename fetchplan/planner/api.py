"""The planner's library entry: :func:`make_plan` turns :class:`PlanOptions` into a plan.

It wires the pieces together: requirements files (:mod:`.reqfile`), index settings (command
line, then ``PIP_*`` variables and pip's configuration, then pip's default index), credentials
(resolved before any thread starts), the target environment, a bounded thread pool sharing one
HTTP session, the resolver, and finally hashes, sizes and local copies of every chosen file.
Only index pages and metadata are downloaded, unless ``compute_hashes`` asks for files whose
index gives no hash. ``fetchplan plan`` and ``fetchplan run`` both call :func:`make_plan`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import requests
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name

from fetchplan._fs import CHUNK_SIZE, sha256_file
from fetchplan._urls import is_secure_or_trusted, redact
from fetchplan.auth import CredentialStore
from fetchplan.cache import ArtifactCache, default_cache_dir
from fetchplan.errors import HashMismatch, InputError, NetworkError
from fetchplan.pipconfig import PipSettings, pip_default_index, read_pip_settings
from fetchplan.planner import metadata as md
from fetchplan.planner import reqfile
from fetchplan.planner.build import ArtifactFacts, build_plan, created_now, find_satisfied
from fetchplan.planner.candidates import DistMetadata, FormatControl
from fetchplan.planner.http import HttpPolicy, make_session
from fetchplan.planner.index import IndexClient, IndexSource, Link, file_url_path, source_for
from fetchplan.planner.prefetch import IndexStrategy, PrefetchFinder
from fetchplan.planner.provider import PlanProvider, Req, is_pinned
from fetchplan.planner.resolve import Resolution, resolve
from fetchplan.planner.target import TargetEnv, make_target
from fetchplan.planner.timings import Timings
from fetchplan.schemas.plan import HashSource, IndexRef, Inputs, Plan, SatisfiedBy

__all__ = ["PlanOptions", "PlanResult", "make_plan"]

log = logging.getLogger(__name__)

FormatOp = tuple[Literal["no_binary", "only_binary"], str]


@dataclass(frozen=True, kw_only=True, slots=True)
class PlanOptions:
    """Everything ``fetchplan plan`` accepts, as plain values (paths relative to the cwd)."""

    requirements: Sequence[str] = ()
    requirement_files: Sequence[Path] = ()
    constraint_files: Sequence[Path] = ()
    index_url: str | None = None
    extra_index_urls: Sequence[str] = ()
    find_links: Sequence[str] = ()
    no_index: bool = False
    trusted_hosts: Sequence[str] = ()
    index_strategy: IndexStrategy = IndexStrategy.FIRST_INDEX
    pre: bool = False
    format_ops: Sequence[FormatOp] = ()
    """``--no-binary``/``--only-binary`` values in command-line order."""
    prefer_binary: bool = False
    require_hashes: bool = False
    python_version: str | None = None
    platforms: Sequence[str] = ()
    implementation: str | None = None
    abis: Sequence[str] = ()
    output: Path = Path("plan.json")
    """Where the plan will be written: the destination is recorded relative to its directory."""
    dest: Path | None = None
    """Destination directory (relative to the cwd); default: ``wheels`` beside the plan file."""
    cache_dir: Path | None = None
    no_cache: bool = False
    compute_hashes: bool = False
    jobs: int = 8
    timeout: float = 30.0
    retries: int = 3
    backoff: float = 0.25
    isolated: bool = False
    """Ignore ``PIP_*`` variables and pip's configuration files (pip's ``--isolated``)."""
    use_netrc: bool = True
    pip_settings: PipSettings | None = None
    """Settings to use instead of asking pip (tests, embedding)."""
    default_index: str | None = None
    """pip's default index, when already known (else pip is asked, only if needed)."""


@dataclass(frozen=True, slots=True)
class PlanResult:
    plan: Plan
    timings: Timings
    cache: ArtifactCache | None = field(default=None)


@dataclass(frozen=True, slots=True)
class _Sources:
    indexes: tuple[IndexSource, ...]
    find_links: tuple[IndexSource, ...]
    trusted_hosts: tuple[str, ...]
    no_index: bool
    raw_urls: tuple[str, ...]
    """As given, credentials included: for the credential store only."""


def make_plan(options: PlanOptions) -> PlanResult:
    """Resolve the requirements of ``options`` and return the (not yet written) plan.

    Raises :class:`~fetchplan.errors.FetchplanError` subclasses with one-line messages: bad
    input (:class:`InputError`), resolution failures (:class:`ResolutionError`), index
    failures (:class:`NetworkError`, ``IndexPageError``) and hash mismatches.
    """
    timings = Timings()
    if options.jobs < 1:
        raise InputError(f"--jobs must be at least 1, not {options.jobs}")
    requirement_set = _read_requirements(options)
    sources = _sources(options, requirement_set.options)
    target = make_target(
        python_version=options.python_version,
        platforms=options.platforms,
        implementation=options.implementation,
        abis=options.abis,
    )
    file_options = requirement_set.options
    pre = options.pre or file_options.pre
    prefer_binary = options.prefer_binary or file_options.prefer_binary
    formats = FormatControl(
        only_binary=frozenset(file_options.only_binary),
        no_binary=frozenset(file_options.no_binary),
    )
    user_reqs, constraints, allowed_hashes = _requirements(requirement_set, target)
    require_hashes = options.require_hashes or file_options.require_hashes or bool(allowed_hashes)
    if require_hashes:
        _check_pinned(requirement_set)

    store = CredentialStore(sources.raw_urls, use_netrc=options.use_netrc)
    store.preload(s.url for s in (*sources.indexes, *sources.find_links))
    policy = HttpPolicy(
        timeout=options.timeout,
        retries=options.retries,
        backoff=options.backoff,
        pool_size=options.jobs,
    )
    session = make_session(policy, store, trusted_hosts=sources.trusted_hosts, timings=timings)
    cache = None if options.no_cache else ArtifactCache(options.cache_dir or default_cache_dir())
    plan_dir = options.output.absolute().parent
    dest_dir = (plan_dir / "wheels") if options.dest is None else options.dest.absolute()
    trusted = frozenset(sources.trusted_hosts)

    pool = ThreadPoolExecutor(max_workers=options.jobs, thread_name_prefix="fetchplan")
    succeeded = False
    try:
        finder = PrefetchFinder(
            client=IndexClient(session, timeout=options.timeout, timings=timings),
            indexes=sources.indexes,
            find_links=sources.find_links,
            strategy=options.index_strategy,
            target=target,
            formats=formats,
            allowed_hashes=allowed_hashes,
            url_ok=lambda url: is_secure_or_trusted(url, trusted),
            fetch_metadata=_metadata_fetcher(session, cache, dest_dir, options.timeout),
            executor=pool,
            timings=timings,
            pre=pre,
        )
        provider = PlanProvider(
            finder, target, pre=pre, prefer_binary=prefer_binary, constraints=constraints
        )
        resolution = resolve(provider, user_reqs, timings=timings)
        dropped = finder.cancel_pending()
        if dropped:
            log.debug("dropped %d speculative fetches no longer needed", dropped)
        metadata = {name: finder.metadata(c) for name, c in resolution.pins.items()}
        if require_hashes:
            _check_hashes_given(resolution, allowed_hashes)
        facts = _facts(
            resolution,
            metadata,
            allowed_hashes=allowed_hashes,
            session=session,
            pool=pool,
            cache=cache,
            dest_dir=dest_dir,
            compute_hashes=options.compute_hashes,
            timeout=options.timeout,
            timings=timings,
        )
        succeeded = True
    finally:
        # On failure, do not wait for speculative fetches still running.
        pool.shutdown(wait=succeeded, cancel_futures=True)
        session.close()

    plan = build_plan(
        resolution=resolution,
        metadata=metadata,
        facts=facts,
        target=target,
        inputs=_inputs(requirement_set, options, sources, pre=pre, prefer_binary=prefer_binary),
        indexes=[IndexRef(url=s.url, kind=s.kind) for s in (*sources.indexes, *sources.find_links)],
        destination=_relative(dest_dir, plan_dir),
        created=created_now(),
    )
    timings.finish()
    return PlanResult(plan=plan, timings=timings, cache=cache)


# -- inputs -----------------------------------------------------------------------------------


def _read_requirements(options: PlanOptions) -> reqfile.RequirementSet:
    command_line = reqfile.RequirementSet(
        requirements=tuple(reqfile.parse_requirement_string(text) for text in options.requirements),
        options=reqfile.RequirementOptions(format_ops=tuple(options.format_ops)),
    )
    sets = [command_line]
    sets.extend(reqfile.parse_requirements_file(path) for path in options.requirement_files)
    sets.extend(
        reqfile.parse_requirements_file(path, constraint=True) for path in options.constraint_files
    )
    merged = reqfile.merge(*sets)
    if not merged.requirements:
        raise InputError("nothing to plan: give requirements as arguments or with -r FILE")
    return merged


def _sources(options: PlanOptions, file_options: reqfile.RequirementOptions) -> _Sources:
    if options.pip_settings is not None:
        pip = options.pip_settings
    elif options.isolated:
        pip = PipSettings()
    else:
        pip = read_pip_settings()
    # pip's option parser takes configuration as defaults: a command-line --index-url replaces
    # the configured one, list options add to the configured lists.
    index_url = options.index_url if options.index_url is not None else pip.index_url
    if file_options.index_url is not None:
        index_url = file_options.index_url
    extra = [*pip.extra_index_urls, *options.extra_index_urls, *file_options.extra_index_urls]
    find_links = [*pip.find_links, *options.find_links, *file_options.find_links]
    trusted = [*pip.trusted_hosts, *options.trusted_hosts, *file_options.trusted_hosts]
    no_index = options.no_index or pip.no_index or file_options.no_index
    index_urls: list[str] = []
    if not no_index:
        if index_url is None:
            index_url = options.default_index or pip_default_index()
        index_urls = [index_url, *extra]
    indexes = _unique_sources(index_urls, "index")
    flat = _unique_sources(find_links, "find-links")
    trusted_set = frozenset(trusted)
    for source in (*indexes, *flat):
        if not is_secure_or_trusted(source.url, trusted_set):
            raise InputError(
                f"{redact(source.url)}: plain http:// is accepted only for loopback hosts and "
                "hosts given with --trusted-host"
            )
    return _Sources(
        indexes=indexes,
        find_links=flat,
        trusted_hosts=tuple(dict.fromkeys(trusted)),
        no_index=no_index,
        raw_urls=(*index_urls, *find_links),
    )


def _unique_sources(
    urls: Iterable[str], kind: Literal["index", "find-links"]
) -> tuple[IndexSource, ...]:
    seen: dict[str, IndexSource] = {}
    for url in urls:
        source = source_for(url, kind)
        seen.setdefault(source.url, source)
    return tuple(seen.values())


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
    requirement_set: reqfile.RequirementSet,
    options: PlanOptions,
    sources: _Sources,
    *,
    pre: bool,
    prefer_binary: bool,
) -> Inputs:
    file_options = requirement_set.options
    opts: dict[str, Any] = {
        "pre": pre,
        "only_binary": sorted(file_options.only_binary),
        "no_binary": sorted(file_options.no_binary),
        "no_index": sources.no_index,
        "index_strategy": options.index_strategy.value,
        "compute_hashes": options.compute_hashes,
        "trusted_hosts": sorted(set(sources.trusted_hosts)),
    }
    if prefer_binary:
        opts["prefer_binary"] = True
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
    session: requests.Session, cache: ArtifactCache | None, dest_dir: Path, timeout: float
) -> Callable[[Link], DistMetadata]:
    def fetch(link: Link) -> DistMetadata:
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
        if link.kind == "wheel":
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
        else:
            fetched = md.sdist_metadata(
                session,
                url=link.url,
                filename=link.filename,
                sha256=sha256,
                local_files=local,
                cache=cache,
                timeout=timeout,
            )
        return _dist_metadata(fetched)

    return fetch


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
    )


# -- hashes, sizes, local copies --------------------------------------------------------------


def _facts(
    resolution: Resolution,
    metadata: Mapping[NormalizedName, DistMetadata],
    *,
    allowed_hashes: Mapping[NormalizedName, Mapping[str, frozenset[str]]],
    session: requests.Session,
    pool: ThreadPoolExecutor,
    cache: ArtifactCache | None,
    dest_dir: Path,
    compute_hashes: bool,
    timeout: float,
    timings: Timings,
) -> dict[NormalizedName, ArtifactFacts]:
    hashes: dict[NormalizedName, tuple[dict[str, str], HashSource | None]] = {}
    to_compute: dict[NormalizedName, Future[str]] = {}
    for name, candidate in resolution.pins.items():
        link = candidate.link
        assert link is not None
        # With --compute-hashes a digest the requirements claim is checked, not just taken.
        claimed = None if compute_hashes else allowed_hashes.get(name)
        found, source = _known_hashes(link, metadata[name], claimed)
        hashes[name] = (found, source)
        if "sha256" not in found:
            if compute_hashes:
                to_compute[name] = pool.submit(
                    _timed, timings, "hash", _download_hash, session, link, cache, timeout
                )
            else:
                log.warning(
                    "%s: the index gives no sha256 for %s; use --compute-hashes to fetch and "
                    "hash it now",
                    name,
                    link.filename,
                )
    for name, future in to_compute.items():
        hashes[name] = ({"sha256": future.result()}, "computed")
    for name, (found, _source) in hashes.items():
        _check_allowed(name, resolution, found, allowed_hashes.get(name))

    sizes: dict[NormalizedName, int | None] = {}
    heads: dict[NormalizedName, Future[int | None]] = {}
    for name, candidate in resolution.pins.items():
        link = candidate.link
        assert link is not None
        size = _known_size(link, metadata[name])
        sizes[name] = size
        if size is None and not link.is_local:
            heads[name] = pool.submit(
                _timed, timings, "size", md.head_size, session, link.url, timeout
            )
    satisfied: dict[NormalizedName, Future[SatisfiedBy | None]] = {}
    for name, candidate in resolution.pins.items():
        link = candidate.link
        assert link is not None
        satisfied[name] = pool.submit(
            _timed,
            timings,
            "hash",
            find_satisfied,
            link.filename,
            hashes[name][0].get("sha256"),
            dest_dir,
            cache,
        )
    for name, head in heads.items():
        sizes[name] = head.result()
    return {
        name: ArtifactFacts(
            hashes=hashes[name][0],
            hash_source=hashes[name][1],
            size=sizes[name],
            satisfied_by=satisfied[name].result(),
        )
        for name in resolution.pins
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
    name: NormalizedName,
    resolution: Resolution,
    found: Mapping[str, str],
    allowed: Mapping[str, frozenset[str]] | None,
) -> None:
    if not allowed:
        return
    common = [algo for algo in allowed if algo in found]
    if not common:
        return  # nothing to compare now; the executor verifies the sha256 it downloads
    if any(found[algo] in allowed[algo] for algo in common):
        return
    algo = common[0]
    link = resolution.pins[name].link
    where = link.url if link is not None else name
    raise HashMismatch(redact(where), algo, " or ".join(sorted(allowed[algo])), found[algo])


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
    where = redact(link.url)
    directory = None
    if cache is not None:
        cache.root.mkdir(parents=True, exist_ok=True)
        directory = str(cache.root)
    fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=".hash.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            try:
                response = session.get(
                    link.url, stream=True, timeout=timeout, headers={"Accept-Encoding": "identity"}
                )
            except requests.RequestException as exc:
                raise NetworkError(f"{where}: {redact(str(exc))}") from None
            with response:
                if response.status_code != 200:
                    raise NetworkError(f"{where}: HTTP {response.status_code}")
                try:
                    for chunk in response.iter_content(CHUNK_SIZE):
                        digest.update(chunk)
                        out.write(chunk)
                except requests.RequestException as exc:
                    raise NetworkError(f"{where}: download interrupted: {exc}") from None
        actual = digest.hexdigest()
        if cache is not None:
            cache.add(tmp, actual)
        return actual
    finally:
        tmp.unlink(missing_ok=True)
