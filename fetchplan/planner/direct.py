"""Direct references in a plan: each becomes the one candidate of its project.

Before resolving, :class:`DirectPlanner` prepares every direct reference of the requirements
(:mod:`.directref`) once, whatever the number of targets, and each failure names the
requirement's file and line:

* an archive URL (kind ``url``): its sha256 is the URL's ``#sha256=`` fragment, else the
  user's single ``--hash``, else the file is downloaded (into the cache) and hashed now; its
  metadata is read as an index file's (range requests, or the whole file; an sdist's PKG-INFO,
  or prepared by its backend);
* a local archive (kind ``file``): hashed now (and checked against a fragment or ``--hash``);
* a project directory (kind ``directory``): archived as :mod:`fetchplan._sourcetree` says, the
  archive's sha256 being the tree's digest; its metadata prepared by its PEP 517 backend from
  that archive, and its build requirements resolved into the plan as an sdist's are;
* a git commit (kind ``vcs``): the revision resolved to its commit (:mod:`fetchplan._vcs`), the
  commit's tree checked out and archived as a directory's.

The resolver's finder then answers for the project with that single candidate
(:meth:`DirectPlanner.link_for`), the metadata already known (:meth:`DirectPlanner.wrap`), and
:meth:`DirectPlanner.finish` marks the plan's artifacts ``direct`` with their ``path``,
``exclude``, ``vcs`` and where their sha256 came from.
"""

from __future__ import annotations

import email.parser
import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import requests
from packaging.requirements import Requirement
from packaging.utils import (
    NormalizedName,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from fetchplan._fs import sha256_file
from fetchplan._sourcetree import write_tree_archive
from fetchplan._urls import redact
from fetchplan.cache import ArtifactCache
from fetchplan.errors import FetchplanError, InputError
from fetchplan.planner import metadata as md
from fetchplan.planner.candidates import DistMetadata
from fetchplan.planner.directref import (
    DirectRef,
    archive_name,
    directory_problem,
    parse_direct,
    same_file,
)
from fetchplan.planner.index import Link
from fetchplan.planner.reqfile import ParsedRequirement, RequirementSet
from fetchplan.planner.sdist import SdistFacts, SdistPlanner
from fetchplan.schemas.plan import Artifact, HashSource, Plan, VcsInfo

__all__ = ["DirectPlanner", "relative_or_absolute"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Prepared:
    parsed: ParsedRequirement
    ref: DirectRef
    link: Link
    metadata: DistMetadata
    hash_source: HashSource | None
    path: str | None = None
    exclude: tuple[str, ...] = ()
    vcs: VcsInfo | None = None


def relative_or_absolute(path: Path, start: Path) -> str:
    """``path`` (absolute) relative to ``start`` when it lies below it, else absolute; POSIX."""
    try:
        return path.relative_to(start).as_posix() or "."
    except ValueError:
        return path.as_posix()


def _inside(path: Path, root: Path) -> str | None:
    try:
        relative = path.relative_to(root).as_posix()
    except ValueError:
        return None
    return relative if relative not in ("", ".") else None


class DirectPlanner:
    """The direct references of one planning run (see the module's docstring)."""

    def __init__(
        self,
        requirement_set: RequirementSet,
        *,
        plan_dir: Path,
        plan_file: Path | None,
        dest_dir: Path,
        several_targets: bool,
    ) -> None:
        self._plan_dir = plan_dir
        self._plan_file = plan_file
        self._dest_dir = dest_dir
        self._refs: dict[NormalizedName, ParsedRequirement] = {}
        self._prepared: dict[NormalizedName, _Prepared] = {}
        self._by_url: dict[str, _Prepared] = {}
        self._named: dict[str, ParsedRequirement] = {}
        self._several_targets = several_targets
        # A constraint's direct reference is the project's file when something requires the
        # project, as pip and uv take ``-c`` lines of the form ``name @ URL``.
        for parsed in (*requirement_set.requirements, *requirement_set.constraints):
            if parsed.direct is not None:
                self._add(parsed, parsed.direct)

    def _add(self, parsed: ParsedRequirement, ref: DirectRef) -> None:
        if ref.editable and self._several_targets:
            raise InputError(
                f"{parsed.source}: '{ref.text}': an editable requirement cannot be part of "
                "a plan for several targets (it is installed from this directory)"
            )
        name = canonicalize_name(parsed.requirement.name)
        earlier = self._refs.get(name)
        if earlier is not None and earlier.direct is not None:
            if (earlier.direct.url, earlier.direct.revision, earlier.direct.subdirectory) != (
                ref.url,
                ref.revision,
                ref.subdirectory,
            ):
                raise InputError(
                    f"{parsed.source}: {name} is named by two direct references: "
                    f"'{earlier.direct.text}' ({earlier.source}) and '{ref.text}'"
                )
            return
        other = self._named.setdefault(ref.url, parsed)
        if other is not parsed and other.direct is not None:
            # One archive or directory is one artifact of the plan, its URL its key.
            raise InputError(
                f"{parsed.source}: '{ref.text}' and '{other.direct.text}' "
                f"({other.source}) name two projects in one archive or directory; "
                "a plan holds one project per direct URL"
            )
        self._refs[name] = parsed

    def add_dependency(self, parent: str, requirement: Requirement) -> None:
        """Take ``requirement`` (``dep @ URL`` in the Requires-Dist of ``parent``) as a direct
        reference, prepared by the next :meth:`prepare` (pip and uv follow such URLs)."""
        where = f"{parent} (its metadata's Requires-Dist)"
        found, ref = parse_direct(
            str(requirement), where, Path.cwd(), reader=lambda p: p.read_text(encoding="utf-8")
        )
        self._add(ParsedRequirement(requirement=found, source=where, direct=ref), ref)

    def conflict(self, name: NormalizedName, requirement: Requirement, parent: str) -> str | None:
        """Why ``requirement`` (``name @ URL`` in the Requires-Dist of ``parent``) cannot be
        met by the direct reference the run already takes for ``name``, or None when both
        name one file (:func:`~.directref.same_file`). pip and uv refuse two URLs for one
        project: pip's resolver then tries another version of ``parent``, and so does the
        planner's (``parent`` cannot be held)."""
        earlier = self._refs.get(name)
        if earlier is None or earlier.direct is None or requirement.url is None:
            return None
        where = f"{parent} (its metadata's Requires-Dist)"
        try:
            _found, ref = parse_direct(
                str(requirement), where, Path.cwd(), reader=lambda p: p.read_text(encoding="utf-8")
            )
        except InputError:
            ref = None  # a file that is not there, say: not the one already taken
        if ref is not None and same_file(earlier.direct, ref):
            return None
        asker = earlier.source.removesuffix(" (its metadata's Requires-Dist)")
        return (
            f"conflicting URLs for {name}: {earlier.direct.text} ({asker}) and "
            f"{redact(requirement.url)} ({parent})"
        )

    @property
    def names(self) -> frozenset[NormalizedName]:
        return frozenset(self._refs)

    def link_for(self, name: NormalizedName) -> Link | None:
        """The one candidate file of ``name`` when a direct reference names it."""
        prepared = self._prepared.get(name)
        return None if prepared is None else prepared.link

    def wrap(self, fetch: Callable[[Link], DistMetadata]) -> Callable[[Link], DistMetadata]:
        """``fetch``, answering for the prepared direct references without fetching again."""

        def fetch_metadata(link: Link) -> DistMetadata:
            prepared = self._by_url.get(link.url)
            if prepared is not None:
                return prepared.metadata
            return fetch(link)

        return fetch_metadata

    # -- preparing ---------------------------------------------------------------------------

    def prepare(
        self,
        *,
        session: requests.Session,
        cache: ArtifactCache | None,
        sdists: SdistPlanner,
        fetch_metadata: Callable[[Link], DistMetadata],
        scratch: Path,
        timeout: float,
        offline: bool = False,
    ) -> None:
        """Prepare every direct reference (see the module's docstring), in input order.

        Raises :class:`InputError` naming the requirement's file and line and the cause.
        """
        for name, parsed in self._refs.items():
            ref = parsed.direct
            assert ref is not None
            if name in self._prepared:
                continue
            try:
                prepared = self._prepare_one(
                    name,
                    parsed,
                    ref,
                    session=session,
                    cache=cache,
                    sdists=sdists,
                    fetch_metadata=fetch_metadata,
                    scratch=scratch,
                    timeout=timeout,
                    offline=offline,
                )
            except InputError:
                raise
            except FetchplanError as exc:
                # The cause names the URL or path already.
                raise InputError(f"{parsed.source}: {name}: {exc}") from None
            self._prepared[name] = prepared
            self._by_url[prepared.link.url] = prepared

    def _prepare_one(
        self,
        name: NormalizedName,
        parsed: ParsedRequirement,
        ref: DirectRef,
        *,
        session: requests.Session,
        cache: ArtifactCache | None,
        sdists: SdistPlanner,
        fetch_metadata: Callable[[Link], DistMetadata],
        scratch: Path,
        timeout: float,
        offline: bool,
    ) -> _Prepared:
        if ref.kind in ("url", "file") and ref.subdirectory is not None:
            return self._archive_subdirectory(
                name, parsed, ref, session=session, sdists=sdists, scratch=scratch, timeout=timeout
            )
        if ref.kind in ("url", "file"):
            return self._archive(
                name,
                parsed,
                ref,
                session=session,
                cache=cache,
                fetch=fetch_metadata,
                timeout=timeout,
            )
        if ref.kind == "directory":
            assert ref.path is not None
            root = ref.path
            if ref.subdirectory is not None:
                root = ref.path.joinpath(*ref.subdirectory.split("/"))
            exclude = self._exclusions(root)
            prepared = self._tree(name, parsed, ref, root, exclude, sdists, scratch)
            return replace(prepared, path=relative_or_absolute(ref.path, self._plan_dir))
        return self._vcs(name, parsed, ref, sdists, scratch, offline=offline)

    def _vcs(
        self,
        name: NormalizedName,
        parsed: ParsedRequirement,
        ref: DirectRef,
        sdists: SdistPlanner,
        scratch: Path,
        *,
        offline: bool,
    ) -> _Prepared:
        from fetchplan._vcs import checkout, resolve_revision

        if offline and not ref.url.startswith("file:"):
            raise InputError(f"{parsed.source}: {name}: --offline, and {ref.url} needs the network")
        commit = resolve_revision(ref.url, ref.revision)
        tree = checkout(ref.url, commit, Path(tempfile.mkdtemp(dir=scratch, prefix="git-")) / name)
        root = tree
        if ref.subdirectory is not None:
            root = tree / ref.subdirectory
            if not root.is_dir() or not root.resolve().is_relative_to(tree.resolve()):
                raise InputError(
                    f"{parsed.source}: {name}: commit {commit} has no directory {ref.subdirectory}"
                )
        problem = directory_problem(root)
        if problem is not None:
            where = "its top" if ref.subdirectory is None else ref.subdirectory
            raise InputError(
                f"{parsed.source}: {name}: commit {commit}: {where} {problem}"
                + (" (add #subdirectory=PATH)" if ref.subdirectory is None else "")
            )
        vcs = VcsInfo(
            type="git",
            url=ref.url,
            commit_id=commit,
            requested_revision=ref.revision,
            subdirectory=ref.subdirectory,
        )
        prepared = self._tree(name, parsed, ref, root, (), sdists, scratch, vcs=vcs)
        return replace(prepared, path=None)

    def _exclusions(self, directory: Path) -> tuple[str, ...]:
        found = []
        if self._plan_file is not None:
            inside = _inside(self._plan_file, directory)
            if inside is not None:
                found.append(inside)
        inside = _inside(self._dest_dir, directory)
        if inside is not None:
            found.append(inside)
        return tuple(sorted(set(found)))

    def _archive(
        self,
        name: NormalizedName,
        parsed: ParsedRequirement,
        ref: DirectRef,
        *,
        session: requests.Session,
        cache: ArtifactCache | None,
        fetch: Callable[[Link], DistMetadata],
        timeout: float,
    ) -> _Prepared:
        filename = ref.path.name if ref.path is not None else archive_name(ref.url)
        try:
            link = _archive_link(name, filename, ref.url)
        except InputError as exc:
            raise InputError(f"{parsed.source}: '{ref.text}': {exc}") from None
        given = set(parsed.hashes.get("sha256", ()))
        expected = self._expected_sha256(parsed, ref)
        source: HashSource
        if expected is None:
            sha256, source = "", "computed"
        else:
            sha256 = expected
            source = "url" if "sha256" in ref.hashes else "requirements"
        if ref.path is not None:
            actual = sha256_file(ref.path)
            if sha256 and actual != sha256:
                raise InputError(
                    f"{parsed.source}: '{ref.text}': hash mismatch: {ref.path} has sha256 "
                    f"{actual}, not {sha256}"
                )
            if given and actual not in given:
                raise InputError(
                    f"{parsed.source}: '{ref.text}': hash mismatch: {ref.path} has sha256 "
                    f"{actual}, not any of the requirement's --hash values"
                )
            sha256 = actual
            size: int | None = ref.path.stat().st_size
        else:
            size = None
            if not sha256:
                log.info("%s: no sha256 given; downloading %s to hash it", parsed.source, ref.url)
                sha256 = md.download_whole(
                    session, ref.url, sha256=None, cache=cache, timeout=timeout
                )
                self._check_given(parsed, ref, sha256)
        link = replace(link, hashes={"sha256": sha256}, size=size)
        metadata = fetch(link)
        path = None
        if ref.path is not None:
            path = relative_or_absolute(ref.path, self._plan_dir)
        return _Prepared(parsed, ref, link, metadata, source, path=path)

    def _archive_subdirectory(
        self,
        name: NormalizedName,
        parsed: ParsedRequirement,
        ref: DirectRef,
        *,
        session: requests.Session,
        sdists: SdistPlanner,
        scratch: Path,
        timeout: float,
    ) -> _Prepared:
        """An archive whose project lies in ``ref.subdirectory``: the archive hashed (and
        downloaded, for a URL), unpacked, and the project's tree prepared as a directory's;
        the plan's file stays the archive, built from that subdirectory at install."""
        from fetchplan.build.errors import BuildError
        from fetchplan.build.source import unpack_sdist

        assert ref.subdirectory is not None
        filename = ref.path.name if ref.path is not None else archive_name(ref.url)
        expected = self._expected_sha256(parsed, ref)
        if ref.path is not None:
            archive = ref.path
            sha256, size = sha256_file(archive), archive.stat().st_size
        else:
            archive, sha256, size = self._download(ref, expected, session, scratch, timeout)
        if expected is not None and sha256 != expected:
            raise InputError(
                f"{parsed.source}: '{ref.text}': hash mismatch: {filename} has sha256 "
                f"{sha256}, not {expected}"
            )
        self._check_given(parsed, ref, sha256)
        unpacked = Path(tempfile.mkdtemp(dir=scratch, prefix="unpacked-"))
        try:
            root = unpack_sdist(archive, filename, unpacked, ref.subdirectory)
        except BuildError as exc:
            raise InputError(f"{parsed.source}: '{ref.text}': {exc}") from None
        problem = directory_problem(root)
        if problem is not None:
            raise InputError(
                f"{parsed.source}: '{ref.text}': {filename}: {ref.subdirectory} {problem}"
            )
        metadata, facts = self._tree_metadata(name, parsed, ref, root, (), sdists, scratch)
        link = Link(
            filename=filename,
            url=ref.url,
            index=ref.url,
            name=name,
            version=metadata.version,
            kind="sdist",
            hashes={"sha256": sha256},
            size=size,
            requires_python=None
            if metadata.requires_python is None
            else str(metadata.requires_python),
        )
        metadata = replace(metadata, sha256=sha256, total_size=size)
        sdists.register(link, metadata, facts)
        source: HashSource = "computed"
        if expected is not None:
            source = "url" if "sha256" in ref.hashes else "requirements"
        path = None if ref.path is None else relative_or_absolute(ref.path, self._plan_dir)
        return _Prepared(parsed, ref, link, metadata, source, path=path)

    @staticmethod
    def _expected_sha256(parsed: ParsedRequirement, ref: DirectRef) -> str | None:
        """The sha256 the user stated: the URL's fragment, or a single ``--hash``."""
        given = set(parsed.hashes.get("sha256", ()))
        fragment = ref.hashes.get("sha256")
        if fragment is not None:
            if given and fragment not in given:
                raise InputError(
                    f"{parsed.source}: '{ref.text}': the URL's #sha256={fragment} is not among "
                    "the requirement's --hash values"
                )
            return fragment
        return next(iter(given)) if len(given) == 1 else None

    @staticmethod
    def _check_given(parsed: ParsedRequirement, ref: DirectRef, sha256: str) -> None:
        given = set(parsed.hashes.get("sha256", ()))
        if given and sha256 not in given:
            raise InputError(
                f"{parsed.source}: '{ref.text}': hash mismatch: the file has sha256 "
                f"{sha256}, not any of the requirement's --hash values"
            )

    @staticmethod
    def _download(
        ref: DirectRef,
        sha256: str | None,
        session: requests.Session,
        scratch: Path,
        timeout: float,
    ) -> tuple[Path, str, int]:
        """The archive at ``ref.url`` in a new directory of ``scratch``, with the sha256 and
        size it was hashed to while written."""
        from fetchplan.errors import NetworkError
        from fetchplan.planner.http import BodyTooLarge, download_file

        into = Path(tempfile.mkdtemp(dir=scratch, prefix="archive-"))
        log.info("downloading %s to read its subdirectory %s", ref.url, ref.subdirectory)
        try:
            with download_file(session, ref.url, into, sha256=sha256, timeout=timeout) as (
                path,
                hashed,
            ):
                final = into / archive_name(ref.url)
                os.replace(path, final)
        except BodyTooLarge as exc:
            raise NetworkError(str(exc)) from None
        return final, hashed.sha256, hashed.size

    def _tree_metadata(  # noqa: PLR0917 - each argument distinct
        self,
        name: NormalizedName,
        parsed: ParsedRequirement,
        ref: DirectRef,
        root: Path,
        exclude: tuple[str, ...],
        sdists: SdistPlanner,
        scratch: Path,
    ) -> tuple[DistMetadata, SdistFacts]:
        """The metadata of the project at ``root``, prepared from its source tree's archive
        (whose sha256 and size the metadata carries), and what building it needs."""
        trees = scratch / "trees"
        trees.mkdir(parents=True, exist_ok=True)
        fd, archive_name_ = tempfile.mkstemp(dir=trees, prefix=f"{name}-", suffix=".tar")
        archive = Path(archive_name_)
        with os.fdopen(fd, "wb") as out:
            sha256, size = write_tree_archive(root, out, exclude)
        raw, facts = sdists.prepare_tree(f"{name} ({ref.text})", archive, sha256, size)
        headers = email.parser.BytesHeaderParser().parsebytes(raw)
        project, version = str(headers.get("Name", "")), str(headers.get("Version", ""))
        if canonicalize_name(project) != name:
            raise InputError(
                f"{parsed.source}: '{ref.text}': the project there is {project or 'unnamed'}, "
                f"not {parsed.requirement.name}"
            )
        where = f"{name} ({ref.text})"
        meta = md.parse_metadata(raw, where=where, project=project, version=version)
        metadata = DistMetadata(
            name=name,
            version=meta.version,
            requires_dist=tuple(meta.requires_dist or ()),
            requires_python=meta.requires_python,
            provides_extra=frozenset(canonicalize_name(e) for e in meta.provides_extra or ()),
            source="local",
            total_size=size,
            sha256=sha256,
            json=md.metadata_json(raw),
        )
        return metadata, facts

    def _tree(  # noqa: PLR0917 - one call site, each argument distinct
        self,
        name: NormalizedName,
        parsed: ParsedRequirement,
        ref: DirectRef,
        root: Path,
        exclude: tuple[str, ...],
        sdists: SdistPlanner,
        scratch: Path,
        *,
        vcs: VcsInfo | None = None,
    ) -> _Prepared:
        metadata, facts = self._tree_metadata(name, parsed, ref, root, exclude, sdists, scratch)
        sha256, size = metadata.sha256, metadata.total_size
        assert sha256 is not None
        meta = metadata
        if vcs is not None:
            filename = f"{name}-{meta.version}-git-{vcs.commit_id[:12]}.src.tar"
            url = vcs.url
        else:
            filename = f"{name}-{meta.version}.src.tar"
            url = ref.url
        link = Link(
            filename=filename,
            url=url,
            index=url,
            name=name,
            version=meta.version,
            kind="vcs" if vcs is not None else "directory",
            hashes={"sha256": sha256},
            size=size,
            requires_python=None if meta.requires_python is None else str(meta.requires_python),
        )
        sdists.register(link, metadata, facts)
        return _Prepared(
            parsed,
            ref,
            link,
            metadata,
            "computed",
            path=relative_or_absolute(root, self._plan_dir),
            exclude=exclude,
            vcs=vcs,
        )

    # -- the plan ----------------------------------------------------------------------------

    def exempt_from_hashes(self) -> frozenset[NormalizedName]:
        """Projects whose direct reference fixes the file: no ``--hash`` is needed for them."""
        return frozenset(self._prepared)

    def finish_plan(self, plan: Plan) -> Plan:
        """``plan`` with its direct artifacts marked (see :meth:`finish`)."""
        return replace(plan, artifacts=self.finish(plan.artifacts))

    def finish(self, artifacts: Sequence[Artifact]) -> tuple[Artifact, ...]:
        """``artifacts`` with the direct ones marked (``direct``, ``path``, ``vcs``...)."""
        result = []
        for artifact in artifacts:
            prepared = self._by_url.get(artifact.url)
            if prepared is None or prepared.link.filename != artifact.filename:
                result.append(artifact)
                continue
            result.append(
                replace(
                    artifact,
                    direct=True,
                    editable=prepared.ref.editable,
                    path=prepared.path,
                    exclude=prepared.exclude,
                    vcs=prepared.vcs,
                    subdirectory=None if prepared.vcs is not None else prepared.ref.subdirectory,
                    hash_source=prepared.hash_source if artifact.sha256 else None,
                )
            )
        return tuple(result)


def _archive_link(name: NormalizedName, filename: str, url: str) -> Link:
    try:
        if filename.endswith(".whl"):
            project, version, build, tags = parse_wheel_filename(filename)
            kind = "wheel"
        else:
            project, version = parse_sdist_filename(filename)
            build, tags, kind = (), frozenset(), "sdist"
    except (ValueError, InvalidVersion) as exc:
        raise InputError(f"{filename}: not a valid wheel or sdist file name ({exc})") from None
    if canonicalize_name(str(project)) != name:
        raise InputError(f"{filename} is {project}, not {name}")
    return Link(
        filename=filename,
        url=url,
        index=url,
        name=name,
        version=Version(str(version)),
        kind="wheel" if kind == "wheel" else "sdist",
        tags=tags,
        build=build,
    )
