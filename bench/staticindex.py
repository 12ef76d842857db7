"""A static package index over a requirement set's wheels, in the two variants the bench serves.

Layout under ``root/<set>/<variant>/`` (``variant`` is ``pep658`` or ``nometa``)::

    files/<wheel>                 hard link to the downloaded wheel
    files/<wheel>.metadata        PEP 658 core metadata (``pep658`` only)
    simple/index.html|json        PEP 503 / PEP 691 root page
    simple/<project>/index.html   PEP 503 project page, links relative (../../files/...)
    simple/<project>/index.json   PEP 691 JSON, api-version 1.1 with PEP 700 sizes

nginx picks ``index.json`` or ``index.html`` by the request's ``Accept`` header.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name, parse_wheel_filename

__all__ = ["VARIANTS", "WheelInfo", "build_index", "wheel_info"]

VARIANTS = ("pep658", "nometa")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class WheelInfo:
    """What the index and the link-limit model need to know about one wheel."""

    filename: str
    project: str
    version: str
    size: int
    sha256: str
    metadata: bytes

    @property
    def metadata_sha256(self) -> str:
        return hashlib.sha256(self.metadata).hexdigest()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _read_metadata(path: Path) -> bytes:
    with zipfile.ZipFile(path) as zf:
        names = [
            n for n in zf.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA")
        ]
        if len(names) != 1:
            raise ValueError(f"{path.name}: expected one .dist-info/METADATA, found {names}")
        return zf.read(names[0])


def wheel_info(path: Path, hash_cache: dict[str, str]) -> WheelInfo:
    """Describe ``path``; ``hash_cache`` maps ``name:size:mtime`` to sha256 to skip rehashing."""
    st = path.stat()
    key = f"{path.name}:{st.st_size}:{st.st_mtime_ns}"
    digest = hash_cache.get(key)
    if digest is None:
        digest = _sha256(path)
        hash_cache[key] = digest
    name, version, _build, _tags = parse_wheel_filename(path.name)
    return WheelInfo(
        filename=path.name,
        project=str(canonicalize_name(name)),
        version=str(version),
        size=st.st_size,
        sha256=digest,
        metadata=_read_metadata(path),
    )


def _requires_python(metadata: bytes) -> str | None:
    for line in metadata.decode("utf-8", "replace").splitlines():
        if not line:
            break
        if line.lower().startswith("requires-python:"):
            return line.split(":", 1)[1].strip()
    return None


def _link(src: Path, dst: Path) -> None:
    if dst.exists():
        return
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _project_html(project: str, wheels: list[WheelInfo], pep658: bool) -> str:
    rows = []
    for w in wheels:
        attrs = [f'href="../../files/{w.filename}#sha256={w.sha256}"']
        rp = _requires_python(w.metadata)
        if rp is not None:
            attrs.append(f'data-requires-python="{html.escape(rp)}"')
        if pep658:
            attrs.append(f'data-dist-info-metadata="sha256={w.metadata_sha256}"')
            attrs.append(f'data-core-metadata="sha256={w.metadata_sha256}"')
        rows.append(f"    <a {' '.join(attrs)}>{w.filename}</a><br/>")
    body = "\n".join(rows)
    return (
        "<!DOCTYPE html>\n<html>\n  <head>\n"
        '    <meta name="pypi:repository-version" content="1.1">\n'
        f"    <title>Links for {project}</title>\n  </head>\n  <body>\n"
        f"    <h1>Links for {project}</h1>\n{body}\n  </body>\n</html>\n"
    )


def _project_json(project: str, wheels: list[WheelInfo], pep658: bool) -> str:
    files = []
    for w in wheels:
        entry: dict[str, object] = {
            "filename": w.filename,
            "url": f"../../files/{w.filename}",
            "hashes": {"sha256": w.sha256},
            "size": w.size,
            "yanked": False,
        }
        rp = _requires_python(w.metadata)
        if rp is not None:
            entry["requires-python"] = rp
        if pep658:
            entry["core-metadata"] = {"sha256": w.metadata_sha256}
            entry["dist-info-metadata"] = {"sha256": w.metadata_sha256}
        else:
            entry["core-metadata"] = False
        files.append(entry)
    versions = sorted({w.version for w in wheels})
    doc = {"meta": {"api-version": "1.1"}, "name": project, "versions": versions, "files": files}
    return json.dumps(doc, indent=1) + "\n"


def build_index(root: Path, wheel_paths: dict[str, Path], wheels: list[WheelInfo]) -> None:
    """(Re)write both index variants for ``wheels`` under ``root``; file links reuse the wheels."""
    by_project: dict[str, list[WheelInfo]] = {}
    for w in wheels:
        by_project.setdefault(w.project, []).append(w)
    for variant in VARIANTS:
        pep658 = variant == "pep658"
        base = root / variant
        if base.exists():
            shutil.rmtree(base)
        files = base / "files"
        simple = base / "simple"
        files.mkdir(parents=True)
        simple.mkdir(parents=True)
        for w in wheels:
            _link(wheel_paths[w.filename], files / w.filename)
            if pep658:
                (files / f"{w.filename}.metadata").write_bytes(w.metadata)
        for project, items in sorted(by_project.items()):
            pdir = simple / project
            pdir.mkdir()
            (pdir / "index.html").write_text(_project_html(project, items, pep658))
            (pdir / "index.json").write_text(_project_json(project, items, pep658))
        names = sorted(by_project)
        links = "\n".join(f'    <a href="{p}/">{p}</a><br/>' for p in names)
        (simple / "index.html").write_text(
            "<!DOCTYPE html>\n<html>\n  <head>\n"
            '    <meta name="pypi:repository-version" content="1.1">\n'
            f"    <title>Simple index</title>\n  </head>\n  <body>\n{links}\n  </body>\n</html>\n"
        )
        root_json = {"meta": {"api-version": "1.1"}, "projects": [{"name": p} for p in names]}
        (simple / "index.json").write_text(json.dumps(root_json, indent=1) + "\n")
