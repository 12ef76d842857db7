"""Pad an index's project pages to the size of a real index's: hundreds of releases, thousands
of files.

A real index lists every release a project ever had: its PEP 691 page for a large binary
project is about 2 MB, some 150 to 2,500 versions and 4,000 to 15,000 files (an sdist and a
few dozen wheels per release, for several Pythons and platforms). :func:`pad_project` adds such
a history below the releases an index already has: entries that look like a real page's
(absolute URLs on another host, sha256 digests, sizes, upload times, ``requires-python``, PEP
658 attributes, now and then a yanked release) for files that do not exist. A planner that reads
only the versions it considers never asks for them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

__all__ = ["PLATFORMS", "PYTHONS", "pad_project", "padding_entries"]

PYTHONS = ("cp39", "cp310", "cp311", "cp312", "cp313")
PLATFORMS = (
    "manylinux_2_17_x86_64.manylinux2014_x86_64",
    "manylinux_2_17_aarch64.manylinux2014_aarch64",
    "musllinux_1_1_x86_64",
    "macosx_10_9_x86_64",
    "macosx_11_0_arm64",
    "win32",
    "win_amd64",
)
FILES_HOST = "https://files.example.test/packages"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _entry(
    filename: str, release: int, requires_python: str, files_base: str | None
) -> dict[str, object]:
    sha = _digest(filename)
    url = (
        f"{FILES_HOST}/{sha[:2]}/{sha[2:4]}/{sha[4:]}/{filename}"
        if files_base is None
        else f"{files_base}/{filename}"
    )
    return {
        "filename": filename,
        "url": url,
        "hashes": {"sha256": sha},
        "requires-python": requires_python,
        "size": 1000 + len(filename) * 37 + release,
        "upload-time": f"2020-01-{1 + release % 28:02d}T00:00:00.000000Z",
        "core-metadata": {"sha256": _digest(filename + ".metadata")},
        "yanked": False,
    }


def padding_entries(
    project: str,
    versions: int,
    *,
    pythons: Sequence[str] = PYTHONS,
    platforms: Sequence[str] = PLATFORMS,
    yanked_every: int = 0,
    files_base: str | None = None,
) -> list[dict[str, object]]:
    """Entries for ``versions`` old releases ``0.0.0``, ``0.0.1`` ... of ``project``: per
    release an sdist, a wheel per Python and platform and a pure-Python wheel (oldest release
    first). Their URLs
    are on a host of their own, as on a real index, or under ``files_base`` (a URL relative to
    the page, such as ``../../files``, for a test that must see any request for them)."""
    stem = project.replace("-", "_")
    entries: list[dict[str, object]] = []
    for release in range(versions):
        version = f"0.0.{release}"
        requires_python = ">=3.9" if release % 3 else ">=3.8"
        files = [f"{stem}-{version}.tar.gz", f"{stem}-{version}-py3-none-any.whl"]
        files += [f"{stem}-{version}-{py}-{py}-{plat}.whl" for py in pythons for plat in platforms]
        for filename in files:
            entry = _entry(filename, release, requires_python, files_base)
            if yanked_every and release % yanked_every == yanked_every - 1:
                entry["yanked"] = "broken release"
            entries.append(entry)
    return entries


def pad_project(page: Path, entries: Sequence[dict[str, object]]) -> None:
    """Add ``entries`` before the files of the JSON page ``page`` (``.../index.json``), keep its
    PEP 700 ``versions`` complete, and write the HTML page beside it to match."""
    document = json.loads(page.read_text())
    files = [*entries, *document["files"]]
    document["files"] = files
    versions = dict.fromkeys(str(v) for v in document.get("versions", ()))
    for entry in entries:
        versions.setdefault(_version_of(str(entry["filename"])))
    document["versions"] = list(versions)
    page.write_text(json.dumps(document))
    html = page.with_name("index.html")
    if html.exists():
        anchors = [_anchor(entry) for entry in files]
        html.write_text(
            '<!DOCTYPE html><html><head><meta name="pypi:repository-version" content="1.1">'
            "</head><body>\n" + "\n".join(anchors) + "\n</body></html>\n"
        )


def _anchor(entry: dict[str, object]) -> str:
    href = str(entry["url"])
    hashes = entry.get("hashes")
    if "#" not in href and isinstance(hashes, dict) and "sha256" in hashes:
        href += f"#sha256={hashes['sha256']}"
    attrs = ""
    if entry.get("requires-python"):
        attrs += f' data-requires-python="{_escape(str(entry["requires-python"]))}"'
    core = entry.get("core-metadata")
    if isinstance(core, dict) and "sha256" in core:
        attrs += f' data-core-metadata="sha256={core["sha256"]}"'
    yanked = entry.get("yanked")
    if yanked:
        attrs += f' data-yanked="{_escape(yanked if isinstance(yanked, str) else "")}"'
    return f'<a href="{_escape(href)}"{attrs}>{entry["filename"]}</a>'


def _escape(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")
    )


def _version_of(filename: str) -> str:
    if filename.endswith(".whl"):
        return filename.split("-")[1]
    return filename.removesuffix(".tar.gz").removesuffix(".zip").rpartition("-")[2]
