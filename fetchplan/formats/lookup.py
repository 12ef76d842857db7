"""Find a hashed requirements file's pinned files by hash on the configured indexes.

:class:`IndexLookup` is the :data:`~fetchplan.formats.requirements.FileLookup` that
``fetchplan import`` passes for a plain hashed requirements file (``pip-compile`` output, no
fetchplan notes). It reads each pinned project's page on the indexes, then the find-links
locations, that the planner would use (:func:`fetchplan.planner.access.open_indexes`: command
line, the file's own ``--index-url`` lines, pip's configuration, pip's default index), and
takes the pinned version's files whose hash is one of the pin's from the first location that
has any. Nothing is resolved: the pins are the plan.

Of a pin's files, the one the target installs is kept: the best-ranked compatible wheel, else
the sdist; a file whose ``requires-python`` excludes the target's Python does not count. Its
size comes from the index (PEP 700), else from a HEAD request; a local find-links file is
hashed and measured on disk. Pins are looked up in parallel.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from types import TracebackType

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from fetchplan._fs import sha256_file
from fetchplan._urls import redact
from fetchplan.formats._common import compatible, select_for_target
from fetchplan.formats.requirements import Found, Pin
from fetchplan.planner import metadata as md
from fetchplan.planner.access import IndexAccess, open_indexes
from fetchplan.planner.api import PlanOptions
from fetchplan.planner.index import IndexSource, Link, file_url_path
from fetchplan.schemas.plan import Artifact, HashSource, Target

__all__ = ["IndexLookup"]

log = logging.getLogger(__name__)


class IndexLookup:
    """Finds pinned files by hash on the locations :func:`open_indexes` gives for ``options``.

    Callable as a ``FileLookup``. The HTTP session is opened on the first call (so pip is
    asked for its default index only when a pin needs looking up) and closed by
    :meth:`close`, or at the end of a ``with`` block. ``options.jobs`` bounds the parallel
    lookups, ``options.timeout`` each request.
    """

    def __init__(self, options: PlanOptions) -> None:
        self._options = options
        self._access: IndexAccess | None = None

    def __enter__(self) -> IndexLookup:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the session, if one was opened."""
        if self._access is not None:
            self._access.close()
            self._access = None

    def __call__(self, pins: Sequence[Pin], target: Target) -> list[Found]:
        """One :class:`Found` per pin, in order: the target's file, or why there is none.

        Raises the index client's errors (an index that does not answer, a malformed page).
        """
        if not pins:
            return []
        if self._access is None:
            self._access = open_indexes(self._options)
        search = _Search(self._access, target, self._options.timeout)
        workers = max(1, min(self._options.jobs, len(pins)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lookup") as pool:
            futures = [pool.submit(search.find, pin) for pin in pins]
            try:
                return [future.result() for future in futures]
            finally:
                for future in futures:
                    future.cancel()


@dataclass(frozen=True, slots=True)
class _Search:
    access: IndexAccess
    target: Target
    timeout: float

    def find(self, pin: Pin) -> Found:
        what = f"{pin.name}=={pin.version}"
        sources = [*self.access.indexes, *self.access.find_links]
        if not sources:
            return Found(problem=f"{what}: no index or find-links location to look in")
        listed = unhashed = insecure = 0
        unfit: list[str] = []
        for source in sources:
            matches: list[Artifact] = []
            for link in self._links(source, pin):
                if not _same_version(link, pin):
                    continue
                listed += 1
                hashes, hash_source = _hashes(link)
                if not hashes:
                    unhashed += 1
                elif pin.allows(hashes):
                    if self.access.url_ok(link.url):
                        matches.append(_artifact(link, pin, hashes, hash_source))
                    else:
                        insecure += 1
            if not matches:
                continue
            fitting = [a for a in matches if compatible(a, self.target) and self._python_ok(a)]
            if not fitting:
                unfit.extend(a.filename for a in matches)
                continue
            chosen = select_for_target(fitting, self.target)[0]
            log.debug("%s: %s on %s", what, chosen.filename, redact(source.url))
            return Found(files=(replace(chosen, size=self._size(chosen)),))
        if unfit:
            return Found(
                problem=f"{what}: no file with one of its hashes fits target "
                f"{self.target.name!r} ({', '.join(sorted(unfit))})"
            )
        detail = [f"{listed} file(s) of that version listed"]
        if unhashed:
            detail.append(f"{unhashed} with no hash on the index")
        if insecure:
            detail.append(f"{insecure} on plain http from an untrusted host")
        where = ", ".join(redact(s.url) for s in sources)
        return Found(
            problem=f"{what}: no file on {where} has one of its hashes ({'; '.join(detail)})"
        )

    def _links(self, source: IndexSource, pin: Pin) -> list[Link]:
        """The files of the pinned version only: the page's other files are never read."""
        name = canonicalize_name(pin.name)
        try:
            version = Version(pin.version)
        except InvalidVersion:
            return []  # no file names such a version
        if source.kind == "find-links":
            return list(self.access.client.find_links(source, name).links_for(version))
        page = self.access.client.project_page(source, name)
        return [] if page is None else list(page.links_for(version))

    def _python_ok(self, artifact: Artifact) -> bool:
        markers = self.target.markers
        python = markers.get("python_full_version") or markers.get("python_version")
        if artifact.requires_python is None or python is None:
            return True
        try:
            return SpecifierSet(artifact.requires_python).contains(python, prereleases=True)
        except (InvalidSpecifier, InvalidVersion):
            return True  # unparseable: pip ignores it too

    def _size(self, artifact: Artifact) -> int | None:
        if artifact.size is not None:
            return artifact.size
        if artifact.url.startswith("file:"):
            try:
                return file_url_path(artifact.url).stat().st_size
            except OSError:
                return None
        return md.head_size(self.access.session, artifact.url, self.timeout)


def _same_version(link: Link, pin: Pin) -> bool:
    try:
        return link.version == Version(pin.version)
    except InvalidVersion:
        return str(link.version) == pin.version


def _hashes(link: Link) -> tuple[dict[str, str], HashSource | None]:
    if link.hashes:
        return dict(link.hashes), "index"
    if link.is_local:
        # A find-links directory lists no hashes; hashing a local file costs no download.
        path = file_url_path(link.url)
        if path.is_file():
            return {"sha256": sha256_file(path)}, "computed"
    return {}, None


def _artifact(link: Link, pin: Pin, hashes: dict[str, str], source: HashSource | None) -> Artifact:
    return Artifact(
        name=canonicalize_name(pin.name),
        version=pin.version,
        kind=link.kind,
        filename=link.filename,
        url=link.url,
        index=link.index,
        hashes=dict(sorted(hashes.items())),
        hash_source=source,
        size=link.size,
        requires_python=link.requires_python,
        yanked=link.yanked,
        yanked_reason=link.yanked_reason,
        upload_time=link.upload_time,
        provenance=link.provenance,
        requested=True,
        extras=pin.extras,
        destination=link.filename,
    )
