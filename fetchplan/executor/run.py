"""Executing a plan: the library entry points behind ``fetchplan fetch``.

:func:`execute_plan` runs a plan to the end and returns a :class:`FetchResult`.
:func:`open_execution` does the same step by step: iterating it yields each artifact the moment
it is verified in place, so a caller can start installing while downloads continue; the
result is ready once iteration ends. Either way, in this order: credentials and trusted hosts
are resolved and the plan is read and checked (nothing is fetched from a plan that fails);
the destination is locked; workers obtain the artifacts; ``plan.json`` and ``manifest.json``
(only verified files) are written, also when the run is interrupted or some artifacts fail.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

from fetchplan._offline import offline_session
from fetchplan._urls import parses, redact
from fetchplan.auth import CredentialStore
from fetchplan.cache import ArtifactCache, default_cache_dir
from fetchplan.errors import FetchplanError, InputError
from fetchplan.executor.checkpoint import CheckpointStore, utc_now
from fetchplan.executor.context import (
    ArtifactFailed,
    Cancelled,
    Context,
    FileTiming,
    build_session,
)
from fetchplan.executor.download import Verified, obtain
from fetchplan.executor.limits import TransferLimits
from fetchplan.executor.lock import destination_lock
from fetchplan.executor.manifests import build_manifest, write_run_outputs
from fetchplan.executor.mirror import MirrorIndex, MirrorLocation, parse_mirror
from fetchplan.executor.plancheck import LoadedPlan, read_plan
from fetchplan.executor.progress import NullReporter, ProgressState, Reporter
from fetchplan.executor.retry import RetryPolicy
from fetchplan.executor.scheduler import Done, Scheduler
from fetchplan.executor.shard import shard_members
from fetchplan.executor.summary import Failure, FetchResult, write_timings
from fetchplan.pipconfig import PipSettings, read_pip_settings
from fetchplan.schemas import plan_digest
from fetchplan.schemas.plan import Artifact

__all__ = ["Execution", "FetchOptions", "RunSetup", "execute_plan", "open_execution", "set_up_run"]

log = logging.getLogger(__name__)

DEFAULT_PER_HOST = 8
MAX_DEFAULT_JOBS = 16


@dataclass(frozen=True, kw_only=True, slots=True)
class FetchOptions:
    """How to execute a plan. Defaults suit an interactive run."""

    destination: Path | None = None
    """Where the files go; None means the plan's own destination (relative to the plan)."""
    jobs: int | None = None
    """Parallel transfers; None sizes the pool from the plan (up to 16)."""
    per_host: int = DEFAULT_PER_HOST
    cache_dir: Path | None = None
    """The content-addressed cache; None means the user's cache directory."""
    use_cache: bool = True
    allow_unhashed: bool = False
    trusted_hosts: tuple[str, ...] = ()
    credential_urls: tuple[str, ...] = ()
    """Index URLs that may carry credentials (``--index-url`` and friends)."""
    use_pip_config: bool = True
    """Also take trusted hosts and credential-bearing index URLs from pip's configuration."""
    use_netrc: bool = True
    wait_for_lock: bool = True
    shard: tuple[int, int] | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    limits: TransferLimits = field(default_factory=TransferLimits)
    timings_path: Path | None = None
    tick: float = 0.2
    """How often the reporter gets a fresh snapshot, in seconds."""
    mirror: str | None = None
    """A directory or URL to take files from (by file name, verified by the plan's hashes)
    before their own URLs; see :mod:`fetchplan.executor.mirror`."""
    offline: bool = False
    """Never open a network connection: files come from the destination, ``seed_dirs``, the
    cache or a local mirror; any other is a failure naming it."""
    seed_dirs: tuple[Path, ...] = ()
    """Directories (an earlier fetch's destination) whose files of the planned names are
    taken, re-verified, instead of fetching them."""


def _pip_settings(options: FetchOptions) -> PipSettings:
    """pip's configuration when wanted (credential-bearing URLs, trusted hosts, TLS files)."""
    if not options.use_pip_config:
        return PipSettings()
    try:
        return read_pip_settings()
    except FetchplanError as exc:
        log.debug("not using pip's configuration: %s", exc)
        return PipSettings()


def _pip_sources(settings: PipSettings) -> tuple[list[str], list[str]]:
    """Credential-bearing URLs and trusted hosts of pip's configuration; a URL whose host or
    port does not parse is refused naming where it was given (the variable, or the file and
    key), as the planner refuses it."""
    urls = [u for u in (settings.index_url, *settings.extra_index_urls) if u is not None]
    for url in (*urls, *settings.find_links):
        if "://" in url and not parses(url):
            where = next(
                (w for value, w in settings.origins if value == url), "pip's configuration"
            )
            raise InputError(
                f"{where}: {redact(url)!r}: not a usable URL (its host or port does not parse)"
            )
    urls += [u for u in settings.find_links if urlsplit(u).scheme in ("http", "https")]
    return urls, list(settings.trusted_hosts)


def _default_jobs(count: int, hosts: int, per_host: int) -> int:
    return max(1, min(MAX_DEFAULT_JOBS, count, hosts * per_host))


@dataclass(frozen=True, kw_only=True, slots=True)
class RunSetup:
    """What a run is to do, decided from the plan and the options before anything is opened."""

    loaded: LoadedPlan
    plan_sha256: str
    destination: Path
    artifacts: tuple[Artifact, ...]
    """The plan's artifacts, or those of the shard asked for."""
    skipped: int
    """Artifacts left to other shards."""
    trusted_hosts: frozenset[str]
    mirror: MirrorLocation | None
    credential_urls: tuple[str, ...]
    """URLs whose credentials the run may use (for the credential store)."""
    preload: tuple[str, ...]
    """URLs whose credentials are settled before any worker starts (none offline)."""
    hosts: int
    jobs: int
    per_host: int


def set_up_run(
    loaded: LoadedPlan,
    plan_path: Path,
    options: FetchOptions,
    *,
    trusted_hosts: frozenset[str],
    pip_urls: Sequence[str] = (),
    mirror: MirrorLocation | None = None,
) -> RunSetup:
    """The set-up of a run of ``loaded`` (read from ``plan_path``); pure.

    Raises :class:`InputError` for a mirror URL with ``offline``.
    """
    if mirror is not None and options.offline and not mirror.is_local:
        raise InputError(
            f"--mirror {mirror.url}: a URL needs the network, but --offline forbids it; "
            "give a directory"
        )
    plan = loaded.plan
    # An editable is installed from its directory: there is nothing to fetch.
    artifacts: list[Artifact] = [a for a in plan.artifacts if not a.editable]
    if options.shard is not None:
        index, count = options.shard
        artifacts = [artifacts[i] for i in shard_members(artifacts, index, count)]
    preload: list[str] = []
    if not options.offline:
        preload = [a.url for a in artifacts if urlsplit(a.url).scheme != "file"]
        if mirror is not None and not mirror.is_local:
            preload.append(mirror.url)
    hosts = len({_host_key(a) for a in artifacts})
    per_host = max(1, options.per_host)
    return RunSetup(
        loaded=loaded,
        plan_sha256=plan_digest(loaded.document),
        destination=(
            options.destination
            if options.destination is not None
            else plan.destination_dir(plan_path)
        ),
        artifacts=tuple(artifacts),
        skipped=len(plan.artifacts) - len(artifacts),
        trusted_hosts=trusted_hosts,
        mirror=mirror,
        credential_urls=(
            *options.credential_urls,
            *pip_urls,
            *([] if mirror is None else [mirror.given]),
        ),
        preload=tuple(preload),
        hosts=hosts,
        jobs=(
            options.jobs
            if options.jobs is not None
            else _default_jobs(len(artifacts), hosts, per_host)
        ),
        per_host=per_host,
    )


class Execution:
    """One run of a plan; a context manager to iterate for verified artifacts.

    Entering reads and checks the plan and locks the destination (raising
    :class:`FileFormatError` or :class:`DestinationBusy` before anything is fetched).
    Leaving writes the manifest and timings and unlocks, also after an error or an interrupt
    (the workers stop first). :attr:`result` is set once leaving is done.
    """

    def __init__(
        self, plan_path: Path, options: FetchOptions, reporter: Reporter | None = None
    ) -> None:
        self.plan_path = plan_path
        self.options = options
        self.reporter: Reporter = reporter if reporter is not None else NullReporter()
        self.result: FetchResult | None = None
        self._stack = ExitStack()
        self._verified: list[Verified] = []
        self._failures: list[Failure] = []
        self._interrupted = False
        self._finished = False
        self._scheduler: Scheduler[Artifact, Verified] | None = None

    # -- setup -------------------------------------------------------------------------------

    def __enter__(self) -> Execution:
        options = self.options
        self._started_at = utc_now()
        self._t0 = time.monotonic()
        pip_settings = _pip_settings(options)
        pip_urls, pip_trusted = _pip_sources(pip_settings)
        trusted = (*options.trusted_hosts, *pip_trusted)
        loaded = read_plan(
            self.plan_path,
            allow_unhashed=options.allow_unhashed,
            trusted_hosts=trusted,
            destination_given=options.destination is not None,
        )
        trusted_set = frozenset(h.lower() for h in trusted)
        mirror = None if options.mirror is None else parse_mirror(options.mirror, trusted_set)
        setup = set_up_run(
            loaded,
            self.plan_path,
            options,
            trusted_hosts=trusted_set,
            pip_urls=pip_urls,
            mirror=mirror,
        )
        self.setup = setup
        self.loaded = setup.loaded
        self.plan_sha256 = setup.plan_sha256
        self.destination = setup.destination
        self.artifacts = list(setup.artifacts)
        self.skipped = setup.skipped
        self.jobs = setup.jobs
        self.per_host = setup.per_host
        self.context = self._open_services(setup, pip_settings)
        self.progress = self.context.progress
        log.info(
            "fetching %d artifact(s) of %s into %s with %d worker(s)",
            len(self.artifacts),
            self.plan_path,
            self.destination,
            self.jobs,
        )
        return self

    def _open_services(self, setup: RunSetup, pip_settings: PipSettings) -> Context:
        """Credentials settled, the destination made and locked, the checkpoint, session and
        cache open: the context the workers share. What is opened closes with the run."""
        options = self.options
        # Credentials are settled here, on the caller's thread: no worker ever prompts.
        credentials = CredentialStore(list(setup.credential_urls), use_netrc=options.use_netrc)
        if not options.offline:
            credentials.preload(list(setup.preload))
        setup.destination.mkdir(parents=True, exist_ok=True)
        seeds = tuple(
            d for d in options.seed_dirs if d.is_dir() and not _same_dir(d, setup.destination)
        )
        stack = self._stack
        try:
            stack.enter_context(
                destination_lock(
                    setup.destination, wait=options.wait_for_lock, on_wait=self.reporter.note
                )
            )
            checkpoint = stack.enter_context(CheckpointStore(setup.destination / ".fetchplan"))
            session = (
                offline_session() if options.offline else build_session(setup.jobs, setup.hosts + 1)
            )
            pip_settings.apply_tls(session)
            stack.callback(session.close)
            cache = None
            if options.use_cache:
                cache = ArtifactCache(
                    options.cache_dir if options.cache_dir is not None else default_cache_dir()
                )
            artifacts = setup.artifacts
            context = Context(
                destination=setup.destination,
                session=session,
                credentials=credentials,
                checkpoint=checkpoint,
                cache=cache,
                retry=options.retry,
                limits=options.limits,
                progress=ProgressState(len(artifacts), sum(a.size or 0 for a in artifacts)),
                trusted_hosts=setup.trusted_hosts,
                clock_origin=self._t0,
                mirror=None
                if setup.mirror is None
                else MirrorIndex(setup.mirror, setup.trusted_hosts),
                offline=options.offline,
                seeds=seeds,
                plan_dir=self.plan_path.parent,
            )
            context.partial_dir.mkdir(parents=True, exist_ok=True)
        except BaseException:
            stack.close()
            raise
        return context

    def partial_path(self, artifact: Artifact) -> Path:
        """Where ``artifact``'s bytes arrive while it downloads (renamed once verified)."""
        return self.context.partial_path(artifact.destination)

    def final_path(self, artifact: Artifact) -> Path:
        """Where ``artifact`` is once verified."""
        return self.destination / artifact.destination

    # -- the run -----------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Verified]:
        if self._scheduler is not None:
            raise RuntimeError("an execution can be iterated only once")
        reporter = self.reporter
        reporter.start(len(self.artifacts), self.progress.bytes_total)
        scheduler: Scheduler[Artifact, Verified] = Scheduler(
            self.artifacts,
            self._obtain,
            jobs=self.jobs,
            per_host=self.per_host,
            host=_host_key,
            weight=lambda a: a.size or 0,
        )
        self._scheduler = scheduler
        last_update = [0.0]

        def tick() -> None:
            now = time.monotonic()
            if now - last_update[0] >= self.options.tick:
                last_update[0] = now
                reporter.update(self.progress.snapshot())

        complete = False
        try:
            scheduler.start()
            for done in scheduler.results(self.options.tick, tick):
                verified = self._take(done)
                if verified is not None:
                    yield verified
            complete = True
        finally:
            self._shut_down(interrupt=not complete)

    def _take(self, done: Done[Artifact, Verified]) -> Verified | None:
        """Record one finished artifact; return it if it was verified."""
        if isinstance(done.error, ArtifactFailed):
            self._failures.append(_failure(done.item, done.error))
            log.info("failed: %s", done.error)
            self.reporter.note(f"failed: {done.error}")
        elif isinstance(done.error, Cancelled):
            self._interrupted = True
        elif done.error is not None:
            # A bug, not a network problem: report it against the artifact and go on.
            log.error("%s: unexpected error", done.item.destination, exc_info=done.error)
            error = ArtifactFailed(done.item.destination, f"internal error: {done.error!r}")
            self._failures.append(_failure(done.item, error))
        elif done.value is not None:
            self._verified.append(done.value)
            return done.value
        return None

    def _shut_down(self, *, interrupt: bool) -> None:
        """Stop the workers (interrupting them if asked), wait for them, keep their results."""
        if self._finished:
            return
        self._finished = True
        scheduler = self._scheduler
        if interrupt:
            self._interrupted = True
            self.context.interrupt()
        if scheduler is not None:
            scheduler.close()
            for done in scheduler.drain():
                self._take(done)
            self.reporter.update(self.progress.snapshot())

    def _obtain(self, artifact: Artifact) -> Verified:
        if self.context.cancel.is_set():
            raise Cancelled("interrupted")
        return obtain(artifact, self.context)

    # -- teardown ----------------------------------------------------------------------------

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            # Workers must be gone before the manifest is written and the lock released.
            self._shut_down(interrupt=True)
            handled = len(self._verified) + len(self._failures)
            interrupted = self._interrupted or handled < len(self.artifacts)
            manifest = build_manifest(
                plan_sha256=self.plan_sha256,
                verified=self._verified,
                order=[a.destination for a in self.loaded.plan.artifacts],
                shard=self.options.shard,
            )
            manifest_path = write_run_outputs(
                self.destination, self.plan_path, self.loaded.document, manifest
            )
            self.result = FetchResult(
                plan_sha256=self.plan_sha256,
                plan_path=self.plan_path,
                destination=self.destination,
                manifest_path=manifest_path,
                verified=tuple(self._verified),
                failures=tuple(self._failures),
                skipped=self.skipped,
                interrupted=interrupted,
                started_at=self._started_at,
                wall_seconds=time.monotonic() - self._t0,
                jobs=self.jobs,
                per_host=self.per_host,
                shard=self.options.shard,
            )
            if self.options.timings_path is not None:
                write_timings(self.options.timings_path, self.result)
        finally:
            self._stack.close()
        self.reporter.finish(self.result)


def _same_dir(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)
    except OSError:
        return False


def _host_key(artifact: Artifact) -> str:
    parts = urlsplit(artifact.url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2].lower()}"


def _failure(artifact: Artifact, error: ArtifactFailed) -> Failure:
    timing = error.timing
    if timing is None:
        timing = FileTiming(destination=artifact.destination, host="", size=artifact.size)
        timing.error = error.reason
    return Failure(
        destination=artifact.destination,
        name=artifact.name,
        version=artifact.version,
        url=artifact.url,
        reason=error.reason,
        timing=timing,
    )


def open_execution(
    plan_path: Path, options: FetchOptions | None = None, reporter: Reporter | None = None
) -> Execution:
    """A run of ``plan_path`` to use as ``with open_execution(...) as run: for v in run: ...``.

    Each :class:`Verified` is yielded once its file is in place and matched the plan.
    ``run.result`` holds the :class:`FetchResult` after the ``with`` block.
    """
    return Execution(plan_path, options if options is not None else FetchOptions(), reporter)


def execute_plan(
    plan_path: Path, options: FetchOptions | None = None, reporter: Reporter | None = None
) -> FetchResult:
    """Fetch every artifact of the plan at ``plan_path`` (or of its shard) and verify it.

    Returns the result, also when some artifacts failed (``result.ok`` is False; each failure
    says why). Raises :class:`FileFormatError` for a plan that fails its checks and
    :class:`DestinationBusy` when the destination is locked and ``wait_for_lock`` is off;
    re-raises ``KeyboardInterrupt`` after writing the manifest of what was verified.
    """
    execution = open_execution(plan_path, options, reporter)
    with execution:
        for _ in execution:
            pass
    if execution.result is None:  # pragma: no cover - __exit__ always sets it
        raise RuntimeError("execution produced no result")
    return execution.result
