"""What a bundle directory holds, and the pages and text rendered from its plan and manifest.

Layout (every name relative to the bundle's root)::

    bundle.json              what the bundle holds (schema bundle.schema.json); written last
    plan.json                the plan, as the executor copied it
    manifest.json            the verified manifest: one entry per file, sha256 and size
    <file>                   the verified files, flat (their plan destinations)
    simple/index.html        PEP 503 root page
    simple/<project>/index.html
                             PEP 503 project page: relative links with #sha256= fragments
    provenance/<file>.json   the PEP 740 provenance object of each file whose plan entry
                             names one (listed, with its sha256, in bundle.json)
    built/<wheel>            wheels built from the plan's source-tree archives by
                             ``bundle --build-local`` (listed, with their sha256, in bundle.json)
    README.txt               how to install from it with fetchplan, pip and uv

Rendering is pure and deterministic: :func:`render_index` of the same plan and manifest gives
the same bytes, so ``fetchplan verify`` checks the pages by rendering them again.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from urllib.parse import quote

from packaging.utils import canonicalize_name

from fetchplan.schemas.manifest import Manifest
from fetchplan.schemas.plan import Plan

__all__ = [
    "BUILT_DIR",
    "BUNDLE_FILE",
    "INDEX_DIR",
    "MANIFEST_FILE",
    "PLAN_FILE",
    "PROVENANCE_DIR",
    "README_FILE",
    "RESERVED_NAMES",
    "built_path",
    "provenance_path",
    "render_index",
    "render_readme",
]

BUNDLE_FILE = "bundle.json"
PLAN_FILE = "plan.json"
MANIFEST_FILE = "manifest.json"
README_FILE = "README.txt"
INDEX_DIR = "simple"
PROVENANCE_DIR = "provenance"
BUILT_DIR = "built"
# Names an artifact's destination must not take in a bundle (compared case-insensitively).
RESERVED_NAMES = frozenset(
    n.casefold()
    for n in (
        BUNDLE_FILE,
        PLAN_FILE,
        MANIFEST_FILE,
        README_FILE,
        INDEX_DIR,
        PROVENANCE_DIR,
        BUILT_DIR,
    )
)


def provenance_path(filename: str) -> str:
    """Where a bundle carries the provenance object of the artifact ``filename``."""
    return f"{PROVENANCE_DIR}/{filename}.json"


def built_path(filename: str) -> str:
    """Where a bundle carries the wheel ``filename`` built by ``bundle --build-local``."""
    return f"{BUILT_DIR}/{filename}"


def _page(title: str, anchors: Iterable[str]) -> bytes:
    body = "\n".join(anchors)
    return (
        "<!DOCTYPE html>\n<html>\n<head>\n"
        '<meta name="pypi:repository-version" content="1.0">\n'
        f"<title>{html.escape(title)}</title>\n</head>\n<body>\n"
        f"{body}\n</body>\n</html>\n"
    ).encode()


def render_index(plan: Plan, manifest: Manifest) -> dict[str, bytes]:
    """The PEP 503 pages over the manifest's files: ``{relative path: bytes}``.

    Links are relative to each page (``../../<path>``), carry the verified ``#sha256=`` and,
    where the plan records one, ``data-requires-python``. Yanked marks are left out: the plan
    already chose these files, and pip would skip a yanked file it was not pinned to.
    """
    requires_python = {a.filename: a.requires_python for a in plan.artifacts}
    by_project: dict[str, list[tuple[str, str]]] = {}
    for entry in manifest.artifacts:
        href = f"../../{quote(entry.path)}#sha256={entry.sha256}"
        attrs = f' href="{html.escape(href)}"'
        rp = requires_python.get(entry.filename)
        if rp is not None:
            attrs += f' data-requires-python="{html.escape(rp)}"'
        anchor = f"<a{attrs}>{html.escape(entry.filename)}</a><br>"
        by_project.setdefault(canonicalize_name(entry.name), []).append((entry.filename, anchor))
    pages: dict[str, bytes] = {}
    projects = sorted(by_project)
    pages[f"{INDEX_DIR}/index.html"] = _page(
        "Simple index",
        (f'<a href="{quote(p)}/">{html.escape(p)}</a><br>' for p in projects),
    )
    for project in projects:
        anchors = (a for _, a in sorted(by_project[project]))
        pages[f"{INDEX_DIR}/{project}/index.html"] = _page(f"Links for {project}", anchors)
    return pages


def render_readme(plan: Plan) -> bytes:
    """How to use the bundle, for people; names the plan's requirements."""
    requirements = " ".join(f"'{r}'" for r in plan.inputs.requirements) or "<requirements>"
    return f"""\
This directory is a fetchplan bundle: a download plan (plan.json), the manifest of the files
fetched for it (manifest.json: every file verified against the plan's sha256 and size), the
files themselves, and a static PEP 503 index over them (simple/). Nothing here needs the
network. In the commands below, BUNDLE is the path of this directory.

Check every file against the manifest and the plan:
    fetchplan verify BUNDLE

Install with fetchplan (the bundle is verified first):
    fetchplan install BUNDLE --venv .venv

Install with pip, from the files or through the index (the index URL must be absolute):
    python -m pip install --no-index --find-links BUNDLE {requirements}
    python -m pip install --index-url file:///ABSOLUTE/PATH/TO/BUNDLE/simple {requirements}

Install with uv:
    uv pip install --offline --no-index --find-links BUNDLE {requirements}
""".encode()
