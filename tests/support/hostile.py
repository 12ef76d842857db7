"""Wheels an installer must refuse, and fetched destinations to install from.

``raw_wheel`` writes any archive at all (symlinks, escaping names, RECORD rows that lie);
``make_fetched_dest`` lays out what ``fetchplan fetch`` leaves behind: the wheel files, the plan
copy and a verified manifest naming it by digest.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import stat
import zipfile
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.tags import sys_tags
from packaging.utils import canonicalize_name, parse_sdist_filename, parse_wheel_filename

from fetchplan.schemas import plan_digest
from fetchplan.schemas.manifest import Manifest, ManifestArtifact, PlanRef, write_manifest
from fetchplan.schemas.plan import Artifact, IndexRef, Inputs, Plan, Target, write_plan
from tests.support.wheels import Dist, build_wheel

INDEX = "http://127.0.0.1:1/simple/"
CREATED = "2026-01-01T00:00:00Z"


def record_hash(data: bytes) -> str:
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass
class Member:
    """One archive entry: its name as stored, its bytes, and its Unix mode (file type too)."""

    name: str
    data: bytes = b""
    mode: int = stat.S_IFREG | 0o644


def standard_members(name: str, version: str, *, metadata: str | None = None) -> list[Member]:
    """The members of a minimal valid wheel of ``name`` ``version`` (RECORD not included)."""
    project = name.replace("-", "_")
    dist_info = f"{project}-{version}.dist-info"
    meta = metadata or f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\n"
    return [
        Member(f"{project}/__init__.py", f'__version__ = "{version}"\n'.encode()),
        Member(f"{dist_info}/METADATA", meta.encode()),
        Member(
            f"{dist_info}/WHEEL",
            b"Wheel-Version: 1.0\nGenerator: hostile\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        ),
    ]


def raw_wheel(
    directory: Path,
    filename: str,
    members: Sequence[Member],
    *,
    dist_info: str,
    unrecorded: Collection[str] = (),
    extra_record_rows: Sequence[str] = (),
    record_rows: Mapping[str, str] | None = None,
) -> Path:
    """Write a wheel with exactly ``members`` and a RECORD listing them (minus ``unrecorded``).

    ``record_rows`` replaces the row of a member by a given line; ``extra_record_rows`` adds
    lines at the end.
    """
    directory.mkdir(parents=True, exist_ok=True)
    rows = []
    for m in members:
        if m.name in unrecorded:
            continue
        default = f"{m.name},{record_hash(m.data)},{len(m.data)}"
        rows.append((record_rows or {}).get(m.name, default))
    rows.extend(extra_record_rows)
    rows.append(f"{dist_info}/RECORD,,")
    path = directory / filename
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for m in [*members, Member(f"{dist_info}/RECORD", ("\n".join(rows) + "\n").encode())]:
            info = zipfile.ZipInfo(m.name, date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = m.mode << 16
            zf.writestr(info, m.data)
    return path


def _artifact(
    path: Path,
    *,
    requested: bool,
    targets: tuple[str, ...] | None,
    fields: Mapping[str, Any],
) -> Artifact:
    data = path.read_bytes()
    if path.name.endswith(".whl"):
        name, version, _, _ = parse_wheel_filename(path.name)
        kind = "wheel"
    else:
        name, version = parse_sdist_filename(path.name)
        kind = "sdist"
    artifact = Artifact(
        name=name,
        version=str(version),
        kind=kind,  # type: ignore[arg-type]
        filename=path.name,
        url=f"http://127.0.0.1:1/files/{path.name}",
        index=INDEX,
        hashes={"sha256": hashlib.sha256(data).hexdigest()},
        hash_source="index",
        size=len(data),
        requested=requested,
        targets=targets,
        destination=path.name,
    )
    return dataclasses.replace(artifact, **fields)


def default_target(name: str = "default") -> Target:
    from packaging.markers import default_environment

    return Target(
        name=name,
        markers={k: str(v) for k, v in default_environment().items()},
        tags=tuple(str(t) for t in sys_tags()),
    )


def make_fetched_dest(
    root: Path,
    dists: Sequence[Dist | Path],
    *,
    requested: Collection[str] | None = None,
    targets: Sequence[Target] | None = None,
    artifact_targets: Mapping[str, tuple[str, ...]] | None = None,
    artifact_fields: Mapping[str, Mapping[str, Any]] | None = None,
    name: str = "dest",
) -> Path:
    """Lay out a fetched destination under ``root/name``; return its ``manifest.json``.

    ``dists`` are built into wheels (or used as they are when paths: wheels or sdists). Every
    file gets a plan artifact and a manifest entry; ``requested`` names the requested projects
    (default: the first), ``artifact_targets`` maps a file name to its plan ``targets``,
    ``artifact_fields`` to plan artifact fields to override (the manifest entry follows them).
    """
    dest = root / name
    dest.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    for item in dists:
        if isinstance(item, Dist):
            files.append(build_wheel(dest, item))
        else:
            target_path = dest / item.name
            if item.resolve() != target_path.resolve():
                target_path.write_bytes(item.read_bytes())
            files.append(target_path)
    if requested is None:
        requested = {canonicalize_name(files[0].name.split("-")[0])} if files else set()
    wanted = {canonicalize_name(r) for r in requested}
    artifacts = tuple(
        _artifact(
            f,
            requested=canonicalize_name(f.name.split("-")[0]) in wanted,
            targets=(artifact_targets or {}).get(f.name),
            fields=(artifact_fields or {}).get(f.name, {}),
        )
        for f in files
    )
    plan = Plan(
        created=CREATED,
        inputs=Inputs(requirements=tuple(sorted(wanted))),
        targets=tuple(targets) if targets is not None else (default_target(),),
        indexes=(IndexRef(url=INDEX),),
        destination=".",
        artifacts=artifacts,
    )
    write_plan(dest / "plan.json", plan)
    manifest = Manifest(
        created=CREATED,
        plan=PlanRef(sha256=plan_digest(plan.to_dict()), path="plan.json"),
        artifacts=tuple(
            ManifestArtifact(
                name=a.name,
                version=a.version,
                filename=a.filename,
                path=a.destination,
                sha256=a.hashes["sha256"],
                size=a.size or 0,
                url=a.url,
                source="downloaded",
                verified_at=CREATED,
            )
            for a in artifacts
        ),
    )
    write_manifest(dest / "manifest.json", manifest)
    return dest / "manifest.json"


def new_venv(path: Path) -> Path:
    """Create a virtual environment without pip at ``path``; return its interpreter."""
    import subprocess
    import sys

    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    return path / "bin" / "python"


# The environment's lock, made by the first install and left in place (as a lock file must be).
_LOCK = {".fetchplan", ".fetchplan/lock"}


def assert_no_leftovers(prefix: Path) -> None:
    """Of fetchplan's files, only the environment's lock is in ``prefix``: no staging
    directory, no journal, nothing set aside."""
    ours = {p.name for p in prefix.iterdir() if p.name.startswith(".fetchplan")}
    assert ours <= {".fetchplan"}, ours
    if ours:
        assert [p.name for p in (prefix / ".fetchplan").iterdir()] == ["lock"]
    stray = [str(p) for p in prefix.rglob("*.fetchplan-*")]
    assert not stray, stray


def snapshot(root: Path) -> dict[str, tuple[str, int]]:
    """Every entry under ``root``: its kind or content hash, and its mode (the environment's
    lock file aside)."""
    state: dict[str, tuple[str, int]] = {}
    for path in sorted(root.rglob("*")):
        if str(path.relative_to(root)) in _LOCK:
            continue
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            kind = "link:" + str(path.readlink())
        elif stat.S_ISDIR(st.st_mode):
            kind = "dir"
        else:
            kind = hashlib.sha256(path.read_bytes()).hexdigest()
        state[str(path.relative_to(root))] = (kind, st.st_mode)
    return state
