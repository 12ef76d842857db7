"""From a project's files to its candidates: one best file per version, and why others lost.

Pure: given the pages every source gave (in source priority order), the target environment and
the user's format and hash constraints, :class:`ProjectCandidates` picks for a version the file
an installer on the target would use (the best-ranked compatible wheel; an sdist only when no
compatible wheel exists and source builds are allowed) and records, for a version it rejects,
the reasons. It does so one version at a time, when a version is first asked about
(:meth:`ProjectCandidates.choice`): a real index lists every release of a project, and a
resolution looks at a few. The resolver provider filters the versions by specifier, pre-release
and yanked rules before asking (:func:`fetchplan.planner.provider.iter_matches`).
:func:`select_candidates` makes one from a list of links (a find-links location's, a test's).
"""

from __future__ import annotations

import datetime as _dt
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from fetchplan._age import format_time
from fetchplan.planner.index import LEGACY_SDIST_SUFFIXES, SDIST_SUFFIXES, Link, ProjectPage
from fetchplan.planner.target import TargetEnv

__all__ = [
    "Candidate",
    "Choice",
    "DistMetadata",
    "Format",
    "FormatControl",
    "ProjectCandidates",
    "Rejection",
    "select_candidates",
]


class Format(Enum):
    BINARY = "binary"
    SOURCE = "source"


@dataclass(frozen=True, slots=True)
class FormatControl:
    """pip's ``--only-binary``/``--no-binary`` sets (canonical names or ``:all:``), in the
    state pip reaches after applying every option in order (see ``reqfile.merge``)."""

    only_binary: frozenset[str] = frozenset()
    no_binary: frozenset[str] = frozenset()

    def allowed(self, name: str) -> frozenset[Format]:
        """The formats allowed for project ``name`` (pip's ``get_allowed_formats``)."""
        canonical = canonicalize_name(name)
        allowed = {Format.BINARY, Format.SOURCE}
        if canonical in self.only_binary:
            allowed.discard(Format.SOURCE)
        elif canonical in self.no_binary:
            allowed.discard(Format.BINARY)
        elif ":all:" in self.only_binary:
            allowed.discard(Format.SOURCE)
        elif ":all:" in self.no_binary:
            allowed.discard(Format.BINARY)
        return frozenset(allowed)


@dataclass(frozen=True, slots=True)
class Candidate:
    """One version of a project, with the file chosen for it (and the extras asked of it)."""

    name: NormalizedName
    version: Version
    link: Link | None
    extras: frozenset[str] = frozenset()

    @property
    def yanked(self) -> bool:
        return self.link is not None and self.link.yanked

    def with_extras(self, extras: frozenset[str]) -> Candidate:
        return Candidate(name=self.name, version=self.version, link=self.link, extras=extras)

    def __str__(self) -> str:
        extras = f"[{','.join(sorted(self.extras))}]" if self.extras else ""
        return f"{self.name}{extras} {self.version}"


@dataclass(frozen=True, kw_only=True, slots=True)
class DistMetadata:
    """What the resolver needs from a file's core metadata, and what getting it cost.

    ``source`` is how it was obtained (``local``, ``pep658``, ``range``, ``whole``, ``sdist``);
    ``total_size`` and ``sha256`` are by-products (a range response's total length, the digest
    of a wholly fetched file) that spare later requests. ``json`` is the whole core metadata in
    its PEP 566 JSON form, for the plan to record (see ``metadata.metadata_json``).
    """

    name: NormalizedName
    version: Version
    requires_dist: tuple[Requirement, ...] = ()
    requires_python: SpecifierSet | None = None
    provides_extra: frozenset[str] = frozenset()
    source: str = "local"
    requests: int = 0
    bytes_received: int = 0
    total_size: int | None = None
    sha256: str | None = None
    json: Mapping[str, Any] | None = field(default=None, hash=False, compare=False)


@dataclass(frozen=True, slots=True)
class Rejection:
    version: Version
    reasons: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.version} ({'; '.join(self.reasons)})"


Choice = Candidate | Rejection | None
"""What a version gives: its candidate, why it was rejected, or None when it has no files."""


class ProjectCandidates:
    """The versions of a project on its sources, each made a candidate when first asked.

    ``versions`` lists every version some source lists files of, newest first. Thread-safe:
    the resolver and the prefetcher's threads may ask at once; a version is decided once.
    """

    def __init__(
        self,
        name: NormalizedName,
        pages: Sequence[ProjectPage],
        target: TargetEnv,
        *,
        formats: FormatControl | None = None,
        allowed_hashes: Mapping[str, frozenset[str]] | None = None,
        url_ok: Callable[[str], bool] = lambda _url: True,
        sources: Sequence[str] = (),
        found: bool = True,
        exclude_newer: _dt.datetime | None = None,
        quarantined: Sequence[tuple[str, str | None]] = (),
    ) -> None:
        self.name = name
        self.sources = tuple(sources)
        self.found = found
        """False when no index or find-links location knows the project at all."""
        self.quarantined = tuple(quarantined)
        """(index URL, reason) of each index whose page marks the project quarantined (PEP
        792): refused there, as if the index did not have it."""
        self._pages = tuple(pages)
        self._target = target
        self._allowed = (formats or FormatControl()).allowed(name)
        self._hashes = allowed_hashes
        self._url_ok = url_ok
        self._exclude_newer = exclude_newer
        self._lock = threading.Lock()
        self._choices: dict[Version, Choice] = {}
        if len(self._pages) == 1:
            self.versions: tuple[Version, ...] = self._pages[0].versions
        else:
            every = {version for page in self._pages for version in page.versions}
            self.versions = tuple(sorted(every, reverse=True))

    def choice(self, version: Version) -> Choice:
        """The candidate of ``version``, or its rejection (decided on the first call).

        Raises :class:`~fetchplan.planner.index.IndexPageError` when a source lists a
        malformed file of this version.
        """
        with self._lock:
            if version in self._choices:
                return self._choices[version]
        links = [
            link
            for page in self._pages
            for link in page.links_for(version)
            if link.name == self.name
        ]
        choice = _choose(
            self.name,
            version,
            links,
            target=self._target,
            formats=self._allowed,
            allowed_hashes=self._hashes,
            url_ok=self._url_ok,
            exclude_newer=self._exclude_newer,
        )
        with self._lock:
            return self._choices.setdefault(version, choice)

    def candidate(self, version: Version) -> Candidate | None:
        """The candidate of ``version``, or None when it has none for the target."""
        choice = self.choice(version)
        return choice if isinstance(choice, Candidate) else None

    @property
    def candidates(self) -> tuple[Candidate, ...]:
        """Every usable version's candidate, newest first (decides every version)."""
        return tuple(c for v in self.versions if isinstance(c := self.choice(v), Candidate))

    @property
    def rejected(self) -> tuple[Rejection, ...]:
        """Every rejected version, newest first (decides every version)."""
        return tuple(r for v in self.versions if isinstance(r := self.choice(v), Rejection))

    @property
    def has_wheel(self) -> Mapping[Version, bool]:
        """Whether each usable version's chosen file is a wheel (decides every version)."""
        return {c.version: c.link is not None and c.link.kind == "wheel" for c in self.candidates}


def _upload_problem(link: Link, exclude_newer: _dt.datetime) -> str | None:
    """Why ``--exclude-newer`` drops ``link``: uploaded after the cut-off, or not known when.

    A file without a (readable) PEP 700 ``upload-time`` is dropped, as uv drops it: a cut-off
    that let undated files through would not keep a just-published release out.
    """
    if link.upload_time is None:
        return "no upload time"
    try:
        uploaded = _dt.datetime.fromisoformat(link.upload_time)
    except ValueError:
        return "no upload time"
    if uploaded.tzinfo is None:
        uploaded = uploaded.replace(tzinfo=_dt.UTC)
    if uploaded > exclude_newer:
        return f"uploaded after {format_time(exclude_newer)}"
    return None


def _link_problem(
    link: Link,
    target: TargetEnv,
    formats: frozenset[Format],
    allowed_hashes: Mapping[str, frozenset[str]] | None,
    url_ok: Callable[[str], bool],
    *,
    exclude_newer: _dt.datetime | None = None,
) -> str | None:
    if exclude_newer is not None and (problem := _upload_problem(link, exclude_newer)):
        return problem
    if not url_ok(link.url):
        return "insecure http:// URL (use https or --trusted-host)"
    if link.kind == "wheel":
        if Format.BINARY not in formats:
            return "wheels not allowed (--no-binary)"
        if target.wheel_priority(link.tag_text) is None:
            return "no wheel for the target's tags"
    elif Format.SOURCE not in formats:
        return "only an sdist, and binaries are required (--only-binary)"
    elif link.kind == "sdist" and not link.filename.endswith(SDIST_SUFFIXES):
        suffix = next(s for s in LEGACY_SDIST_SUFFIXES if link.filename.endswith(s))
        return f"only a legacy {suffix} sdist (fetchplan reads .tar.gz and .zip sdists)"
    if not target.python_matches(link.requires_python):
        return f"requires Python {link.requires_python}"
    if allowed_hashes:
        known = {algo: value for algo, value in link.hashes.items() if algo in allowed_hashes}
        if known and not any(value in allowed_hashes[algo] for algo, value in known.items()):
            return "hash not among the requirement's --hash values"
    return None


def _rank(link: Link, target: TargetEnv, position: int) -> tuple[object, ...]:
    priority = target.wheel_priority(link.tag_text) if link.kind == "wheel" else None
    build = link.build if link.build else (-1, "")
    return (
        link.yanked,
        link.kind != "wheel",
        priority if priority is not None else 0,
        -int(build[0]),
        str(build[1]),
        # sdists: .tar.gz before .zip, then the source order, then the name for determinism.
        not link.filename.endswith((".whl", ".tar.gz")),
        position,
        link.filename,
    )


def _choose(
    name: NormalizedName,
    version: Version,
    links: Sequence[Link],
    *,
    target: TargetEnv,
    formats: frozenset[Format],
    allowed_hashes: Mapping[str, frozenset[str]] | None,
    url_ok: Callable[[str], bool],
    exclude_newer: _dt.datetime | None = None,
) -> Choice:
    if not links:
        return None
    usable: list[tuple[int, Link]] = []
    reasons: list[str] = []
    for position, link in enumerate(links):
        problem = _link_problem(
            link, target, formats, allowed_hashes, url_ok, exclude_newer=exclude_newer
        )
        if problem is None:
            usable.append((position, link))
        elif problem not in reasons:
            reasons.append(problem)
    if not usable:
        return Rejection(version=version, reasons=tuple(reasons))
    best = min(usable, key=lambda item: _rank(item[1], target, item[0]))[1]
    return Candidate(name=name, version=version, link=best)


def select_candidates(
    name: NormalizedName,
    links: Sequence[Link],
    target: TargetEnv,
    *,
    formats: FormatControl | None = None,
    allowed_hashes: Mapping[str, frozenset[str]] | None = None,
    url_ok: Callable[[str], bool] = lambda _url: True,
    sources: Sequence[str] = (),
    found: bool = True,
    exclude_newer: _dt.datetime | None = None,
) -> ProjectCandidates:
    """Pick the best file of each version of ``name`` for ``target``; explain the rejects.

    ``links`` come in source priority order (earlier wins a tie). ``allowed_hashes`` maps an
    algorithm to the digests ``--hash`` options allow; links whose known digest is not among
    them are rejected (links without a digest stay: they are checked once fetched).
    ``exclude_newer`` (an aware time) rejects files uploaded after it or of unknown upload time.
    """
    page = ProjectPage.from_links(None, "", (link for link in links if link.name == name))
    return ProjectCandidates(
        name,
        [page],
        target,
        formats=formats,
        allowed_hashes=allowed_hashes,
        url_ok=url_ok,
        sources=sources,
        found=found,
        exclude_newer=exclude_newer,
    )
