"""The locations a plan reads: :func:`find_sources` reads pip's configuration
(:func:`pip_settings`), merges every layer (:func:`.settings.settings`) and checks the result
(:func:`locate`, which turns the URLs and paths of :class:`~.settings.PlanSettings` into
:class:`~.sources.IndexSource` values). ``make_plan`` and the commands that only read indexes
(:func:`.access.open_indexes`) both go through it.

Each location is normalised (a path becomes a ``file://`` URL, an index URL ends in ``/``),
duplicates are dropped, and what no request could use is refused with an :class:`InputError`
naming it: a URL that does not parse, an unknown scheme, an index directory that does not
exist, plain http to a host neither loopback nor trusted, and, offline, anything remote. This
looks at the file system (relative paths, index directories); the merging of the settings
themselves is the pure :func:`.settings.settings`. Light, like :mod:`.sources`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

from fetchplan._urls import is_secure_or_trusted, parses, redact
from fetchplan.errors import InputError
from fetchplan.pipconfig import PipSettings, pip_default_index, read_pip_settings
from fetchplan.planner import reqfile
from fetchplan.planner.options import PlanOptions
from fetchplan.planner.settings import PlanSettings, settings
from fetchplan.planner.sources import IndexSource, SourceKind, source_for

__all__ = [
    "Sources",
    "checked_source",
    "find_sources",
    "locate",
    "pip_settings",
    "source_problem",
]


@dataclass(frozen=True, slots=True)
class Sources:
    """The locations a plan reads, and the settings they come from."""

    settings: PlanSettings
    indexes: tuple[IndexSource, ...]
    find_links: tuple[IndexSource, ...]

    @property
    def trusted_hosts(self) -> tuple[str, ...]:
        return self.settings.trusted_hosts

    @property
    def no_index(self) -> bool:
        return self.settings.no_index

    @property
    def raw_urls(self) -> tuple[str, ...]:
        """As given, credentials included: for the credential store only."""
        return (*self.settings.index_urls, *self.settings.find_links)


def pip_settings(options: PlanOptions) -> PipSettings:
    """pip's settings for ``options``: given ones, none when isolated, else pip's own."""
    if options.pip_settings is not None:
        return options.pip_settings
    if options.isolated:
        return PipSettings()
    return read_pip_settings()


def find_sources(
    options: PlanOptions, file_options: reqfile.RequirementOptions, pip: PipSettings | None = None
) -> Sources:
    """The indexes, find-links locations and trusted hosts for ``options``, ``file_options``
    (the requirements files' options) and ``pip`` (read when None): :func:`.settings.settings`
    by pip's precedence, asking pip's default index only if needed, then checked by
    :func:`locate`."""
    if pip is None:
        pip = pip_settings(options)
    merged = settings(options, file_options, pip, default_index=pip_default_index)
    return locate(merged, offline=options.offline)


def locate(plan_settings: PlanSettings, *, offline: bool = False) -> Sources:
    """The checked locations of ``plan_settings``, indexes first (see the module docstring);
    ``offline`` refuses every location but ``file://`` ones. An error names where the value
    was given (:meth:`.settings.PlanSettings.origin`) when the settings know it."""
    where = plan_settings.origin
    given = _unique_sources(plan_settings.index_urls, "index", where)
    indexes = tuple(given)
    given.update(_unique_sources(plan_settings.find_links, "find-links", where))
    flat = tuple(given)[len(indexes) :]
    if offline:
        remote = [s for s in (*indexes, *flat) if not s.url.startswith("file:")]
        if remote:
            raise InputError(
                f"{_named(where(given.get(remote[0], '')))}--offline: {redact(remote[0].url)} "
                "needs the network; use file:// indexes and find-links directories only"
            )
    trusted = frozenset(plan_settings.trusted_hosts)
    for source in (*indexes, *flat):
        if not is_secure_or_trusted(source.url, trusted):
            raise InputError(
                f"{_named(where(given.get(source, '')))}{redact(source.url)}: plain http:// is "
                "accepted only for loopback hosts and hosts given with --trusted-host"
            )
    _check_tls_files(plan_settings)
    return Sources(settings=plan_settings, indexes=indexes, find_links=flat)


def _named(origin: str | None) -> str:
    return "" if origin is None else f"{origin}: "


def _check_tls_files(plan_settings: PlanSettings) -> None:
    """pip's ``cert`` and ``client-cert`` name files that exist (requests would otherwise
    refuse them at the first https request, naming neither the setting nor its source)."""
    for key, path in (("cert", plan_settings.cert), ("client-cert", plan_settings.client_cert)):
        if path is not None and not Path(path).exists():
            origin = plan_settings.origin(path) or f"pip's configuration: {key}"
            raise InputError(f"{origin}: {path!r}: no such file (a {key} PEM file is expected)")


def _unique_sources(
    urls: Iterable[str], kind: SourceKind, where: Callable[[str], str | None]
) -> dict[IndexSource, str]:
    """Each checked source of ``urls`` once, in order, with the value it was first given as."""
    seen: dict[IndexSource, str] = {}
    for url in urls:
        seen.setdefault(checked_source(url, kind, where(url)), url)
    return seen


def checked_source(given: str, kind: SourceKind, origin: str | None = None) -> IndexSource:
    """:func:`source_for` ``given``, refusing what no request could use (:func:`source_problem`)
    with an :class:`InputError` naming ``origin`` (where the value was given: an option, a
    file's line, a variable) when known, else the kind, and the location."""
    problem = source_problem(given, kind)
    if problem is not None:
        named = kind if origin is None else f"{origin}:"
        raise InputError(f"{named} {redact(given)!r}: {problem}")
    return source_for(given, kind)


def source_problem(given: str, kind: SourceKind) -> str | None:
    """Why no request could use the index or find-links location ``given``, or None: a URL
    whose host or port does not parse, an http(s) URL without a host, a scheme other than
    http(s) and file, and a local directory (an index) or file or directory (find-links) that
    does not exist (pip and uv would find nothing there; the error would then blame the first
    requirement). The command line checks its options with it (naming the option)."""
    if not parses(given):
        return "not a usable URL (its host or port does not parse)"
    source = source_for(given, kind)
    parts = urlsplit(source.url)
    if parts.scheme not in ("http", "https", "file"):
        return f"unsupported URL scheme {parts.scheme!r}; give an http(s) URL or a local directory"
    if parts.scheme != "file":
        return None if parts.hostname else "not a usable URL (it names no host)"
    path = Path(url2pathname(parts.path))
    if kind == "index" and not path.is_dir():
        if "://" in given:
            return f"no such directory {path}"
        return (
            "neither a URL nor an existing directory; an index is an http(s) URL or a local "
            "directory"
        )
    if kind == "find-links" and not (path.is_dir() or path.is_file()):
        what = "neither a URL nor" if "://" not in given else "not"
        return f"{what} an existing file or directory ({path})"
    return None
