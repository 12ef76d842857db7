"""Making a bundle: run the executor into the bundle directory, then describe what it holds.

The executor does the fetching and verifying (its destination is the bundle directory, so
an interrupted bundle resumes like any fetch, and files already in the plan's own destination
or the cache are taken from there, re-verified). Only when every artifact is verified are the
index pages, ``README.txt``, the PEP 740 provenance objects the plan names (when a getter is
given) and finally ``bundle.json`` written; for a tar, the directory is built beside it,
archived, and removed.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from fetchplan._fs import atomic_write_bytes, sha256_file
from fetchplan.bundle.archive import archive_kind, write_tar
from fetchplan.bundle.errors import BundleError
from fetchplan.bundle.layout import (
    BUILT_DIR,
    BUNDLE_FILE,
    INDEX_DIR,
    MANIFEST_FILE,
    PLAN_FILE,
    README_FILE,
    RESERVED_NAMES,
    render_index,
    render_readme,
)
from fetchplan.bundle.provenance import Getter, collect_provenance
from fetchplan.executor import FetchOptions, FetchResult, Reporter, execute_plan
from fetchplan.schemas.bundle import BuiltRef, Bundle, BundleIndex, FileRef, write_bundle
from fetchplan.schemas.manifest import load_manifest
from fetchplan.schemas.plan import load_plan

__all__ = ["BuildLocal", "BundleResult", "make_bundle"]

BuildLocal = Callable[[Path], tuple[BuiltRef, ...]]
"""Builds wheels into a bundle's directory (given) from its verified files, writing each at
its :func:`~fetchplan.bundle.layout.built_path`, and describes them
(:func:`fetchplan.pipeline.bundle` gives one: this package cannot import the builds)."""

log = logging.getLogger(__name__)

_STATE_DIR = ".fetchplan"


@dataclass(frozen=True, slots=True)
class BundleResult:
    """The fetch that filled the bundle, and the bundle written (None when the fetch did not
    verify every artifact: then nothing but the fetch's own files was written)."""

    fetch: FetchResult
    path: Path | None
    files: tuple[str, ...] = ()
    """The bundle's files, relative to its root."""


def _work_directory(output: Path) -> Path:
    if archive_kind(output) is None:
        return output
    return output.parent / f".{output.name}.partial"


def _check_directory(directory: Path) -> None:
    if not directory.exists():
        return
    if not directory.is_dir():
        raise BundleError(f"{directory}: exists and is not a directory")
    known = (BUNDLE_FILE, MANIFEST_FILE, _STATE_DIR)
    if any(directory.iterdir()) and not any((directory / n).exists() for n in known):
        raise BundleError(
            f"{directory}: exists and is neither a bundle nor a fetch destination; "
            "give a new or empty directory"
        )


def _mtime(created: str) -> int:
    try:
        return int(datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return 0


def make_bundle(
    plan_path: Path,
    output: Path,
    options: FetchOptions | None = None,
    reporter: Reporter | None = None,
    provenance: Getter | None = None,
    *,
    build_local: BuildLocal | None = None,
) -> BundleResult:
    """Fetch every artifact of the plan at ``plan_path`` into the bundle ``output`` and
    write its index, README and ``bundle.json``.

    ``output`` is a directory, or a ``.tar``/``.tar.gz``/``.tgz`` file (built in a hidden
    directory beside it, kept for a resume when the fetch fails). ``options`` are the
    executor's (its destination and shard are ignored; the plan's own destination is added
    to its seed directories). Raises :class:`BundleError` for an output that is not a new,
    empty or earlier bundle or fetch destination, and what :func:`execute_plan` raises.
    ``provenance`` fetches the PEP 740 provenance object of each artifact that names one
    (see :mod:`fetchplan.bundle.provenance`); without it the bundle carries none. One that
    cannot be fetched is a :class:`BundleError` (and no ``bundle.json``). ``build_local``
    adds wheels built from the verified files (see :data:`BuildLocal`) before ``bundle.json``.
    """
    options = options if options is not None else FetchOptions()
    work = _work_directory(output)
    _check_directory(work)
    plan, _ = load_plan(plan_path)
    clashes = sorted(
        a.destination for a in plan.artifacts if a.destination.casefold() in RESERVED_NAMES
    )
    if clashes:
        raise BundleError(
            f"{plan_path}: artifacts: destination {', '.join(clashes)} is a name the bundle "
            "uses itself"
        )
    # An unfinished rebuild must not pass for a finished bundle.
    (work / BUNDLE_FILE).unlink(missing_ok=True)
    seeds = (*options.seed_dirs, plan.destination_dir(plan_path))
    result = execute_plan(
        plan_path, replace(options, destination=work, shard=None, seed_dirs=seeds), reporter
    )
    if not result.ok:
        return BundleResult(fetch=result, path=None)

    plan, _ = load_plan(work / PLAN_FILE)
    manifest = load_manifest(work / MANIFEST_FILE)
    pages = render_index(plan, manifest)
    shutil.rmtree(work / INDEX_DIR, ignore_errors=True)
    for rel, data in pages.items():
        atomic_write_bytes(work / rel, data)
    atomic_write_bytes(work / README_FILE, render_readme(plan))
    carried = () if provenance is None else collect_provenance(plan, work, provenance)
    shutil.rmtree(work / BUILT_DIR, ignore_errors=True)
    built = () if build_local is None else build_local(work)
    projects = tuple(sorted({str(Path(rel).parent.name) for rel in pages} - {INDEX_DIR}))
    bundle = Bundle(
        created=manifest.created,
        plan=FileRef(path=PLAN_FILE, sha256=result.plan_sha256),
        manifest=FileRef(path=MANIFEST_FILE, sha256=sha256_file(work / MANIFEST_FILE)),
        index=BundleIndex(path=f"{INDEX_DIR}/", projects=projects),
        readme=README_FILE,
        provenance=carried,
        built=built,
    )
    write_bundle(work / BUNDLE_FILE, bundle)
    # The fetch state (journal, lock) has served its purpose; a bundle carries none.
    shutil.rmtree(work / _STATE_DIR, ignore_errors=True)
    built_files = [ref.path for ref in built]
    files = (
        BUNDLE_FILE,
        PLAN_FILE,
        MANIFEST_FILE,
        README_FILE,
        *(a.path for a in manifest.artifacts),
        *pages,
        *(ref.path for ref in carried),
        *(ref.path for ref in built),
    )
    for rel in (BUNDLE_FILE, PLAN_FILE, MANIFEST_FILE, README_FILE, *pages, *built_files):
        # Atomic writes leave their files private; a bundle is made to be read by others.
        (work / rel).chmod(0o644)
    if archive_kind(output) is not None:
        write_tar(work, files, output, mtime=_mtime(manifest.created))
        shutil.rmtree(work)
    log.info("bundle %s: %d files, %d projects", output, len(manifest.artifacts), len(projects))
    return BundleResult(fetch=result, path=output, files=tuple(sorted(files)))
