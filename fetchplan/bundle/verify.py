"""Checking a bundle (or a fetch destination) before its files are trusted, offline.

:func:`check_bundle` reads everything again from disk and reports every problem it finds,
each one line naming the file: the schemas of ``bundle.json``, the plan and the manifest; the
plan's digest against the manifest (and ``bundle.json``, and a digest the operator carried
across apart, if given); that the manifest lists every artifact of the plan, as the plan
describes it; every listed file present as a regular file inside the bundle with the
manifest's size and sha256; the index pages exactly as :func:`render_index` makes them; the
PEP 740 provenance objects and the wheels built by ``bundle --build-local`` that
``bundle.json`` lists, each with its sha256 (and a wheel with its size).
Files nobody listed are warnings.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from stat import S_ISLNK, S_ISREG

from fetchplan._fs import hash_file
from fetchplan.bundle.archive import OpenedBundle, open_bundle
from fetchplan.bundle.layout import (
    BUNDLE_FILE,
    INDEX_DIR,
    built_path,
    provenance_path,
    render_index,
)
from fetchplan.errors import FileFormatError
from fetchplan.schemas import plan_digest
from fetchplan.schemas.bundle import Bundle, load_bundle
from fetchplan.schemas.manifest import Manifest, load_manifest
from fetchplan.schemas.plan import SOURCE_TREE_KINDS, Plan, load_plan

__all__ = ["VerifyReport", "check_bundle", "verify_bundle"]

log = logging.getLogger(__name__)

_STATE_DIR = ".fetchplan"


@dataclass(slots=True)
class VerifyReport:
    """The outcome of a check: ``problems`` (fatal) and ``warnings``, one line each."""

    where: str
    is_bundle: bool
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    files: int = 0
    """Files whose size and sha256 were checked and matched."""
    bytes: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def _safe_relative(path: str) -> PurePosixPath | None:
    pure = PurePosixPath(path)
    if pure.is_absolute() or "\\" in path or ".." in pure.parts or not pure.parts:
        return None
    if ":" in pure.parts[0]:
        return None
    return pure


def _hash(path: Path) -> tuple[str, int]:
    hashed = hash_file(path)
    return hashed.sha256, hashed.size


@dataclass(frozen=True)
class _Read:
    """The documents of a bundle or destination that could be read, and where they are."""

    bundle: Bundle | None
    manifest: Manifest
    manifest_rel: str
    plan: Plan
    plan_rel: str
    digest: str


def check_bundle(opened: OpenedBundle, *, plan_sha256: str | None = None) -> VerifyReport:
    """Check the bundle or fetch destination ``opened``; never raises for what it finds.

    ``plan_sha256``: the plan digest the operator expects (carried across separately), which
    the bundle's plan must have.
    """
    where = str(opened.archive if opened.archive is not None else opened.root)
    report = VerifyReport(where=where, is_bundle=opened.is_bundle)
    read = _read_documents(opened, report)
    if read is None:
        return report
    show = opened.display
    if read.digest != read.manifest.plan.sha256:
        report.problems.append(
            f"{show(read.manifest_rel)}: plan.sha256: {read.manifest.plan.sha256} is not the "
            f"digest of {read.plan_rel} ({read.digest})"
        )
    if plan_sha256 is not None and read.digest != plan_sha256.lower():
        report.problems.append(
            f"{show(read.plan_rel)}: its digest {read.digest} is not the expected "
            f"{plan_sha256.lower()}"
        )
    expected_files = {read.manifest_rel, read.plan_rel}
    if read.bundle is not None:
        expected_files |= {BUNDLE_FILE, read.bundle.readme}
        _check_bundle_file(
            read.bundle,
            opened,
            manifest_rel=read.manifest_rel,
            plan_rel=read.plan_rel,
            digest=read.digest,
            report=report,
        )
    _check_coverage(read.plan, read.manifest, show(read.manifest_rel), report)
    expected_files |= _check_artifacts(read, opened, report)
    if read.bundle is not None:
        _check_index(read.plan, read.manifest, read.bundle, opened, report)
        expected_files |= _check_provenance(read.bundle, read.plan, opened, report)
        expected_files |= _check_built(read.bundle, read.plan, opened, report)
    _check_leftovers(read.bundle, opened, expected_files, report)
    return report


def _read_documents(opened: OpenedBundle, report: VerifyReport) -> _Read | None:
    """bundle.json (of a bundle), the manifest and its plan; None, with the problem in
    ``report``, when one of them cannot be read or does not vouch for the next."""
    root = opened.root
    show = opened.display
    bundle: Bundle | None = None
    manifest_rel = os.path.relpath(opened.manifest_path, root).replace(os.sep, "/")
    try:
        if opened.is_bundle:
            bundle = load_bundle(root / BUNDLE_FILE)
            if bundle.manifest.path != manifest_rel:
                # Installing reads this manifest: bundle.json must vouch for that very file.
                report.problems.append(
                    f"{show(BUNDLE_FILE)}: manifest.path: {bundle.manifest.path} is not "
                    f"{manifest_rel}"
                )
                return None
        manifest = load_manifest(root / manifest_rel)
        plan_rel = str(PurePosixPath(manifest_rel).parent / manifest.plan.path)
        if _safe_relative(plan_rel) is None:
            report.problems.append(f"{show(manifest_rel)}: plan.path: not inside the bundle")
            return None
        plan, document = load_plan(root / plan_rel)
    except FileFormatError as exc:
        report.problems.extend(_problem_lines(exc, opened))
        return None
    return _Read(bundle, manifest, manifest_rel, plan, plan_rel, plan_digest(document))


def _check_artifacts(read: _Read, opened: OpenedBundle, report: VerifyReport) -> set[str]:
    """Check every file the manifest lists; the paths (inside the bundle) it lists."""
    show = opened.display
    listed: set[str] = set()
    base = PurePosixPath(read.manifest_rel).parent
    for i, entry in enumerate(read.manifest.artifacts):
        rel = _safe_relative(str(base / entry.path))
        if rel is None:
            report.problems.append(
                f"{show(read.manifest_rel)}: artifacts[{i}].path: {entry.path!r} is not inside "
                "the bundle"
            )
            continue
        listed.add(str(rel))
        _check_file(
            opened.root,
            str(rel),
            size=(entry.size, read.manifest_rel),
            sha256=entry.sha256,
            show=show,
            report=report,
        )
    return listed


def _check_provenance(
    bundle: Bundle, plan: Plan, opened: OpenedBundle, report: VerifyReport
) -> set[str]:
    """Check every provenance object ``bundle.json`` lists: a file of the plan that names
    provenance, at the path the bundle gives it, with the recorded sha256. The paths."""
    show = opened.display
    named = {a.filename for a in plan.artifacts if a.provenance is not None}
    listed: set[str] = set()
    for i, ref in enumerate(bundle.provenance):
        where = f"{show(BUNDLE_FILE)}: provenance[{i}]"
        if ref.filename not in named:
            report.problems.append(f"{where}.filename: {ref.filename!r} names no provenance")
            continue
        if ref.path != provenance_path(ref.filename):
            report.problems.append(
                f"{where}.path: {ref.path!r} is not {provenance_path(ref.filename)!r}"
            )
            continue
        listed.add(ref.path)
        # bundle.json records no size for a provenance object: its sha256 alone vouches for it.
        _check_file(opened.root, ref.path, size=None, sha256=ref.sha256, show=show, report=report)
    return listed


def _check_built(
    bundle: Bundle, plan: Plan, opened: OpenedBundle, report: VerifyReport
) -> set[str]:
    """Check every built wheel ``bundle.json`` lists: made from a source-tree archive of the
    plan, at the path the bundle gives it, with the recorded size and sha256. The paths."""
    show = opened.display
    trees = {a.filename for a in plan.artifacts if a.kind in SOURCE_TREE_KINDS}
    listed: set[str] = set()
    for i, ref in enumerate(bundle.built):
        where = f"{show(BUNDLE_FILE)}: built[{i}]"
        if ref.artifact not in trees:
            report.problems.append(
                f"{where}.artifact: {ref.artifact!r} is no directory or VCS artifact of the plan"
            )
            continue
        if ref.path != built_path(ref.filename):
            report.problems.append(
                f"{where}.path: {ref.path!r} is not {built_path(ref.filename)!r}"
            )
            continue
        listed.add(ref.path)
        _check_file(
            opened.root,
            ref.path,
            size=(ref.size, BUNDLE_FILE),
            sha256=ref.sha256,
            show=show,
            report=report,
        )
    return listed


def _check_leftovers(
    bundle: Bundle | None, opened: OpenedBundle, expected: set[str], report: VerifyReport
) -> None:
    """Warn of every file of the bundle or destination that nothing lists."""
    show = opened.display
    index_dir = INDEX_DIR if bundle is None else bundle.index.path.rstrip("/")
    for found in _walk(opened.root):
        if found in expected:
            continue
        top = PurePosixPath(found).parts[0]
        if bundle is not None and top == index_dir:
            continue  # the index was checked page by page
        if top == _STATE_DIR:
            if bundle is not None:
                report.warnings.append(f"{show(found)}: fetch state left in a bundle")
            continue
        report.warnings.append(f"{show(found)}: not listed in the manifest")


def _problem_lines(exc: FileFormatError, opened: OpenedBundle) -> list[str]:
    lines = exc.lines()
    if opened.archive is None:
        return lines
    prefix = str(opened.root) + os.sep
    return [
        opened.display(line[len(prefix) :].replace(os.sep, "/"))
        if line.startswith(prefix)
        else line
        for line in lines
    ]


def _check_bundle_file(
    bundle: Bundle,
    opened: OpenedBundle,
    *,
    manifest_rel: str,
    plan_rel: str,
    digest: str,
    report: VerifyReport,
) -> None:
    show = opened.display
    where = show(BUNDLE_FILE)
    if PurePosixPath(bundle.plan.path) != PurePosixPath(plan_rel):
        report.problems.append(
            f"{where}: plan.path: {bundle.plan.path} is not the manifest's plan ({plan_rel})"
        )
    if bundle.plan.sha256 != digest:
        report.problems.append(
            f"{where}: plan.sha256: {bundle.plan.sha256} is not the digest of {plan_rel} ({digest})"
        )
    try:
        actual, _ = _hash(opened.root / manifest_rel)
    except OSError as exc:
        report.problems.append(f"{show(manifest_rel)}: cannot read: {exc}")
        return
    if actual != bundle.manifest.sha256:
        report.problems.append(
            f"{show(manifest_rel)}: sha256 {actual} is not the {bundle.manifest.sha256} "
            f"{BUNDLE_FILE} records"
        )
    readme = _safe_relative(bundle.readme)
    if readme is None or not (opened.root / str(readme)).is_file():
        report.warnings.append(f"{show(bundle.readme)}: missing")


def _check_coverage(plan: Plan, manifest: Manifest, where: str, report: VerifyReport) -> None:
    entries = {e.filename: e for e in manifest.artifacts}
    planned = {a.filename for a in plan.artifacts}
    for artifact in plan.artifacts:
        entry = entries.get(artifact.filename)
        if entry is None:
            report.problems.append(f"{where}: {artifact.filename}: in the plan, not verified")
            continue
        if artifact.sha256 is not None and entry.sha256 != artifact.sha256:
            report.problems.append(
                f"{where}: {artifact.filename}: sha256 {entry.sha256} is not the plan's "
                f"{artifact.sha256}"
            )
        if artifact.size is not None and entry.size != artifact.size:
            report.problems.append(
                f"{where}: {artifact.filename}: size {entry.size} is not the plan's {artifact.size}"
            )
    for entry in manifest.artifacts:
        if entry.filename not in planned:
            report.problems.append(f"{where}: {entry.filename}: not in the plan")


def _check_file(
    root: Path,
    rel: str,
    *,
    size: tuple[int, str] | None,
    sha256: str,
    show: Callable[[str], str],
    report: VerifyReport,
) -> None:
    """Check that ``rel`` is a regular file with ``sha256`` and, where ``size`` is given,
    the size it gives and the name of the document that lists that size."""
    path = root / rel
    try:
        stat = path.lstat()
    except FileNotFoundError:
        report.problems.append(f"{show(rel)}: missing")
        return
    except OSError as exc:
        report.problems.append(f"{show(rel)}: cannot read: {exc}")
        return
    if S_ISLNK(stat.st_mode) or not S_ISREG(stat.st_mode):
        report.problems.append(f"{show(rel)}: not a regular file")
        return
    if size is not None and stat.st_size != size[0]:
        report.problems.append(f"{show(rel)}: {stat.st_size} bytes, {show(size[1])} says {size[0]}")
        return
    try:
        actual, _ = _hash(path)
    except OSError as exc:
        report.problems.append(f"{show(rel)}: cannot read: {exc}")
        return
    if actual != sha256:
        report.problems.append(f"{show(rel)}: sha256 mismatch: expected {sha256}, got {actual}")
        return
    report.files += 1
    report.bytes += stat.st_size


def _check_index(
    plan: Plan, manifest: Manifest, bundle: Bundle, opened: OpenedBundle, report: VerifyReport
) -> None:
    show = opened.display
    index_rel = _safe_relative(bundle.index.path)
    if index_rel is None or str(index_rel) != INDEX_DIR:
        report.problems.append(f"{show(BUNDLE_FILE)}: index.path: not {INDEX_DIR}/")
        return
    pages = render_index(plan, manifest)
    projects = sorted({str(PurePosixPath(p).parent.name) for p in pages} - {INDEX_DIR})
    if list(bundle.index.projects) != projects:
        report.problems.append(
            f"{show(BUNDLE_FILE)}: index.projects: not the manifest's projects "
            f"({', '.join(projects)})"
        )
    for rel, expected in pages.items():
        path = opened.root / rel
        try:
            if path.is_symlink():
                report.problems.append(f"{show(rel)}: not a regular file")
                continue
            actual = path.read_bytes()
        except FileNotFoundError:
            report.problems.append(f"{show(rel)}: index page missing")
            continue
        except OSError as exc:
            report.problems.append(f"{show(rel)}: cannot read: {exc}")
            continue
        if actual != expected:
            report.problems.append(f"{show(rel)}: index page does not match the manifest")
    for rel in _walk(opened.root / INDEX_DIR):
        full = f"{INDEX_DIR}/{rel}"
        if full not in pages:
            report.problems.append(f"{show(full)}: not a page of this bundle's index")


def _walk(root: Path) -> list[str]:
    """Every non-directory under ``root``, relative with '/', links not followed."""
    found: list[str] = []
    if not root.is_dir():
        return found
    for directory, dirnames, filenames in os.walk(root):
        dirnames.sort()
        base = Path(directory)
        for name in sorted(filenames):
            found.append((base / name).relative_to(root).as_posix())
        for name in dirnames:
            if (base / name).is_symlink():
                found.append((base / name).relative_to(root).as_posix())
    return found


def verify_bundle(path: Path, *, plan_sha256: str | None = None) -> VerifyReport:
    """Open (a tar is extracted to a temporary directory) and check the bundle at ``path``.

    Raises :class:`BundleError` only when it cannot be opened at all.
    """
    with open_bundle(path) as opened:
        return check_bundle(opened, plan_sha256=plan_sha256)
