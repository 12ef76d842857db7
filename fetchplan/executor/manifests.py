"""The verified manifest a run leaves in its destination, and merging the manifests of shards.

``<dest>/manifest.json`` lists only files that matched the plan, each with its path relative to
the manifest; ``<dest>/plan.json`` is the canonical copy of the plan it executed, whose
:func:`plan_digest` the manifest records.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from fetchplan.errors import FieldProblem, FileFormatError
from fetchplan.executor.checkpoint import utc_now
from fetchplan.executor.download import Verified
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
    manifests = [(path, load_manifest(path)) for path in paths]
    problems: list[tuple[str, FieldProblem]] = []
    first_path, first = manifests[0]
    counts = {m.shard.count for _, m in manifests if m.shard is not None}
    seen_shards: dict[int, Path] = {}
    for path, manifest in manifests:
        if manifest.plan.sha256 != first.plan.sha256:
            problems.append(
                (str(path), FieldProblem("plan.sha256", f"differs from {first_path}'s plan"))
            )
        if manifest.shard is not None:
            if len(counts) > 1:
                problems.append(
                    (str(path), FieldProblem("shard.count", "shards disagree on their count"))
                )
            if manifest.shard.index in seen_shards:
                problems.append(
                    (
                        str(path),
                        FieldProblem(
                            "shard.index",
                            f"shard {manifest.shard.index} repeated"
                            f" (also in {seen_shards[manifest.shard.index]})",
                        ),
                    )
                )
            seen_shards[manifest.shard.index] = path
    out_dir = output.parent
    merged: dict[str, ManifestArtifact] = {}
    for path, manifest in manifests:
        base = path.parent
        for i, artifact in enumerate(manifest.artifacts):
            where = f"artifacts[{i}]"
            located = base / artifact.path
            try:
                size = located.stat().st_size
            except OSError:
                problems.append((str(path), FieldProblem(f"{where}.path", f"{located} is missing")))
                continue
            if size != artifact.size:
                problems.append(
                    (
                        str(path),
                        FieldProblem(
                            f"{where}.size", f"{located} has {size} bytes, not {artifact.size}"
                        ),
                    )
                )
                continue
            key = Path(artifact.path).name
            rel = Path(os.path.relpath(located, out_dir)).as_posix()
            entry = replace(artifact, path=rel)
            previous = merged.get(key)
            if previous is not None and previous.sha256 != entry.sha256:
                problems.append(
                    (
                        str(path),
                        FieldProblem(f"{where}.sha256", f"{key} listed with another sha256"),
                    )
                )
                continue
            merged.setdefault(key, entry)
    plan_source = first_path.parent / first.plan.path
    plan_document: Any = None
    try:
        plan_document = load_document(plan_source, "plan")
    except FileFormatError as exc:
        problems.append((str(first_path), FieldProblem("plan.path", str(exc).splitlines()[0])))
    order: list[str] = []
    if plan_document is not None:
        if plan_digest(plan_document) != first.plan.sha256:
            problems.append(
                (str(first_path), FieldProblem("plan.sha256", f"does not match {plan_source}"))
            )
        order = [a["destination"] for a in plan_document["artifacts"]]
        missing = [name for name in order if name not in merged]
        if missing and not allow_incomplete:
            shown = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
            problems.append(
                (
                    str(output),
                    FieldProblem(
                        "artifacts",
                        f"{len(missing)} of the plan's artifacts are not in any manifest: {shown}",
                    ),
                )
            )
    if problems:
        raise FileFormatError(
            problems[0][0],
            [
                FieldProblem(p.path, f"{p.message} ({f})") if f != problems[0][0] else p
                for f, p in problems
            ],
        )
    position = {name: i for i, name in enumerate(order)}
    result = Manifest(
        created=utc_now(),
        plan=PlanRef(sha256=first.plan.sha256, path=PLAN_COPY),
        shard=None,
        artifacts=tuple(
            sorted(merged.values(), key=lambda a: position.get(Path(a.path).name, len(position)))
        ),
    )
    copy = out_dir / PLAN_COPY
    if not _same_file(plan_source, copy):
        dump_document(copy, plan_document, "plan")
    write_manifest(output, result)
    return result
