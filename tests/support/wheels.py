"""Build real wheels and sdists in a temporary directory.

The wheels are what a build backend would produce: ``.dist-info`` with METADATA, WHEEL,
entry_points.txt and a RECORD with sha256 hashes and sizes. ``extra_members`` and
``record_override`` let hostile-wheel tests put anything into the zip.
"""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from packaging.utils import canonicalize_name


def _record_hash(data: bytes) -> str:
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass
class Dist:
    """A distribution to build: the fields that end up in its core metadata."""

    name: str
    version: str
    requires: Sequence[str] = ()
    extras: Mapping[str, Sequence[str]] = field(default_factory=dict)
    requires_python: str | None = None
    tag: str = "py3-none-any"
    metadata_version: str = "2.1"
    files: Mapping[str, bytes] | None = None
    console_scripts: Mapping[str, str] = field(default_factory=dict)
    padding: int = 0
    """Bytes of incompressible filler in a data file, to make the wheel big."""

    @property
    def project(self) -> str:
        return self.name.replace("-", "_").replace(".", "_")

    def metadata(self) -> str:
        lines = [
            f"Metadata-Version: {self.metadata_version}",
            f"Name: {self.name}",
            f"Version: {self.version}",
            f"Summary: test distribution {self.name}",
        ]
        if self.requires_python is not None:
            lines.append(f"Requires-Python: {self.requires_python}")
        lines.extend(f"Requires-Dist: {req}" for req in self.requires)
        for extra, reqs in self.extras.items():
            lines.append(f"Provides-Extra: {extra}")
            for req in reqs:
                marker = f'extra == "{extra}"'
                if ";" in req:
                    spec, existing = req.split(";", 1)
                    lines.append(
                        f"Requires-Dist: {spec.strip()} ; ({existing.strip()}) and {marker}"
                    )
                else:
                    lines.append(f"Requires-Dist: {req} ; {marker}")
        return "\n".join(lines) + "\n\n"


def wheel_filename(dist: Dist) -> str:
    return f"{dist.project}-{dist.version}-{dist.tag}.whl"


def _default_files(dist: Dist) -> dict[str, bytes]:
    module = canonicalize_name(dist.name).replace("-", "_")
    files = {
        f"{module}/__init__.py": (
            f'__version__ = "{dist.version}"\nNAME = "{dist.name}"\n\n'
            "def main() -> None:\n"
            f'    print("{dist.name} {dist.version}")\n'
        ).encode()
    }
    if dist.padding:
        # Deterministic, incompressible filler (a hash chain), so sizes are real on the wire.
        blocks = []
        block = hashlib.sha256(dist.name.encode()).digest()
        for _ in range(dist.padding // 32 + 1):
            block = hashlib.sha256(block).digest()
            blocks.append(block)
        files[f"{module}/data.bin"] = b"".join(blocks)[: dist.padding]
    return files


def build_wheel(
    directory: Path,
    dist: Dist,
    *,
    extra_members: Mapping[str, bytes] | None = None,
    record_override: str | None = None,
    metadata_override: str | None = None,
) -> Path:
    """Write ``dist`` as a wheel into ``directory`` and return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    dist_info = f"{dist.project}-{dist.version}.dist-info"
    members: dict[str, bytes] = dict(dist.files if dist.files is not None else _default_files(dist))
    members[f"{dist_info}/METADATA"] = (metadata_override or dist.metadata()).encode()
    members[f"{dist_info}/WHEEL"] = (
        f"Wheel-Version: 1.0\nGenerator: fetchplan-tests\nRoot-Is-Purelib: true\nTag: {dist.tag}\n"
    ).encode()
    if dist.console_scripts:
        body = "[console_scripts]\n" + "".join(
            f"{name} = {target}\n" for name, target in dist.console_scripts.items()
        )
        members[f"{dist_info}/entry_points.txt"] = body.encode()
    members.update(extra_members or {})
    record_name = f"{dist_info}/RECORD"
    if record_override is None:
        rows = [f"{name},{_record_hash(data)},{len(data)}" for name, data in members.items()]
        rows.append(f"{record_name},,")
        record = "\n".join(rows) + "\n"
    else:
        record = record_override
    members[record_name] = record.encode()
    path = directory / wheel_filename(dist)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    return path


def build_sdist(
    directory: Path,
    dist: Dist,
    *,
    dynamic: Sequence[str] = (),
    setup_py: str | None = None,
    pyproject: str | None = None,
    extra_files: Mapping[str, str] | None = None,
) -> Path:
    """Write ``dist`` as an sdist (``.tar.gz``) with PKG-INFO and a setuptools pyproject.

    ``dynamic`` lists core-metadata fields marked ``Dynamic:`` in PKG-INFO (PEP 643);
    ``pyproject`` replaces the default pyproject.toml text; ``extra_files`` adds files (paths
    relative to the sdist's top directory).
    """
    directory.mkdir(parents=True, exist_ok=True)
    base = f"{dist.project}-{dist.version}"
    pkg_info = dist.metadata().rstrip("\n") + "\n"
    pkg_info += "".join(f"Dynamic: {name}\n" for name in dynamic) + "\n"
    module = canonicalize_name(dist.name).replace("-", "_")
    if pyproject is None:
        pyproject = (
            "[build-system]\n"
            'requires = ["setuptools>=61"]\n'
            'build-backend = "setuptools.build_meta"\n'
        )
    members = {
        f"{base}/PKG-INFO": pkg_info.encode(),
        f"{base}/pyproject.toml": pyproject.encode(),
        f"{base}/{module}/__init__.py": f'__version__ = "{dist.version}"\n'.encode(),
    }
    if setup_py is not None:
        members[f"{base}/setup.py"] = setup_py.encode()
    for name, text in (extra_files or {}).items():
        members[f"{base}/{name}"] = text.encode()
    path = directory / f"{base}.tar.gz"
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1577836800
            tf.addfile(info, io.BytesIO(data))
    return path
