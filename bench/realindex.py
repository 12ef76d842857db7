"""The real-pages index: the machine's index's own project pages, snapshotted once and served.

For every project of a set, the PEP 691 JSON page of the index pip on this machine uses (its
``PIP_INDEX_URL``, its configuration, else pip's own default, read by ``fetchplan.pipconfig`` at
run time) is fetched once by project name and kept under ``bench/work/pages/``. The bench
serves it as it is, every release and file listed, with each file's URL made relative to the
bench's ``files/`` directory: there only the set's own wheels (and, in the ``pep658`` variant,
the ``.metadata`` files the bench has) exist, so every other file answers 404. The HTML
(PEP 503) page is generated from the same JSON.

Layout under ``root/<set>/real-<variant>/`` (``variant`` is ``pep658`` or ``nometa``), as the
minimal index has it (``staticindex``)::

    files/<wheel>             hard link to the set's wheel
    files/<wheel>.metadata    PEP 658 metadata (``pep658`` only): the set's wheels', and for
                              the plan of many targets those of every wheel of a pinned
                              version that one of the targets accepts
    simple/<project>/index.json|html

The pure parts (:func:`rewrite_page`, :func:`page_html`, :func:`target_tags`,
:func:`target_closure`) take and give plain data, so ``test_bench.py`` checks them on small
pages.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import os
import shutil
import ssl
import subprocess
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging import tags as pt
from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

__all__ = [
    "JSON_TYPE",
    "TARGETS",
    "Snapshot",
    "Target",
    "build_in_child",
    "build_real_index",
    "machine_index",
    "page_html",
    "rewrite_page",
    "target_closure",
    "target_tags",
]

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
_META_KEYS = ("core-metadata", "dist-info-metadata", "data-dist-info-metadata")


@dataclass(frozen=True)
class Target:
    """One of the plan's environments: a Python version and a platform tag."""

    python: str
    platform: str

    @property
    def fetchplan_spec(self) -> str:
        return f"py={self.python},platform={self.platform}"

    @property
    def uv_platform(self) -> str:
        return _UV_PLATFORMS[self.platform]

    @property
    def pip_platforms(self) -> list[str]:
        """pip's ``--platform`` values: pip widens a macOS tag itself, not a manylinux one."""
        if self.platform.startswith("manylinux_"):
            return [p for p in _expand_platform(self.platform) if not p.startswith("linux_")]
        return [self.platform]

    @property
    def markers(self) -> dict[str, str]:
        system, sys_platform, os_name, machine = _PLATFORM_MARKERS[self.platform]
        return {
            "implementation_name": "cpython",
            "platform_python_implementation": "CPython",
            "python_version": self.python,
            "python_full_version": f"{self.python}.0",
            "implementation_version": f"{self.python}.0",
            "platform_system": system,
            "sys_platform": sys_platform,
            "os_name": os_name,
            "platform_machine": machine,
            "platform_release": "",
            "platform_version": "",
        }


# 3 Pythons x 4 platforms, as issue 15 has them; manylinux_2_28 because numpy and pandas ship
# no older manylinux wheels any more.
_UV_PLATFORMS = {
    "manylinux_2_28_x86_64": "x86_64-manylinux_2_28",
    "manylinux_2_28_aarch64": "aarch64-manylinux_2_28",
    "macosx_14_0_arm64": "aarch64-apple-darwin",
    "win_amd64": "x86_64-pc-windows-msvc",
}
_PLATFORM_MARKERS = {
    "manylinux_2_28_x86_64": ("Linux", "linux", "posix", "x86_64"),
    "manylinux_2_28_aarch64": ("Linux", "linux", "posix", "aarch64"),
    "macosx_14_0_arm64": ("Darwin", "darwin", "posix", "arm64"),
    "win_amd64": ("Windows", "win32", "nt", "AMD64"),
}
TARGETS = tuple(Target(py, plat) for py in ("3.11", "3.12", "3.13") for plat in _UV_PLATFORMS)
# uv's aarch64-apple-darwin assumes an older macOS unless told; the bench's target is 14.0.
UV_TARGET_ENV = {"MACOSX_DEPLOYMENT_TARGET": "14.0"}


# --- pure ---------------------------------------------------------------------------------------
def _expand_platform(platform: str) -> list[str]:
    if platform.startswith("macosx_"):
        _, major, minor, arch = platform.split("_", 3)
        return list(pt.mac_platforms((int(major), int(minor)), arch))
    if platform.startswith("manylinux_"):
        _, major, minor, arch = platform.split("_", 3)
        out = [f"manylinux_{major}_{m}_{arch}" for m in range(int(minor), 4, -1)]
        legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
        out += [f"{name}_{arch}" for m, name in legacy.items() if m <= int(minor)]
        return [*out, f"linux_{arch}"]
    return [platform]


def target_tags(target: Target) -> list[pt.Tag]:
    """The wheel tags ``target`` accepts, best first (CPython of that version)."""
    major, minor = (int(x) for x in target.python.split(".")[:2])
    platforms = _expand_platform(target.platform)
    return [
        *pt.cpython_tags((major, minor), platforms=platforms),
        *pt.compatible_tags((major, minor), f"cp{major}{minor}", platforms),
    ]


def rewrite_page(
    page: Mapping[str, Any],
    own: Mapping[str, str],
    metadata: Mapping[str, str],
    *,
    pep658: bool,
) -> dict[str, Any]:
    """The page the bench serves for ``page`` (a PEP 691 JSON project page, as snapshotted).

    Every file's URL becomes ``../../files/<filename>``, relative to the project page, where
    the bench keeps the files it has: ``own`` maps the set's own filenames to their sha256
    (which the page keeps, or gets, as its hash). With ``pep658``, the files in ``metadata``
    (filename -> sha256 of the ``.metadata`` file the bench serves) say so with
    ``core-metadata``; any other metadata attribute is dropped, since the bench serves no
    other metadata file. Everything else of the page is kept as it is.
    """
    files = []
    for entry in page.get("files", []):
        new = {k: v for k, v in entry.items() if k not in _META_KEYS}
        name = str(entry["filename"])
        new["url"] = f"../../files/{urllib.parse.quote(name)}"
        if name in own:
            new["hashes"] = {**entry.get("hashes", {}), "sha256": own[name]}
        if pep658 and name in metadata:
            new["core-metadata"] = {"sha256": metadata[name]}
            new["dist-info-metadata"] = {"sha256": metadata[name]}
        files.append(new)
    return {**page, "files": files}


def _hash_fragment(hashes: Mapping[str, str]) -> str:
    for algo in ("sha256", "sha384", "sha512", "sha224", "sha1", "md5"):
        if algo in hashes:
            return f"#{algo}={hashes[algo]}"
    return ""


def _meta_attr(value: object) -> str | None:
    if value is True:
        return "true"
    if isinstance(value, Mapping) and value:
        algo, digest = next(iter(value.items()))
        return f"{algo}={digest}"
    return None


def page_html(page: Mapping[str, Any]) -> str:
    """The PEP 503 HTML page of the PEP 691 JSON ``page`` (PEP 592, 658/714, 629 attributes)."""
    name = html.escape(str(page.get("name", "")))
    rows = []
    for entry in page.get("files", []):
        href = str(entry["url"]) + _hash_fragment(entry.get("hashes", {}))
        attrs = [f'href="{html.escape(href)}"']
        rp = entry.get("requires-python")
        if rp:
            attrs.append(f'data-requires-python="{html.escape(str(rp))}"')
        yanked = entry.get("yanked", False)
        if yanked is True:
            attrs.append("data-yanked")
        elif yanked:
            attrs.append(f'data-yanked="{html.escape(str(yanked))}"')
        meta = _meta_attr(entry.get("core-metadata", entry.get("dist-info-metadata")))
        if meta is not None:
            attrs.append(f'data-core-metadata="{html.escape(meta)}"')
            attrs.append(f'data-dist-info-metadata="{html.escape(meta)}"')
        rows.append(f"    <a {' '.join(attrs)}>{html.escape(str(entry['filename']))}</a><br/>")
    body = "\n".join(rows)
    return (
        "<!DOCTYPE html>\n<html>\n  <head>\n"
        '    <meta name="pypi:repository-version" content="1.0">\n'
        f"    <title>Links for {name}</title>\n  </head>\n  <body>\n"
        f"    <h1>Links for {name}</h1>\n{body}\n  </body>\n</html>\n"
    )


def _wheel_version(filename: str) -> tuple[Version, frozenset[pt.Tag]] | None:
    if not filename.endswith(".whl"):
        return None
    try:
        _name, version, _build, wheel_tags = parse_wheel_filename(filename)
    except (InvalidWheelFilename, InvalidVersion):
        return None
    return version, wheel_tags


def _python_ok(requires_python: object, python: str) -> bool:
    if not requires_python:
        return True
    try:
        return Version(f"{python}.0") in SpecifierSet(str(requires_python))
    except InvalidSpecifier:
        return True


def _requires(metadata: bytes) -> list[Requirement]:
    header = metadata.decode("utf-8", "replace").split("\n\n", 1)[0]
    out = []
    for line in header.splitlines():
        if line.lower().startswith("requires-dist:"):
            try:
                out.append(Requirement(line.split(":", 1)[1].strip()))
            except InvalidRequirement:
                continue
    return out


def _applies(marker: Marker | None, env: Mapping[str, str], extras: Iterable[str]) -> bool:
    if marker is None:
        return True
    return any(marker.evaluate({**env, "extra": e}) for e in (*extras, ""))


@dataclass(frozen=True)
class Picked:
    """What one target takes of one project: its version and the wheels of it it accepts."""

    version: str
    files: tuple[str, ...]
    """filenames, best first for this target"""


def target_closure(
    top_level: Iterable[str],
    pins: Mapping[str, str],
    target: Target,
    page_of: Callable[[str], Mapping[str, Any]],
    metadata_of: Callable[[str, Mapping[str, Any]], bytes],
) -> dict[str, Picked]:
    """Every project ``target`` installs for ``top_level``, with ``pins`` as constraints.

    Not a resolver: a pinned project takes its pin, any other one the newest final,
    unyanked version with a wheel ``target`` accepts (the bench only needs to know which
    pages and metadata files the target's plan reads, and pins what a set's pins leave open).
    ``page_of(name)`` gives a project's JSON page, ``metadata_of(name, file entry)`` a wheel's
    metadata.
    """
    accepted = {tag: rank for rank, tag in enumerate(target_tags(target))}
    env = target.markers
    picked: dict[str, Picked] = {}
    extras_seen: dict[str, set[str]] = {}
    queue: deque[tuple[str, frozenset[str]]] = deque()
    for line in top_level:
        req = Requirement(line)
        queue.append((str(canonicalize_name(req.name)), frozenset(req.extras)))
    while queue:
        name, extras = queue.popleft()
        seen = extras_seen.setdefault(name, set())
        if name in picked and extras <= seen:
            continue
        seen |= extras
        if name not in picked:
            picked[name] = _pick(name, pins.get(name), page_of(name), target, accepted)
        chosen = picked[name]
        entry = next(f for f in page_of(name)["files"] if f["filename"] == chosen.files[0])
        for req in _requires(metadata_of(name, entry)):
            if _applies(req.marker, env, seen):
                queue.append((str(canonicalize_name(req.name)), frozenset(req.extras)))
    return picked


def _pick(
    name: str,
    pin: str | None,
    page: Mapping[str, Any],
    target: Target,
    accepted: Mapping[pt.Tag, int],
) -> Picked:
    by_version: dict[Version, list[tuple[int, str]]] = {}
    for entry in page.get("files", []):
        parsed = _wheel_version(str(entry["filename"]))
        if parsed is None or entry.get("yanked"):
            continue
        version, wheel_tags = parsed
        ranks = [accepted[t] for t in wheel_tags if t in accepted]
        if ranks and _python_ok(entry.get("requires-python"), target.python):
            by_version.setdefault(version, []).append((min(ranks), str(entry["filename"])))
    if pin is not None:
        candidates = [v for v in by_version if v == Version(pin)]
    else:
        candidates = sorted((v for v in by_version if not v.is_prerelease), reverse=True)
    if not candidates:
        want = f"=={pin}" if pin else "(any version)"
        raise ValueError(f"{name}{want}: no wheel for {target.fetchplan_spec}")
    version = candidates[0]
    files = tuple(f for _rank, f in sorted(by_version[version]))
    return Picked(str(version), files)


# --- I/O ----------------------------------------------------------------------------------------
def machine_index(python: Path, fetchplan_src: Path) -> tuple[str, str | None]:
    """(index URL, CA bundle) pip on this machine uses, found as fetchplan finds it."""
    code = (
        "import json\n"
        "from fetchplan.pipconfig import pip_default_index, read_pip_settings\n"
        "s = read_pip_settings()\n"
        "print(json.dumps([s.index_url or pip_default_index(), s.cert]))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(fetchplan_src)}
    proc = subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, env=env, check=False
    )
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["failed"])[-1]
        raise SystemExit(f"could not learn pip's index: {tail}")
    url, cert = json.loads(proc.stdout.strip().splitlines()[-1])
    return str(url), cert


class Snapshot:
    """Project pages and wheel metadata of one index, fetched once each and kept on disk."""

    def __init__(self, root: Path, index_url: str, cafile: str | None) -> None:
        self.root = root
        self.index_url = index_url.rstrip("/") + "/"
        parts = urllib.parse.urlsplit(self.index_url)
        self._auth: str | None = None
        if parts.username is not None:
            # Credentials go in a header, never into a snapshot file or a message.
            user = urllib.parse.unquote(parts.username)
            pair = f"{user}:{urllib.parse.unquote(parts.password or '')}"
            self._auth = "Basic " + base64.b64encode(pair.encode()).decode()
            host = parts.netloc.rsplit("@", 1)[1]
            self.index_url = parts._replace(netloc=host).geturl()
        self._ctx = ssl.create_default_context(cafile=cafile) if cafile else None
        self._pages: dict[str, dict[str, Any]] = {}
        (root / "metadata").mkdir(parents=True, exist_ok=True)

    def _get(
        self, url: str, accept: str | None = None, extra: Mapping[str, str] | None = None
    ) -> tuple[bytes, str]:
        headers = {"User-Agent": "fetchplan-bench", **(extra or {})}
        if accept:
            headers["Accept"] = accept
        if self._auth and url.startswith(self.index_url):
            headers["Authorization"] = self._auth
        req = urllib.request.Request(url, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=120, context=self._ctx) as resp:
                return resp.read(), resp.headers.get("Content-Type", "")
        except urllib.error.URLError as exc:
            raise SystemExit(f"snapshot: {url}: {exc}") from None

    def page(self, name: str) -> dict[str, Any]:
        """The project's JSON page: from disk, else fetched once (``Accept``: PEP 691 JSON)."""
        name = str(canonicalize_name(name))
        if name in self._pages:
            return self._pages[name]
        path = self.root / f"{name}.json"
        if not path.exists():
            body, ctype = self._get(f"{self.index_url}{name}/", JSON_TYPE)
            if not ctype.startswith(JSON_TYPE):
                raise SystemExit(
                    f"snapshot: the index answered {name}'s page with {ctype!r}, not PEP 691 "
                    "JSON; the bench snapshots JSON only"
                )
            page = json.loads(body)
            # Relative file URLs are made absolute once, against the page they came from.
            base = f"{self.index_url}{name}/"
            for entry in page.get("files", []):
                entry["url"] = urllib.parse.urljoin(base, entry["url"])
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(page))
            tmp.replace(path)
        self._pages[name] = json.loads(path.read_text())
        return self._pages[name]

    def page_digest(self, name: str) -> str:
        """sha256 of the project's snapshot file (a new snapshot rewrites the index)."""
        path = self.root / f"{canonicalize_name(name)}.json"
        return hashlib.sha256(path.read_bytes()).hexdigest()

    def pages(self, names: Iterable[str]) -> None:
        """Fetch the pages not on disk yet, a few at a time."""
        todo = [n for n in names if not (self.root / f"{canonicalize_name(n)}.json").exists()]
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(self.page, todo))
        for n in names:
            self.page(n)

    def metadata(self, _name: str, entry: Mapping[str, Any]) -> bytes:
        """A wheel's core metadata, fetched once: read out of the wheel by range requests.

        (This machine's index serves ``<file URL>.metadata`` for some files but advertises
        none, so the wheel itself is the one source every file has.)
        """
        path = self.root / "metadata" / f"{entry['filename']}.metadata"
        if not path.exists():
            url = str(entry["url"]).split("#", 1)[0]
            remote = _RangeFile(url, int(entry.get("size") or 0) or None, self)
            with zipfile.ZipFile(remote) as zf:
                names = [
                    n
                    for n in zf.namelist()
                    if n.count("/") == 1 and n.endswith(".dist-info/METADATA")
                ]
                if len(names) != 1:
                    raise SystemExit(f"snapshot: {entry['filename']}: no single METADATA")
                body = zf.read(names[0])
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(body)
            tmp.replace(path)
        return path.read_bytes()

    def metadata_many(self, entries: Iterable[Mapping[str, Any]]) -> None:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda e: self.metadata("", e), entries))


class _RangeFile(io.RawIOBase):
    """A remote file read by HTTP range requests, in blocks, for ``zipfile``."""

    _BLOCK = 256 * 1024

    def __init__(self, url: str, size: int | None, snapshot: Snapshot) -> None:
        self._url = url
        self._snap = snapshot
        self._blocks: dict[int, bytes] = {}
        self._pos = 0
        if size is None:
            body, _ = snapshot._get(url, extra={"Range": "bytes=-1"})
            raise SystemExit(f"snapshot: {url}: the page gives no size ({len(body)})")
        self._size = size

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def _block(self, index: int) -> bytes:
        if index not in self._blocks:
            start = index * self._BLOCK
            end = min(self._size, start + self._BLOCK) - 1
            body, _ = self._snap._get(self._url, extra={"Range": f"bytes={start}-{end}"})
            if len(body) != end - start + 1:
                raise SystemExit(f"snapshot: {self._url}: the server ignored a range request")
            self._blocks[index] = body
        return self._blocks[index]

    def read(self, size: int = -1) -> bytes:
        end = self._size if size < 0 else min(self._size, self._pos + size)
        out = bytearray()
        while self._pos < end:
            block = self._block(self._pos // self._BLOCK)
            start = self._pos % self._BLOCK
            chunk = block[start : start + end - self._pos]
            out += chunk
            self._pos += len(chunk)
        return bytes(out)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _link(src: Path, dst: Path) -> None:
    if dst.exists():
        return
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


@dataclass(frozen=True)
class RealIndex:
    """What the bench needs to know of a set's real-pages index once it is written."""

    page_bytes: int
    """bytes of the JSON pages of the set's projects (what a cold plan reads of them)"""
    targets_constraints: Path
    """the set's pins and the pins of what the targets add (e.g. colorama on Windows)"""
    targets_projects: int
    targets_errors: tuple[str, ...]
    """targets whose closure the bench could not make (their plan rows are bound to fail)"""


def build_in_child(
    root: Path,
    rs_name: str,
    top_level: list[str],
    pins: dict[str, str],
    own: dict[str, tuple[Path, str, bytes]],
    *,
    snapshot_args: tuple[Path, str, str | None],
) -> RealIndex:
    """:func:`build_real_index` in a process of its own (see ``run.prepare_set``)."""
    return build_real_index(root, rs_name, top_level, pins, own, snapshot=Snapshot(*snapshot_args))


def build_real_index(
    root: Path,
    rs_name: str,
    top_level: Iterable[str],
    pins: Mapping[str, str],
    own: Mapping[str, tuple[Path, str, bytes]],
    *,
    snapshot: Snapshot,
) -> RealIndex:
    """Write ``root/<set>/real-pep658`` and ``real-nometa`` from ``snapshot``.

    ``own`` maps the set's wheel filenames to (path, sha256, metadata bytes).
    """
    top_level = list(top_level)
    snapshot.pages(pins)
    # The projects and wheels the 12 targets' plans read (their metadata goes beside them).
    own_meta = {f: meta for f, (_p, _s, meta) in own.items()}

    def metadata_of(name: str, entry: Mapping[str, Any]) -> bytes:
        found = own_meta.get(str(entry["filename"]))
        return found if found is not None else snapshot.metadata(name, entry)

    picks: dict[str, Picked] = {}
    errors: list[str] = []
    for target in TARGETS:
        try:
            closure = target_closure(top_level, pins, target, snapshot.page, metadata_of)
        except ValueError as exc:
            errors.append(str(exc))
            continue
        for name, pick in closure.items():
            prev = picks.get(name)
            files = pick.files if prev is None else (*prev.files, *pick.files)
            version = pick.version
            if prev is not None and Version(prev.version) > Version(version):
                version = prev.version
            picks[name] = Picked(version, tuple(dict.fromkeys(files)))
    projects = sorted(set(pins) | set(picks))
    snapshot.pages(projects)
    meta_files = {f for p in picks.values() for f in p.files} - set(own)
    entries = [
        e for n in projects for e in snapshot.page(n)["files"] if e["filename"] in meta_files
    ]
    snapshot.metadata_many(entries)
    metadata: dict[str, bytes] = {e["filename"]: snapshot.metadata("", e) for e in entries}
    for filename, (_path, _sha, meta) in own.items():
        metadata[filename] = meta
    meta_sha = {f: hashlib.sha256(m).hexdigest() for f, m in metadata.items()}
    own_sha = {f: sha for f, (_p, sha, _m) in own.items()}
    pins_bytes = sum(
        len(json.dumps(rewrite_page(snapshot.page(n), own_sha, meta_sha, pep658=True)).encode())
        for n in pins
    )
    extra = {n: p.version for n, p in picks.items() if n not in pins}
    constraints = root / rs_name / "targets-constraints.txt"
    real = RealIndex(pins_bytes, constraints, len(picks), tuple(errors))
    # Written again only when something changed: deleting and writing these trees right
    # before the measured commands would slow their file creation (see README, "Noise").
    stamp = root / rs_name / "real-stamp.json"
    want = json.dumps(
        {"own": own_sha, "meta": meta_sha, "pages": {n: snapshot.page_digest(n) for n in projects}},
        sort_keys=True,
    )
    if stamp.exists() and stamp.read_text() == want and constraints.exists():
        return real
    for variant in ("pep658", "nometa"):
        pep658 = variant == "pep658"
        base = root / rs_name / f"real-{variant}"
        if base.exists():
            shutil.rmtree(base)
        (base / "files").mkdir(parents=True)
        for filename, (path, _sha, _meta) in own.items():
            _link(path, base / "files" / filename)
        if pep658:
            for filename, meta in metadata.items():
                (base / "files" / f"{filename}.metadata").write_bytes(meta)
        simple = base / "simple"
        for name in projects:
            page = rewrite_page(snapshot.page(name), own_sha, meta_sha, pep658=pep658)
            (simple / name).mkdir(parents=True)
            body = json.dumps(page)
            (simple / name / "index.json").write_text(body)
            (simple / name / "index.html").write_text(page_html(page))
        links = "\n".join(f'    <a href="{p}/">{p}</a><br/>' for p in projects)
        (simple / "index.html").write_text(
            "<!DOCTYPE html>\n<html>\n  <body>\n" + links + "\n  </body>\n</html>\n"
        )
        root_json = {"meta": {"api-version": "1.1"}, "projects": [{"name": p} for p in projects]}
        (simple / "index.json").write_text(json.dumps(root_json))
    constraints.write_text(
        "".join(f"{n}=={v}\n" for n, v in sorted({**dict(pins), **extra}.items()))
    )
    stamp.write_text(want)
    return real
