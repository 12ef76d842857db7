"""Obtaining one artifact: :func:`obtain` returns a verified file at its final path, or raises.

In order: a file already at the final name (re-hashed), one of the same name in a seed
directory (an earlier fetch's destination), the content-addressed cache (both materialised
beside the final name, re-hashed), the mirror when there is one, then the artifact's own URL
(never when offline). Downloaded bytes stream into ``<dest>/.fetchplan/partial/<name>.part``
while being hashed, capped at the plan's size; only a partial whose sha256 and size match is
fsynced and renamed to its final name with ``os.replace``, so nothing unverified ever carries
a final name.

Network tries follow the :class:`RetryPolicy`; a try counts as progress only when it takes the
partial further than any try before it. A partial is resumed with ``Range`` and ``If-Range``
when the checkpoint holds a strong validator for it, else with a plain ``Range`` when the plan
pins its sha256 (the hash of the whole then decides). A file whose plan gives no size is cut
off at ``max_unsized_bytes``. A partial whose content turns out wrong is dropped and fetched
once more from zero before the artifact fails.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import threading
from dataclasses import replace
from pathlib import Path
from stat import S_ISREG
from typing import NoReturn
from urllib.parse import urlsplit

from fetchplan._fs import fsync_dir
from fetchplan.errors import HashMismatch
from fetchplan.executor.checkpoint import ArtifactState, ObtainedFrom, utc_now
from fetchplan.executor.context import ArtifactFailed, Cancelled, Context
from fetchplan.executor.outcome import Body, Received, Restart, Retry
from fetchplan.executor.protocol import Validator
from fetchplan.executor.retry import Step, Tries
from fetchplan.executor.transfer import attempt, host_port
from fetchplan.executor.verified import FileTiming, Verified
from fetchplan.executor.verify import check_body, check_metadata, hash_local, matches
from fetchplan.schemas.plan import SOURCE_TREE_KINDS, Artifact

__all__ = ["ArtifactFailed", "Cancelled", "Context", "FileTiming", "Verified", "obtain"]

log = logging.getLogger(__name__)


def obtain(artifact: Artifact, ctx: Context) -> Verified:
    """Put ``artifact`` at ``<destination>/<artifact.destination>``, verified, and return it.

    Raises :class:`ArtifactFailed` (with the reason) when it cannot, and :class:`Cancelled`
    when the run is interrupted. Partial bytes are kept for the next run unless they were
    proven wrong.
    """
    timing = FileTiming(
        destination=artifact.destination,
        host=host_port(artifact.url),
        size=artifact.size,
        start=ctx.now(),
        worker=threading.current_thread().name,
    )
    final = ctx.destination / artifact.destination
    ctx.progress.begin(artifact.destination, artifact.size)
    try:
        found = (
            _existing(artifact, final, ctx, timing)
            or _from_seed(artifact, final, ctx, timing)
            or _from_cache(artifact, final, ctx, timing)
        )
        if found is None and ctx.mirror is not None:
            found = _from_mirror(artifact, final, ctx, timing)
        if found is None and (artifact.kind in SOURCE_TREE_KINDS or artifact.path is not None):
            from fetchplan.executor.local import obtain_local

            found = obtain_local(artifact, final, ctx, timing)
        if found is None:
            if ctx.offline and urlsplit(artifact.url).scheme != "file":
                # (With a mirror, _from_mirror has already failed the artifact.)
                raise ArtifactFailed(
                    artifact.destination,
                    f"offline: {artifact.filename} is not in the destination or the cache "
                    f"(it would come from {artifact.url})",
                )
            found = _download(artifact, final, ctx, timing)
        check_metadata(found.artifact, found.path)
    except OSError as exc:
        timing.end = ctx.now()
        timing.error = f"local I/O error: {exc}"
        ctx.progress.fail(artifact.destination)
        failed = ArtifactFailed(artifact.destination, timing.error)
        failed.timing = timing
        raise failed from exc
    except ArtifactFailed as exc:
        timing.end = ctx.now()
        timing.error = exc.reason
        exc.timing = timing
        ctx.progress.fail(artifact.destination)
        raise
    except BaseException:
        ctx.progress.fail(artifact.destination)
        raise
    timing.end = ctx.now()
    timing.source = found.source
    ctx.progress.finish(artifact.destination, found.size)
    log.info(
        "%s: verified (%s, %d bytes, %d network bytes, %d tries)",
        artifact.destination,
        found.source,
        found.size,
        timing.network_bytes,
        timing.tries,
    )
    return found


def _verified(
    artifact: Artifact,
    final: Path,
    *,
    sha256: str,
    size: int,
    source: ObtainedFrom,
    ctx: Context,
    timing: FileTiming,
) -> Verified:
    ctx.checkpoint.record(ArtifactState.of(artifact, "verified", received=size, source=source))
    return Verified(
        artifact=artifact,
        path=final,
        sha256=sha256,
        size=size,
        source=source,
        verified_at=utc_now(),
        timing=timing,
    )


def _existing(artifact: Artifact, final: Path, ctx: Context, timing: FileTiming) -> Verified | None:
    try:
        stat = final.lstat()
    except FileNotFoundError:
        return None
    if not S_ISREG(stat.st_mode):
        # A link or anything else at the final name is replaced, never followed.
        log.warning("%s: not a regular file; fetching it again", final)
        return None
    if artifact.size is not None and stat.st_size != artifact.size:
        log.warning("%s: existing file has the wrong size; fetching it again", final)
        return None
    started = ctx.now()
    sha256, size = hash_local(final, ctx, artifact.destination)
    timing.phases.append(("verify", started, ctx.now()))
    if not matches(artifact, sha256, size):
        log.warning("%s: existing file does not match the plan's sha256; fetching it again", final)
        ctx.progress.restart(artifact.destination)
        return None
    log.debug("%s: already in place and verified", artifact.destination)
    return _verified(
        artifact, final, sha256=sha256, size=size, source="existing", ctx=ctx, timing=timing
    )


def _from_seed(
    artifact: Artifact, final: Path, ctx: Context, timing: FileTiming
) -> Verified | None:
    """A file of the same name in a seed directory, hard-linked (else copied) beside the final
    name, then re-hashed; only a match is renamed into place."""
    for seed in ctx.seeds:
        source = seed / artifact.destination
        try:
            stat = source.lstat()
        except OSError:
            continue
        if not S_ISREG(stat.st_mode) or (
            artifact.size is not None and stat.st_size != artifact.size
        ):
            continue
        staging = ctx.partial_dir / f"{artifact.destination}.from-seed"
        staging.unlink(missing_ok=True)
        started = ctx.now()
        try:
            try:
                os.link(source, staging)
            except OSError:
                shutil.copyfile(source, staging)
            sha256, size = hash_local(staging, ctx, artifact.destination)
        except OSError as exc:
            log.warning("%s: cannot take it from %s (%s)", artifact.destination, seed, exc)
            staging.unlink(missing_ok=True)
            ctx.progress.restart(artifact.destination)
            continue
        timing.phases.append(("verify", started, ctx.now()))
        if not matches(artifact, sha256, size):
            log.warning(
                "%s: %s does not match the plan; not using it", artifact.destination, source
            )
            staging.unlink(missing_ok=True)
            ctx.progress.restart(artifact.destination)
            continue
        os.replace(staging, final)
        fsync_dir(final.parent)
        log.debug("%s: taken from %s", artifact.destination, seed)
        return _verified(
            artifact, final, sha256=sha256, size=size, source="existing", ctx=ctx, timing=timing
        )
    return None


def _from_mirror(
    artifact: Artifact, final: Path, ctx: Context, timing: FileTiming
) -> Verified | None:
    """The file from the mirror, verified like any download; None when the mirror lacks it or
    offers bytes that fail (then the plan's URL is next, unless offline)."""
    assert ctx.mirror is not None
    location = ctx.mirror.locate(artifact, ctx)
    if location is None:
        log.info("%s: not in the mirror", artifact.destination)
        if ctx.offline:
            raise ArtifactFailed(
                artifact.destination,
                f"offline: {artifact.filename} is not in the mirror "
                f"{ctx.mirror.url} (nor in the destination or the cache)",
            )
        return None
    plan_host = timing.host
    timing.host = host_port(location)
    try:
        verified = _download(replace(artifact, url=location), final, ctx, timing, source="mirror")
    except ArtifactFailed as exc:
        if ctx.offline:
            raise ArtifactFailed(artifact.destination, f"mirror {location}: {exc.reason}") from exc
        log.warning(
            "%s: mirror copy %s unusable (%s); fetching from the plan's URL",
            artifact.destination,
            location,
            exc.reason,
        )
        timing.host = plan_host
        ctx.progress.restart(artifact.destination)
        return None
    return replace(verified, artifact=artifact, fetched_from=location)


def _from_cache(
    artifact: Artifact, final: Path, ctx: Context, timing: FileTiming
) -> Verified | None:
    expected = artifact.sha256
    if ctx.cache is None or expected is None:
        return None
    staging = ctx.partial_dir / f"{artifact.destination}.from-cache"
    staging.unlink(missing_ok=True)
    started = ctx.now()
    try:
        if not ctx.cache.materialize(expected, staging):
            return None
        sha256, size = hash_local(staging, ctx, artifact.destination)
    except OSError as exc:
        log.warning("%s: cache unusable (%s); downloading", artifact.destination, exc)
        staging.unlink(missing_ok=True)
        ctx.progress.restart(artifact.destination)
        return None
    timing.phases.append(("verify", started, ctx.now()))
    if not matches(artifact, sha256, size):
        log.warning("cache entry %s is corrupt; removing it", expected)
        staging.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            ctx.cache.path_for(expected).unlink()
        ctx.progress.restart(artifact.destination)
        return None
    os.replace(staging, final)
    if final.parent != ctx.destination:
        fsync_dir(final.parent)
    # Directly in the destination, the rename is made durable by the fsync of that directory
    # after manifest.json is renamed into it (one fsync, not one per cached wheel: 5 ms each
    # here, most of a warm run's waiting). A crash before then leaves a file whose name the
    # next run re-hashes, as it does any file already in place.
    log.debug("%s: taken from the cache", artifact.destination)
    return _verified(
        artifact, final, sha256=sha256, size=size, source="cache", ctx=ctx, timing=timing
    )


# -- the network -----------------------------------------------------------------------------


def _download(
    artifact: Artifact,
    final: Path,
    ctx: Context,
    timing: FileTiming,
    *,
    source: ObtainedFrom | None = None,
) -> Verified:
    """Tries at the artifact's URL until one brings the planned file or the policy gives up."""
    part = ctx.partial_path(artifact.destination)
    part.parent.mkdir(parents=True, exist_ok=True)
    # A mirror's tries before these count too: max_tries bounds the artifact's tries.
    tries = Tries(count=timing.tries)
    # Bytes of a partial left by an earlier run that this run continues from.
    carried = -1
    while True:
        ctx.raise_if_cancelled()
        offset, validator = _resume_point(artifact, part, ctx)
        carried = offset if carried < 0 else carried
        tries = tries.started(offset)
        timing.tries = tries.count
        started = ctx.now()
        outcome = attempt(
            artifact, part, offset=offset, validator=validator, ctx=ctx, timing=timing
        )
        timing.phases.append(("download", started, ctx.now()))
        if isinstance(outcome, Received):
            verify_started = ctx.now()
            outcome = check_body(artifact, part, outcome.body, unsized=ctx.limits.max_unsized_bytes)
            if isinstance(outcome, Received):
                return _place(
                    artifact,
                    part,
                    final,
                    body=outcome.body,
                    ctx=ctx,
                    timing=timing,
                    source=source,
                    carried=carried,
                    verify_started=verify_started,
                )
            # A body that fails its check: the try's download phase runs to the check's end.
            timing.phases.append(("download", started, ctx.now()))
        if isinstance(outcome, Restart):
            _discard(artifact, part, ctx, outcome.reason)
            carried = 0
        elif isinstance(outcome, Retry) and ctx.cancel.is_set():
            raise Cancelled("interrupted")
        decision = ctx.retry.increment(tries, outcome)
        tries = decision.tries
        if decision.step is Step.GIVE_UP:
            _give_up(artifact, part, ctx, decision.reason)
        if decision.step is Step.RESTART:
            log.info("%s: %s; starting again from zero", artifact.destination, decision.reason)
            continue
        _wait(artifact, decision.reason, ctx.retry.wait(tries, ctx.random()), ctx, timing)


def _wait(artifact: Artifact, reason: str, wait: float, ctx: Context, timing: FileTiming) -> None:
    """The pause before a retry, cut short (with :class:`Cancelled`) by an interrupt."""
    log.info("%s: %s; retrying in %.2fs", artifact.destination, reason, wait)
    timing.retries += 1
    ctx.progress.retried()
    if not ctx.retry.sleep(wait, ctx.cancel):
        raise Cancelled("interrupted")


def _place(
    artifact: Artifact,
    part: Path,
    final: Path,
    *,
    body: Body,
    ctx: Context,
    timing: FileTiming,
    source: ObtainedFrom | None,
    carried: int,
    verify_started: float,
) -> Verified:
    """The checked partial renamed to its final name, recorded, and added to the cache."""
    os.replace(part, final)
    fsync_dir(final.parent)
    timing.phases.append(("verify", verify_started, ctx.now()))
    if body.resumed and carried > 0:
        timing.resumed_bytes = carried
    if source is None:
        source = "resumed" if body.resumed else "downloaded"
    verified = _verified(
        artifact,
        final,
        sha256=body.sha256,
        size=body.size,
        source=source,
        ctx=ctx,
        timing=timing,
    )
    _fill_cache(verified, ctx)
    return verified


def _give_up(artifact: Artifact, part: Path, ctx: Context, reason: str) -> NoReturn:
    kept = part.stat().st_size if part.exists() else 0
    previous = ctx.checkpoint.get(artifact.destination)
    validator = None if previous is None or kept == 0 else previous.validator
    ctx.checkpoint.record(
        ArtifactState.of(artifact, "failed", received=kept, validator=validator, reason=reason)
    )
    raise ArtifactFailed(artifact.destination, reason)


def _discard(artifact: Artifact, part: Path, ctx: Context, reason: str) -> None:
    part.unlink(missing_ok=True)
    ctx.progress.restart(artifact.destination)
    ctx.checkpoint.record(ArtifactState.of(artifact, "discarded", reason=reason))


def _resume_point(artifact: Artifact, part: Path, ctx: Context) -> tuple[int, Validator | None]:
    """Where the partial can continue from, and the validator to continue it with."""
    try:
        have = part.stat().st_size
    except FileNotFoundError:
        return 0, None
    record = ctx.checkpoint.get(artifact.destination)
    usable = (
        record is not None
        and record.state in ("partial", "failed")
        and record.matches(artifact.sha256, artifact.size, artifact.url)
    )
    too_long = artifact.size is not None and have > artifact.size
    complete = artifact.size is not None and have == artifact.size
    # Without a validator a partial may still be continued (a plain Range) when the plan
    # pins its sha256: the hash of the whole decides, and a mismatch starts once from zero.
    judged = artifact.sha256 is not None or (record is not None and record.validator)
    if usable and not too_long and (complete or judged):
        ctx.progress.restart(artifact.destination)
        ctx.progress.advance(artifact.destination, have, network=False)
        return have, None if record is None else record.validator
    if have:
        log.debug("%s: partial not resumable; starting from zero", artifact.destination)
    part.unlink(missing_ok=True)
    return 0, None


def _fill_cache(verified: Verified, ctx: Context) -> None:
    if ctx.cache is None:
        return
    try:
        ctx.cache.add(verified.path, verified.sha256)
    except (OSError, HashMismatch) as exc:
        log.warning("could not add %s to the cache: %s", verified.path.name, exc)
