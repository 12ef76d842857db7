"""The PEP 740 provenance objects a bundle carries, so attestations verify on the far side.

:func:`collect_provenance` (when the bundle is made, online) fetches the provenance object
of every artifact whose plan entry names one and writes it under ``provenance/``;
``bundle.json`` lists each with its sha256. :func:`provenance_reader` (when the bundle is
audited, offline) answers the plan's provenance URLs from those files, each checked against
the sha256 ``bundle.json`` records. Verifying the attestations themselves is the planner's
(``fetchplan audit BUNDLE --attestations``); this package never imports it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

from fetchplan._fs import atomic_write_bytes
from fetchplan.bundle.archive import OpenedBundle, archive_kind, open_bundle
from fetchplan.bundle.errors import BundleError
from fetchplan.bundle.layout import BUNDLE_FILE, PROVENANCE_DIR, provenance_path
from fetchplan.schemas import plan_digest
from fetchplan.schemas.bundle import Bundle, ProvenanceRef, load_bundle
from fetchplan.schemas.plan import Plan, load_plan

__all__ = ["Getter", "bundle_plan", "collect_provenance", "is_bundle_path", "provenance_reader"]

Getter = Callable[[str], bytes]
"""Returns a provenance URL's body; raises :class:`ValueError` with the reason it cannot."""


def _fetched(get: Getter, url: str) -> bytes:
    body = get(url)
    try:
        document = json.loads(body)
    except ValueError:
        raise ValueError(f"provenance {url} is not JSON") from None
    if not isinstance(document, dict):
        raise ValueError(f"provenance {url} is not a JSON object")
    return body


def collect_provenance(plan: Plan, root: Path, get: Getter) -> tuple[ProvenanceRef, ...]:
    """Fetch the provenance object of each artifact of ``plan`` that names one into
    ``root/provenance/``; the references for ``bundle.json``.

    Raises :class:`BundleError` naming the first file whose object could not be fetched (and
    how many more), after trying them all. Every call fetches every object again: the plan
    names no digest for a provenance object to check an earlier copy against.
    """
    shutil.rmtree(root / PROVENANCE_DIR, ignore_errors=True)
    refs: list[ProvenanceRef] = []
    problems: list[str] = []
    seen: set[str] = set()
    for artifact in plan.artifacts:
        if artifact.provenance is None or artifact.filename in seen:
            continue
        seen.add(artifact.filename)
        try:
            body = _fetched(get, artifact.provenance)
        except ValueError as exc:
            problems.append(f"{artifact.filename}: provenance: {exc}")
            continue
        rel = provenance_path(artifact.filename)
        atomic_write_bytes(root / rel, body)
        (root / rel).chmod(0o644)
        refs.append(
            ProvenanceRef(
                filename=artifact.filename, path=rel, sha256=hashlib.sha256(body).hexdigest()
            )
        )
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise BundleError(f"{problems[0]}{more}")
    return tuple(sorted(refs, key=lambda r: r.path))


def provenance_reader(opened: OpenedBundle, bundle: Bundle, plan: Plan) -> Getter:
    """A getter answering ``plan``'s provenance URLs from the objects ``bundle`` carries;
    a URL of a file the bundle carries none for, a file missing or not the bytes
    ``bundle.json`` records is a :class:`ValueError` naming it."""
    refs = {ref.filename: ref for ref in bundle.provenance}
    by_url = {a.provenance: a.filename for a in plan.artifacts if a.provenance is not None}

    def get(url: str) -> bytes:
        ref = refs.get(by_url.get(url, ""))
        if ref is None:
            raise ValueError("the bundle carries no provenance object for it")
        shown = opened.display(ref.path)
        if ref.path != provenance_path(ref.filename):
            # The rule verify applies: the one place a bundle carries this file's object.
            raise ValueError(
                f"bundle.json: provenance path {ref.path!r} is not "
                f"{provenance_path(ref.filename)!r}"
            )
        if (opened.root / ref.path).is_symlink():
            raise ValueError(f"{shown}: not a regular file")
        try:
            body = (opened.root / ref.path).read_bytes()
        except OSError as exc:
            raise ValueError(f"{shown}: cannot read: {exc.strerror or exc}") from None
        digest = hashlib.sha256(body).hexdigest()
        if digest != ref.sha256:
            raise ValueError(
                f"{shown}: sha256 {digest} is not the {ref.sha256} bundle.json records"
            )
        return body

    return get


def is_bundle_path(path: Path) -> bool:
    """Whether ``path`` names a bundle (a directory, or a tar by its name) rather than a plan."""
    return path.is_dir() or archive_kind(path) is not None


@contextlib.contextmanager
def bundle_plan(path: Path) -> Iterator[tuple[Plan, Getter]]:
    """The plan of the bundle at ``path`` (a tar is extracted for the block) and a getter of
    the provenance objects it carries. The plan must have the digest ``bundle.json``
    records; :class:`BundleError` when it has not, or ``path`` holds no bundle."""
    with open_bundle(path) as opened:
        if not opened.is_bundle:
            raise BundleError(f"{path}: not a bundle (no {BUNDLE_FILE})")
        bundle = load_bundle(opened.root / BUNDLE_FILE)
        plan, document = load_plan(opened.root / bundle.plan.path)
        digest = plan_digest(document)
        if digest != bundle.plan.sha256:
            raise BundleError(
                f"{opened.display(bundle.plan.path)}: its digest {digest} is not the "
                f"{bundle.plan.sha256} {BUNDLE_FILE} records"
            )
        yield plan, provenance_reader(opened, bundle, plan)
