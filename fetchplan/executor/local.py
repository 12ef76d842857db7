"""Artifacts on this machine: a local archive copied, a source tree archived, both verified.

A local archive (an artifact with a ``path``) is copied from where the plan says, hashed on
the way; a project directory or a VCS commit is archived as :mod:`fetchplan._sourcetree` says
(a commit is first checked out with git, :mod:`fetchplan._vcs`). Either way the bytes go to the
artifact's partial file and take its final name only when sha256 and size are the plan's: a
directory edited since planning, or a file changed, fails the artifact with a line saying so.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

from fetchplan._fs import CHUNK_SIZE, fsync_dir
from fetchplan._sourcetree import SourceTreeError, write_tree_archive
from fetchplan._vcs import VcsError, checkout
from fetchplan.errors import HashMismatch
from fetchplan.executor.checkpoint import ArtifactState, utc_now
from fetchplan.executor.context import ArtifactFailed, Context
from fetchplan.executor.verified import FileTiming, Verified
from fetchplan.schemas.plan import SOURCE_TREE_KINDS, Artifact

__all__ = ["obtain_local"]

log = logging.getLogger(__name__)


def _copy(source: Path, part: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with source.open("rb") as handle, part.open("wb") as out:
        while chunk := handle.read(CHUNK_SIZE):
            digest.update(chunk)
            out.write(chunk)
            size += len(chunk)
        out.flush()
        os.fsync(out.fileno())
    return digest.hexdigest(), size


def _archive(root: Path, part: Path, exclude: tuple[str, ...]) -> tuple[str, int]:
    with part.open("wb") as out:
        found = write_tree_archive(root, out, exclude)
        out.flush()
        os.fsync(out.fileno())
    return found


def _make(artifact: Artifact, part: Path, ctx: Context) -> tuple[str, int, str]:
    """Write the artifact's bytes to ``part``; return sha256, size and what they came from."""
    if artifact.vcs is not None:
        vcs = artifact.vcs
        if ctx.offline and not vcs.url.startswith("file:"):
            raise ArtifactFailed(
                artifact.destination,
                f"offline: commit {vcs.commit_id} of {vcs.url} is not in the destination or the "
                "cache, and git would need the network",
            )
        with tempfile.TemporaryDirectory(prefix="fetchplan-git-") as work:
            tree = checkout(vcs.url, vcs.commit_id, Path(work) / "tree")
            if vcs.subdirectory is not None:
                inner = tree / vcs.subdirectory
                if not inner.is_dir() or not inner.resolve().is_relative_to(tree.resolve()):
                    raise VcsError(
                        f"{vcs.url}: commit {vcs.commit_id} has no directory {vcs.subdirectory}"
                    )
                tree = inner
            sha256, size = _archive(tree, part, artifact.exclude)
        return sha256, size, f"commit {vcs.commit_id} of {vcs.url}"
    source = artifact.local_path(ctx.plan_dir)
    assert source is not None
    if artifact.kind == "directory":
        source = artifact.project_dir(ctx.plan_dir)
        assert source is not None  # a directory's local path is its project's, or holds it
        if not source.is_dir():
            raise ArtifactFailed(artifact.destination, f"{source}: no such directory")
        sha256, size = _archive(source, part, artifact.exclude)
        return sha256, size, f"the source tree of {source}"
    if not source.is_file():
        raise ArtifactFailed(artifact.destination, f"{source}: no such file")
    sha256, size = _copy(source, part)
    return sha256, size, str(source)


def obtain_local(
    artifact: Artifact, final: Path, ctx: Context, timing: FileTiming
) -> Verified | None:
    """The artifact made or copied from this machine, verified at ``final``; None for a local
    archive whose path is gone (its ``file://`` URL is tried next, as for any file)."""
    if artifact.kind in {"wheel", "sdist"}:
        source = artifact.local_path(ctx.plan_dir)
        if source is None or not source.is_file():
            return None
    part = ctx.partial_path(artifact.destination)
    part.parent.mkdir(parents=True, exist_ok=True)
    started = ctx.now()
    try:
        sha256, size, what = _make(artifact, part, ctx)
    except (SourceTreeError, VcsError, OSError) as exc:
        part.unlink(missing_ok=True)
        raise ArtifactFailed(artifact.destination, str(exc)) from None
    timing.phases.append(("download", started, ctx.now()))
    if sha256 != artifact.sha256 or (artifact.size is not None and size != artifact.size):
        part.unlink(missing_ok=True)
        changed = "source tree" if artifact.kind in SOURCE_TREE_KINDS else "file"
        raise ArtifactFailed(
            artifact.destination,
            f"{what}: the {changed} changed since planning (sha256 {sha256}, {size} bytes; "
            f"the plan has {artifact.sha256}, {artifact.size} bytes): plan again",
        )
    os.replace(part, final)
    fsync_dir(final.parent)
    ctx.progress.advance(artifact.destination, size, network=False)
    ctx.checkpoint.record(
        ArtifactState.of(artifact, "verified", received=size, source="downloaded")
    )
    log.info("%s: %s, verified", artifact.destination, what)
    if artifact.kind == "vcs" and ctx.cache is not None:
        # A commit's archive never changes: kept for offline runs and other destinations.
        try:
            ctx.cache.add(final, sha256)
        except (OSError, HashMismatch) as exc:
            log.warning("could not add %s to the cache: %s", final.name, exc)
    return Verified(
        artifact=artifact,
        path=final,
        sha256=sha256,
        size=size,
        source="downloaded",
        verified_at=utc_now(),
        timing=timing,
    )
