"""The verified manifest a run leaves in its destination, and merging the manifests of shards.

``<dest>/manifest.json`` lists only files that matched the plan, each with its path relative to
the manifest; ``<dest>/plan.json`` is the canonical copy of the plan it executed, whose
:func:`plan_digest` the manifest records.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from fetchplan.errors import FieldProblem, FileFormatError
from fetchplan.executor.checkpoint import utc_now
from fetchplan.executor.verified import Verified
from fetchplan.schemas import dump_document, load_document, plan_digest
from fetchplan.schemas.manifest import (
    Manifest,
    ManifestArtifact,
    PlanRef,
    Shard,
    load_manifest,
    write_manifest,
)

__all__ = ["PLAN_COPY", "build_manifest", "merge_manifests", "write_run_outputs"]

PLAN_COPY = "plan.json"
MANIFEST = "manifest.json"


def build_manifest(
    *,
    plan_sha256: str,
    verified: Sequence[Verified],
    order: Sequence[str],
    shard: tuple[int, int] | None = None,
) -> Manifest:
    """A manifest of ``verified`` files, listed in plan order (``order``: destinations)."""
    position = {name: i for i, name in enumerate(order)}
    ordered = sorted(verified, key=lambda v: position.get(v.artifact.destination, len(position)))
    return Manifest(
        created=utc_now(),
        plan=PlanRef(sha256=plan_sha256, path=PLAN_COPY),
        shard=None if shard is None else Shard(index=shard[0], count=shard[1]),
        artifacts=tuple(
            ManifestArtifact(
                name=v.artifact.name,
                version=v.artifact.version,
                filename=v.artifact.filename,
                path=v.artifact.destination,
                sha256=v.sha256,
                size=v.size,
                url=v.artifact.url if v.fetched_from is None else v.fetched_from,
                source=v.source,
                verified_at=v.verified_at,
            )
            for v in ordered
        ),
    )


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)
    except OSError:
        return a.resolve() == b.resolve()


def write_run_outputs(
    destination: Path, plan_path: Path, plan_document: dict[str, Any], manifest: Manifest
) -> Path:
    """Write ``plan.json`` (unless ``plan_path`` is it) then ``manifest.json``; both atomic."""
    copy = destination / PLAN_COPY
    if not _same_file(plan_path, copy):
        dump_document(copy, plan_document, "plan")
    path = destination / MANIFEST
    write_manifest(path, manifest)
    return path


def merge_manifests(
    paths: Sequence[Path], output: Path, *, allow_incomplete: bool = False
) -> Manifest:
    """Combine the manifests of one plan's shards (or runs) into ``output``.

    All must record the same plan digest; shards must agree on their count and not repeat;
    a file listed twice must have one sha256; every listed file must exist with its size.
    Unless ``allow_incomplete``, every artifact of the plan must be listed. Paths are
    rewritten relative to ``output``'s directory, and the plan is copied beside it as
    ``plan.json`` after its digest is checked. Raises :class:`FileFormatError` with every
    problem found.
    """
    if not paths:
        raise FileFormatError(str(output), [FieldProblem("", "no manifests to merge")])
    merge = _Merge([(path, load_manifest(path)) for path in paths], output.parent)
    for path, manifest in merge.manifests:
        for rule in _MANIFEST_RULES:
            merge.problems.extend(rule(merge, path, manifest))
    for path, manifest in merge.manifests:
        for i, artifact in enumerate(manifest.artifacts):
            merge.take(path, f"artifacts[{i}]", artifact)
    plan_document = merge.read_plan()
    order: list[str] = []
    if plan_document is not None:
        order = [a["destination"] for a in plan_document["artifacts"]]
        if not allow_incomplete:
            merge.problems.extend(_all_listed(merge, order, str(output)))
    merge.raise_problems()
    position = {name: i for i, name in enumerate(order)}
    result = Manifest(
        created=utc_now(),
        plan=PlanRef(sha256=merge.first.plan.sha256, path=PLAN_COPY),
        shard=None,
        artifacts=tuple(
            sorted(
                merge.merged.values(), key=lambda a: position.get(Path(a.path).name, len(position))
            )
        ),
    )
    copy = merge.out_dir / PLAN_COPY
    if not _same_file(merge.plan_source, copy):
        dump_document(copy, plan_document, "plan")
    write_manifest(output, result)
    return result


@dataclass(slots=True)
class _Merge:
    """What merging manifests has gathered so far: the problems (each naming its file) and
    the artifacts taken, by file name."""

    manifests: list[tuple[Path, Manifest]]
    out_dir: Path
    problems: list[FieldProblem] = field(default_factory=list)
    merged: dict[str, ManifestArtifact] = field(default_factory=dict)
    shards: dict[int, Path] = field(default_factory=dict)
    """Each shard index so far, and the manifest that had it."""

    @property
    def first(self) -> Manifest:
        return self.manifests[0][1]

    @property
    def first_path(self) -> Path:
        return self.manifests[0][0]

    @property
    def plan_source(self) -> Path:
        return self.first_path.parent / self.first.plan.path

    def take(self, path: Path, where: str, artifact: ManifestArtifact) -> None:
        """Add ``artifact`` of the manifest at ``path``, unless a problem keeps it out."""
        located = path.parent / artifact.path
        try:
            size = located.stat().st_size
        except OSError:
            self.problems.append(FieldProblem(f"{where}.path", f"{located} is missing", str(path)))
            return
        if size != artifact.size:
            self.problems.append(
                FieldProblem(
                    f"{where}.size", f"{located} has {size} bytes, not {artifact.size}", str(path)
                )
            )
            return
        key = Path(artifact.path).name
        entry = replace(artifact, path=Path(os.path.relpath(located, self.out_dir)).as_posix())
        previous = self.merged.get(key)
        if previous is not None and previous.sha256 != entry.sha256:
            self.problems.append(
                FieldProblem(f"{where}.sha256", f"{key} listed with another sha256", str(path))
            )
            return
        self.merged.setdefault(key, entry)

    def raise_problems(self) -> None:
        """One :class:`FileFormatError` with every problem found, if any, about the file of the
        first (each problem of another file says which)."""
        if self.problems:
            raise FileFormatError(self.problems[0].file or "", self.problems)

    def read_plan(self) -> Any:
        """The plan the first manifest names, checked against its digest; None if unreadable."""
        first_path = str(self.first_path)
        try:
            document = load_document(self.plan_source, "plan")
        except FileFormatError as exc:
            self.problems.append(FieldProblem("plan.path", str(exc).splitlines()[0], first_path))
            return None
        if plan_digest(document) != self.first.plan.sha256:
            self.problems.append(
                FieldProblem("plan.sha256", f"does not match {self.plan_source}", first_path)
            )
        return document


_ManifestRule = Callable[[_Merge, Path, Manifest], Iterator[FieldProblem]]
"""A rule over one of the manifests merged (given with its path): the problems it finds."""


def _same_plan(merge: _Merge, path: Path, manifest: Manifest) -> Iterator[FieldProblem]:
    if manifest.plan.sha256 != merge.first.plan.sha256:
        yield FieldProblem("plan.sha256", f"differs from {merge.first_path}'s plan", str(path))


def _shards_agree_on_count(merge: _Merge, path: Path, manifest: Manifest) -> Iterator[FieldProblem]:
    counts = {m.shard.count for _, m in merge.manifests if m.shard is not None}
    if manifest.shard is not None and len(counts) > 1:
        yield FieldProblem("shard.count", "shards disagree on their count", str(path))


def _shard_not_repeated(merge: _Merge, path: Path, manifest: Manifest) -> Iterator[FieldProblem]:
    if manifest.shard is None:
        return
    index = manifest.shard.index
    if index in merge.shards:
        yield FieldProblem(
            "shard.index", f"shard {index} repeated (also in {merge.shards[index]})", str(path)
        )
    merge.shards[index] = path


_MANIFEST_RULES: tuple[_ManifestRule, ...] = (
    _same_plan,
    _shards_agree_on_count,
    _shard_not_repeated,
)
"""The rules each manifest merged is checked by, in the order their problems are listed."""


def _all_listed(merge: _Merge, order: Sequence[str], output: str) -> Iterator[FieldProblem]:
    missing = [name for name in order if name not in merge.merged]
    if missing:
        shown = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
        yield FieldProblem(
            "artifacts",
            f"{len(missing)} of the plan's artifacts are not in any manifest: {shown}",
            output,
        )
