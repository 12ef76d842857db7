""":func:`~fetchplan.planner.api.make_plan`'s work once the inputs are read (see that module).

:func:`plan` wires the run together: the session and caches, one resolution per target
(several targets side by side, sharing every page and metadata file) and one for the build
requirements of each target's sdists, then the facts of every chosen file (:mod:`.facts`) and
the plan (:func:`.build.build_plan`). The other jobs have modules of their own: what each
target asks for (:mod:`.requested`), the metadata the resolver reads (:mod:`.fetch_metadata`),
the session and index access (:mod:`.access`). Imported by :mod:`.api` only after the
connections to the index have started opening.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from packaging.utils import NormalizedName, canonicalize_name

from fetchplan._urls import is_secure_or_trusted
from fetchplan.cache import ArtifactCache, MetadataCache, PageCache, default_cache_dir
from fetchplan.errors import FetchplanError, InputError
from fetchplan.planner import reqfile
from fetchplan.planner.access import planner_session
from fetchplan.planner.build import (
    Role,
    build_plan,
    created_now,
    plan_inputs,
    relative_destination,
)
from fetchplan.planner.candidates import FormatControl
from fetchplan.planner.context import CachingIndexClient, ResolveContext, TargetResolution
from fetchplan.planner.direct import DirectPlanner
from fetchplan.planner.facts import file_facts
from fetchplan.planner.fetch_metadata import metadata_fetcher
from fetchplan.planner.locations import Sources
from fetchplan.planner.options import PlanOptions, PlanResult
from fetchplan.planner.overrides import read_overrides
from fetchplan.planner.pins import kept_pins
from fetchplan.planner.preconnect import Preconnector
from fetchplan.planner.provider import DependencyURL
from fetchplan.planner.requested import (
    check_hashes_given,
    check_pinned,
    merged_hashes,
    requirements_for,
)
from fetchplan.planner.sdist import WHEELS_ONLY, SdistBuildError, SdistPlanner, build_requirements
from fetchplan.planner.target import TargetEnv, make_target
from fetchplan.planner.targets import make_targets, parse_target_spec
from fetchplan.planner.timings import Timings
from fetchplan.schemas.plan import BUILT_KINDS, Artifact, IndexRef

if TYPE_CHECKING:
    import requests

__all__ = ["plan"]

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
    sizes and local copies of every chosen file (:mod:`.facts`), then the plan
    (:func:`.build.build_plan`); the session starts from ``preconnector``'s connections."""
    targets = _targets(options)
    settings = sources.settings
    pre = settings.pre
    prefer_binary = settings.prefer_binary
    formats = FormatControl(
        only_binary=frozenset(settings.only_binary), no_binary=frozenset(settings.no_binary)
    )
    overrides = read_overrides(options.override_files)
    # The user's own requirements are overridden too; the plan's inputs keep them as given.
    resolved_set = replace(
        requirement_set, requirements=overrides.apply_to_user(requirement_set.requirements)
    )
    per_target = {t.name: requirements_for(resolved_set, t) for t in targets}
    kept = kept_pins(
        output=options.output,
        from_file=options.pins_from,
        upgrade=options.upgrade,
        upgrade_packages=options.upgrade_packages,
    )
    hashed = any(wanted.hashes for wanted in per_target.values())
    require_hashes = settings.require_hashes or hashed
    if require_hashes:
        check_pinned(requirement_set)
    plan_file = None if str(options.output) == "-" else options.output.absolute()

    session = planner_session(options, sources, timings, preconnector)
    cache, pages, metadata_cache = _caches(options)
    refresh = _refresher(options)
    plan_dir, dest_dir = _directories(options)
    trusted = frozenset(sources.trusted_hosts)
    direct = DirectPlanner(
        requirement_set,
        plan_dir=plan_dir,
        plan_file=plan_file,
        dest_dir=dest_dir,
        several_targets=len(targets) > 1,
    )

    pool = ThreadPoolExecutor(max_workers=options.jobs, thread_name_prefix="fetchplan")
    # Speculative work may still write here when planning fails: cleanup must not raise then.
    scratch = tempfile.TemporaryDirectory(prefix="fetchplan-plan-", ignore_cleanup_errors=True)
    succeeded = False
    try:
        fetch_metadata = metadata_fetcher(
            session,
            cache,
            dest_dir,
            options.timeout,
            lambda: sdists,
            metadata_cache=metadata_cache,
            refresh=refresh,
        )
        context = ResolveContext(
            client=CachingIndexClient(
                session, timeout=options.timeout, timings=timings, pages=pages, refresh=refresh
            ),
            indexes=sources.indexes,
            find_links=sources.find_links,
            strategy=options.index_strategy,
            url_ok=lambda url: is_secure_or_trusted(url, trusted),
            fetch_metadata=direct.wrap(fetch_metadata),
            executor=pool,
            timings=timings,
            pre=pre,
            exclude_newer=settings.exclude_newer,
            exclude_newer_package=dict(settings.exclude_newer_package),
            direct=direct.link_for,
            direct_conflict=direct.conflict,
        )
        sdists = SdistPlanner(
            session=session,
            context=context,
            cache=cache,
            scratch=Path(scratch.name),
            timeout=options.timeout,
            build=options.build_deps,
            max_builds=options.max_sdist_builds,
        )

        def prepare_direct() -> None:
            direct.prepare(
                session=session,
                cache=cache,
                sdists=sdists,
                fetch_metadata=fetch_metadata,
                scratch=Path(scratch.name),
                timeout=options.timeout,
                offline=options.offline,
            )

        prepare_direct()

        def roles_of(target: TargetEnv) -> list[Role]:
            wanted = per_target[target.name]
            resolved = context.resolve(
                wanted.requirements,
                target,
                formats=formats,
                allowed_hashes=wanted.hashes,
                constraints=wanted.constraints,
                prefer_binary=prefer_binary,
                overrides=overrides,
                no_deps=options.no_deps,
                preferred=kept.for_target(target.name),
            )
            if require_hashes:
                check_hashes_given(resolved.resolution, wanted.hashes, direct.names)
            roles = [Role(resolved)]
            if options.build_deps:
                build = _resolve_build(context, sdists, resolved)
                if build is not None:
                    roles.append(Role(build, build=True))
            return roles

        roles = _following_dependency_urls(
            lambda: [role for found in _side_by_side(roles_of, targets) for role in found],
            direct,
            prepare_direct,
        )
        facts = file_facts(
            roles,
            allowed_hashes=merged_hashes(per_target.values()),
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
        plan = build_plan(
            roles=roles,
            facts=facts,
            targets=targets,
            inputs=replace(
                plan_inputs(requirement_set, options, settings), overrides=overrides.texts()
            ),
            indexes=[
                IndexRef(url=s.url, kind=s.kind) for s in (*sources.indexes, *sources.find_links)
            ],
            destination=relative_destination(dest_dir, plan_dir),
            created=created_now(),
        )
        plan = direct.finish_plan(plan)
        if options.attestations:
            plan = replace(
                plan, artifacts=_attested(plan.artifacts, session, pool, options.timeout)
            )
        succeeded = True
    finally:
        # On failure, do not wait for speculative fetches still running.
        pool.shutdown(wait=succeeded, cancel_futures=True)
        session.close()
        scratch.cleanup()

    if pages is not None and metadata_cache is not None:
        timings.set_cache(pages=dict(pages.stats), metadata=dict(metadata_cache.stats))
    timings.finish()
    return PlanResult(plan=plan, timings=timings, cache=cache)


_MAX_DEPENDENCY_URLS = 100
"""Direct references found in dependencies' metadata, at most, in one planning run."""


def _following_dependency_urls(
    resolve: Callable[[], list[Role]], direct: DirectPlanner, prepare: Callable[[], None]
) -> list[Role]:
    """``resolve()``, again after each ``dep @ URL`` a dependency's metadata names that no
    direct reference had prepared: pip and uv follow those, so it is prepared as a direct
    reference (not requested) and the resolution starts over with it known."""
    for _ in range(_MAX_DEPENDENCY_URLS):
        try:
            return resolve()
        except DependencyURL as found:
            log.info("%s; preparing it and resolving again", found)
            direct.add_dependency(found.parent, found.requirement)
            prepare()
    raise InputError(
        f"more than {_MAX_DEPENDENCY_URLS} direct references in dependencies' metadata"
    )


def _caches(
    options: PlanOptions,
) -> tuple[ArtifactCache | None, PageCache | None, MetadataCache | None]:
    """The artifact, page and metadata caches of ``options``: none with ``no_cache``."""
    if options.no_cache:
        return None, None, None
    root = options.cache_dir or default_cache_dir()
    return ArtifactCache(root), PageCache(root / "pages"), MetadataCache(root / "metadata")


def _directories(options: PlanOptions) -> tuple[Path, Path]:
    """The directory the plan will be read from and the destination directory, absolute."""
    plan_dir = options.output.absolute().parent
    if str(options.output) == "-" or plan_dir.parts[1:2] in (("dev",), ("proc",)):
        plan_dir = Path.cwd()  # a plan on standard output (or a device) is read from here
    dest_dir = (plan_dir / "wheels") if options.dest is None else options.dest.absolute()
    return plan_dir, dest_dir


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
        if candidate.link is not None and candidate.link.kind in BUILT_KINDS
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


def _attested(
    artifacts: tuple[Artifact, ...],
    session: requests.Session,
    pool: ThreadPoolExecutor,
    timeout: float,
) -> tuple[Artifact, ...]:
    """``artifacts`` with their PEP 740 attestations verified and recorded; raises
    :class:`~fetchplan.planner.attestations.AttestationFailure` naming every file that fails."""
    from fetchplan.planner.attestations import AttestationFailure, attest_artifacts, http_getter

    attested, problems = attest_artifacts(artifacts, http_getter(session, timeout), executor=pool)
    if problems:
        raise AttestationFailure(problems)
    return attested
