"""Write a static package index over a set of wheels and sdists.

Layout under ``root``::

    files/<filename>                  the distributions
    files/<filename>.metadata         PEP 658 core metadata (wheels; when enabled)
    simple/index.html                 PEP 503 root page
    simple/<project>/index.html       PEP 503 project page (links relative: ../../files/...)
    simple/<project>/index.json       PEP 691 JSON (api-version 1.1, with PEP 700 sizes)
    files/<filename>.provenance       PEP 740 provenance (when given; the page is then 1.3)

A server picks ``index.json`` or ``index.html`` by the ``Accept`` header; ``file://`` clients
read ``index.html``.
"""

from __future__ import annotations

import hashlib
import html
import json
import shutil
import tarfile
import zipfile
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from packaging.utils import canonicalize_name, parse_sdist_filename, parse_wheel_filename

JSON_TYPE = "application/vnd.pypi.simple.v1+json"


@dataclass
class IndexOptions:
    metadata_files: bool = True
    """Publish PEP 658 ``.metadata`` files and advertise them."""
    hashes: bool = True
    """Put ``#sha256=`` fragments and JSON hashes on links."""
    html: bool = True
    json: bool = True
    yanked: Mapping[str, str | bool] = field(default_factory=dict)
    """Filename -> True or a reason (PEP 592)."""
    requires_python: Mapping[str, str] = field(default_factory=dict)
    """Filename -> ``data-requires-python`` (else read from the file's metadata)."""
    bad_metadata_hash: bool = False
    """Advertise a wrong hash for every ``.metadata`` file."""
    upload_times: Mapping[str, str] = field(default_factory=dict)
    """Filename -> PEP 700 ``upload-time`` on the JSON page (absent when not given)."""
    provenance: Mapping[str, bytes] = field(default_factory=dict)
    """Filename -> its PEP 740 provenance object, served beside the file; the JSON page names
    it (``provenance``), the HTML one too (``data-provenance``), relative to the page, and both
    say API version 1.3."""
    project_status: Mapping[str, tuple[str, str | None]] = field(default_factory=dict)
    """Project -> its PEP 792 (status, reason): JSON ``project-status``, HTML ``meta`` tags, and
    API version 1.4 on both pages."""


LEGACY_SUFFIXES = (".tar.bz2", ".tar.xz", ".tgz", ".tar")


def _sdist_name(filename: str) -> str:
    """``filename`` with a legacy archive suffix (``.tar.bz2``...) read as ``.tar.gz``."""
    for suffix in LEGACY_SUFFIXES:
        if filename.endswith(suffix) and not filename.endswith(".tar.gz"):
            return filename.removesuffix(suffix) + ".tar.gz"
    return filename


def project_of(filename: str) -> str:
    if filename.endswith(".whl"):
        return canonicalize_name(parse_wheel_filename(filename)[0])
    return canonicalize_name(parse_sdist_filename(_sdist_name(filename))[0])


def read_metadata(path: Path) -> bytes:
    """The core metadata of a wheel (``METADATA``) or sdist (``PKG-INFO``)."""
    if path.name.endswith(".whl"):
        with zipfile.ZipFile(path) as zf:
            name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
            return zf.read(name)
    with tarfile.open(path) as tf:
        infos = [m for m in tf.getmembers() if m.name.endswith("/PKG-INFO")]
        if not infos:
            return b""
        # The top-level one, else (an old sdist) the one in its .egg-info directory.
        member = min(infos, key=lambda m: m.name.count("/"))
        handle = tf.extractfile(member)
        assert handle is not None
        return handle.read()


def _requires_python(metadata: bytes) -> str | None:
    for line in metadata.decode().splitlines():
        if line.startswith("Requires-Python:"):
            return line.split(":", 1)[1].strip()
        if not line:
            break
    return None


def write_index(root: Path, dists: Sequence[Path], options: IndexOptions | None = None) -> Path:
    """Copy ``dists`` under ``root/files`` and write the index pages; return ``root/simple``."""
    opts = options or IndexOptions()
    files_dir = root / "files"
    files_dir.mkdir(parents=True, exist_ok=True)
    by_project: dict[str, list[Path]] = defaultdict(list)
    for dist in dists:
        target = files_dir / dist.name
        if dist.resolve() != target.resolve():
            shutil.copyfile(dist, target)
        by_project[project_of(dist.name)].append(target)

    simple = root / "simple"
    simple.mkdir(parents=True, exist_ok=True)
    projects = sorted(by_project)
    (simple / "index.html").write_text(
        "<!DOCTYPE html><html><body>\n"
        + "".join(f'<a href="{p}/">{p}</a>\n' for p in projects)
        + "</body></html>\n"
    )
    for project in projects:
        _write_project(simple / project, sorted(by_project[project], key=lambda p: p.name), opts)
    return simple


def _write_project(directory: Path, files: list[Path], opts: IndexOptions) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    anchors: list[str] = []
    entries: list[dict[str, object]] = []
    for path in files:
        data = path.read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        metadata = read_metadata(path)
        href = f"../../files/{path.name}"
        attrs: dict[str, str] = {}
        entry: dict[str, object] = {
            "filename": path.name,
            "url": href,
            "hashes": {"sha256": sha} if opts.hashes else {},
            "size": len(data),
        }
        if opts.hashes:
            href += f"#sha256={sha}"
            entry["url"] = href
        rp = opts.requires_python.get(path.name, _requires_python(metadata))
        if rp is not None:
            attrs["data-requires-python"] = rp
            entry["requires-python"] = rp
        if path.name in opts.upload_times:
            entry["upload-time"] = opts.upload_times[path.name]
        if path.name in opts.provenance:
            (path.parent / f"{path.name}.provenance").write_bytes(opts.provenance[path.name])
            provenance = f"../../files/{path.name}.provenance"
            entry["provenance"] = attrs["data-provenance"] = provenance
        yanked = opts.yanked.get(path.name)
        if yanked is not None and yanked is not False:
            reason = "" if yanked is True else str(yanked)
            attrs["data-yanked"] = reason
            entry["yanked"] = reason if reason else True
        if opts.metadata_files and path.name.endswith(".whl"):
            (path.parent / f"{path.name}.metadata").write_bytes(metadata)
            md_sha = hashlib.sha256(metadata).hexdigest()
            if opts.bad_metadata_hash:
                md_sha = "0" * 64
            attrs["data-core-metadata"] = f"sha256={md_sha}"
            attrs["data-dist-info-metadata"] = f"sha256={md_sha}"
            entry["core-metadata"] = {"sha256": md_sha}
            entry["dist-info-metadata"] = {"sha256": md_sha}
        rendered = "".join(f' {k}="{html.escape(v)}"' for k, v in attrs.items())
        anchors.append(f'<a href="{html.escape(href)}"{rendered}>{path.name}</a>')
        entries.append(entry)
    name = directory.name
    status = opts.project_status.get(name)
    attested = any(p.name in opts.provenance for p in files)
    if opts.html:
        meta = f'<meta name="pypi:repository-version" content="{"1.3" if attested else "1.1"}">'
        if status is not None:
            meta = '<meta name="pypi:repository-version" content="1.4">'
            meta += f'<meta name="pypi:project-status" content="{html.escape(status[0])}">'
            if status[1] is not None:
                reason = html.escape(status[1])
                meta += f'<meta name="pypi:project-status-reason" content="{reason}">'
        (directory / "index.html").write_text(
            f"<!DOCTYPE html><html><head>{meta}"
            f"<title>Links for {name}</title></head><body>\n"
            + "\n".join(anchors)
            + "\n</body></html>\n"
        )
    if opts.json:
        versions = sorted({_version_of(p.name) for p in files})
        document: dict[str, object] = {
            "meta": {"api-version": "1.3" if attested else "1.1"},
            "name": name,
            "versions": versions,
            "files": entries,
        }
        if status is not None:
            document["meta"] = {"api-version": "1.4"}
            document["project-status"] = {"status": status[0], "reason": status[1]}
        (directory / "index.json").write_text(json.dumps(document, indent=1))


def _version_of(filename: str) -> str:
    if filename.endswith(".whl"):
        return str(parse_wheel_filename(filename)[1])
    return str(parse_sdist_filename(_sdist_name(filename))[1])
