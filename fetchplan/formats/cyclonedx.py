"""A plan as a CycloneDX 1.6 JSON SBOM, built with cyclonedx-python-lib.

One component per artifact (a wheel and the sdist of one release are two files, so two
components): its purl ``pkg:pypi/name@version`` with the file's ``download_url`` and
``file_name`` qualifiers (which also make it the component's ``bom-ref``), its hashes, a
``distribution`` external reference to the file, the license the recorded core metadata
declares (``License-Expression``, else ``License``), the summary as description. CycloneDX
has no field for a file's size, the index, the upload time or the targets, so they are
properties in fetchplan's namespace (``fetchplan:size``, ``fetchplan:index``,
``fetchplan:target`` once per target served...). Build dependencies are included with scope
``excluded`` (CycloneDX's "not part of the runtime") and ``fetchplan:build_dependency``.
Direct references (``fetchplan:direct``): an archive keeps ``download_url``; a VCS commit's
purl has the purl spec's ``vcs_url`` (``git+URL@commit``) and a ``vcs`` reference; a local
directory, with nothing to download, the bare purl and its ``fetchplan:path``.

The dependency graph: the root (the plan) depends on the requested projects, and each
component on every component of the projects its metadata requires that serves one of its
targets. The plan's targets are properties of the BOM's metadata with the marker that names
each. The serial number and timestamp derive from the plan, so one plan always gives the
same document.

The library is imported here only, and this module only by ``export --format cyclonedx``:
other commands do not pay for it.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from fetchplan import __version__
from fetchplan.formats._common import environment_marker, timestamp_from_iso
from fetchplan.schemas.plan import Artifact, Plan

if TYPE_CHECKING:
    from cyclonedx.model.bom import Bom, BomMetaData
    from cyclonedx.model.component import Component
    from cyclonedx.model.license import License

__all__ = ["PROPERTY_PREFIX", "dumps_cyclonedx", "purl_of"]

PROPERTY_PREFIX = "fetchplan:"
_NAMESPACE = uuid.UUID("1b4e28ba-2fa1-11d2-883f-0016d3cca427")


def purl_of(artifact: Artifact) -> str:
    """The artifact's package URL: ``pkg:pypi/name@version?download_url=...&file_name=...``
    for a file (a direct archive too); for a VCS commit the purl spec's ``vcs_url``
    qualifier (``git+URL@commit``); for a local directory, which has no download URL, the
    bare ``pkg:pypi/name@version``."""
    from packageurl import PackageURL

    qualifiers: dict[str, str] = {}
    if artifact.vcs is not None:
        qualifiers["vcs_url"] = f"git+{artifact.vcs.url}@{artifact.vcs.commit_id}"
    elif artifact.kind != "directory":
        qualifiers = {"download_url": artifact.url, "file_name": artifact.filename}
    return str(
        PackageURL(type="pypi", name=artifact.name, version=artifact.version, qualifiers=qualifiers)
    )


def _licenses(metadata: dict[str, Any] | None) -> list[License]:
    from cyclonedx.contrib.license.factories import LicenseFactory
    from cyclonedx.model import AttachedText
    from cyclonedx.model.license import DisjunctiveLicense

    if not metadata:
        return []
    factory = LicenseFactory()
    expression = metadata.get("license_expression")
    if isinstance(expression, str) and expression.strip():
        return [factory.make_from_string(expression.strip())]
    text = metadata.get("license")
    if not isinstance(text, str) or not text.strip():
        return []
    text = text.strip()
    if "\n" not in text and len(text) <= 100:
        return [factory.make_from_string(text)]
    # A whole license text in the field: kept as text, not as a name.
    return [DisjunctiveLicense(name="declared in core metadata", text=AttachedText(content=text))]


def _properties(pairs: Iterable[tuple[str, str | None]]) -> list[Any]:
    from cyclonedx.model import Property

    return [Property(name=PROPERTY_PREFIX + k, value=v) for k, v in pairs if v is not None]


def _hashes(artifact: Artifact) -> list[Any]:
    from cyclonedx.model import HashAlgorithm, HashType

    algorithms = {
        "md5": HashAlgorithm.MD5,
        "sha1": HashAlgorithm.SHA_1,
        "sha256": HashAlgorithm.SHA_256,
        "sha384": HashAlgorithm.SHA_384,
        "sha512": HashAlgorithm.SHA_512,
        "blake2b_256": HashAlgorithm.BLAKE2B_256,
    }
    return [
        HashType(alg=algorithms[name], content=value)
        for name, value in sorted(artifact.hashes.items())
        if name in algorithms
    ]


def _serves_any(artifact: Artifact, targets: tuple[str, ...] | None) -> bool:
    if artifact.targets is None or targets is None:
        return True
    return bool(set(artifact.targets) & set(targets))


def dumps_cyclonedx(plan: Plan) -> str:
    """``plan`` as the text of a CycloneDX 1.6 JSON document (ending with a newline)."""
    from cyclonedx.model.bom import Bom
    from cyclonedx.output.json import JsonV1Dot6

    digest = hashlib.sha256(json.dumps(plan.to_dict(), sort_keys=True).encode("utf-8")).hexdigest()
    root, metadata = _root_and_metadata(plan)
    bom = Bom(metadata=metadata, serial_number=uuid.uuid5(_NAMESPACE, digest))
    components: list[tuple[Artifact, Component]] = []
    for artifact in plan.artifacts:
        component = _component(artifact)
        bom.components.add(component)
        components.append((artifact, component))
    _register_dependencies(bom, root, components)
    return JsonV1Dot6(bom).output_as_string(indent=2) + "\n"


def _root_and_metadata(plan: Plan) -> tuple[Component, BomMetaData]:
    """The plan's own component and the BOM metadata naming it, its targets and fetchplan."""
    from cyclonedx.model.bom import BomMetaData
    from cyclonedx.model.component import Component, ComponentType

    root = Component(
        type=ComponentType.APPLICATION,
        name="plan",
        bom_ref="plan",
        description="the projects a fetchplan plan brings in",
        properties=_properties(("requirement", r) for r in plan.inputs.requirements),
    )
    metadata = BomMetaData(
        component=root,
        timestamp=timestamp_from_iso(plan.created).astimezone(_dt.UTC),
        properties=_properties(
            pair
            for target in plan.targets
            for pair in (
                ("target", target.name),
                (f"target:{target.name}:marker", environment_marker(target)),
            )
        ),
    )
    metadata.tools.components.add(
        Component(type=ComponentType.APPLICATION, name="fetchplan", version=__version__)
    )
    return root, metadata


def _artifact_properties(artifact: Artifact) -> list[Any]:
    """What CycloneDX has no field for, as ``fetchplan:`` properties (unset ones left out)."""
    return _properties(
        [
            ("kind", artifact.kind),
            ("size", None if artifact.size is None else str(artifact.size)),
            ("index", artifact.index),
            ("upload_time", artifact.upload_time),
            ("provenance", artifact.provenance),
            *(("attestation:publisher", b.identity) for b in artifact.attestations or ()),
            (
                "project_status",
                None if artifact.project_status is None else artifact.project_status.status,
            ),
            ("yanked", "true" if artifact.yanked else None),
            ("build_dependency", "true" if artifact.build_dependency else None),
            ("direct", "true" if artifact.direct else None),
            ("editable", "true" if artifact.editable else None),
            ("path", artifact.path),
            ("subdirectory", artifact.subdirectory),
            *_vcs_properties(artifact),
            *(("target", t) for t in artifact.targets or ()),
            *(("build_target", t) for t in artifact.build_targets or ()),
        ]
    )


def _vcs_properties(artifact: Artifact) -> list[tuple[str, str | None]]:
    if artifact.vcs is None:
        return []
    return [
        ("vcs:requested_revision", artifact.vcs.requested_revision),
        ("vcs:commit_id", artifact.vcs.commit_id),
        ("vcs:subdirectory", artifact.vcs.subdirectory),
    ]


def _references(artifact: Artifact, hashes: list[Any]) -> list[Any]:
    """A file's ``distribution`` reference (with its hashes); a commit's repository as a
    ``vcs`` reference; none for a local directory (its digest is of fetchplan's source
    archive, which nobody downloads)."""
    from cyclonedx.model import ExternalReference, ExternalReferenceType, XsUri

    if artifact.vcs is not None:
        return [ExternalReference(type=ExternalReferenceType.VCS, url=XsUri(artifact.vcs.url))]
    if artifact.kind == "directory":
        return []
    return [
        ExternalReference(
            type=ExternalReferenceType.DISTRIBUTION, url=XsUri(artifact.url), hashes=hashes
        )
    ]


def _component(artifact: Artifact) -> Component:
    """The library component of one planned file."""
    from cyclonedx.model.component import Component, ComponentScope, ComponentType
    from packageurl import PackageURL

    hashes = _hashes(artifact)
    purl = purl_of(artifact)
    properties = _artifact_properties(artifact)
    summary = (artifact.metadata or {}).get("summary")
    return Component(
        type=ComponentType.LIBRARY,
        name=artifact.name,
        version=artifact.version,
        bom_ref=purl,
        purl=PackageURL.from_string(purl),
        scope=ComponentScope.EXCLUDED if artifact.build_dependency else ComponentScope.REQUIRED,
        description=summary if isinstance(summary, str) else None,
        hashes=hashes,
        licenses=_licenses(artifact.metadata),
        external_references=_references(artifact, hashes),
        properties=properties,
    )


def _register_dependencies(
    bom: Bom, root: Component, components: list[tuple[Artifact, Component]]
) -> None:
    """The plan depends on what was requested; each file on the files serving its targets."""
    by_name: dict[str, list[tuple[Artifact, Component]]] = {}
    for artifact, component in components:
        by_name.setdefault(artifact.name, []).append((artifact, component))
    bom.register_dependency(
        root, [c for a, c in components if a.requested and not a.build_dependency]
    )
    for artifact, component in components:
        wanted = [
            other
            for dep in artifact.dependencies
            for candidate, other in by_name.get(dep.name, [])
            if _serves_any(candidate, artifact.targets)
        ]
        bom.register_dependency(component, list(dict.fromkeys(wanted)))
