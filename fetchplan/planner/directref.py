"""Direct references in requirements: ``name @ URL``, archive paths, project directories, VCS.

What pip and uv accept besides ``name[extras] specifier``, parsed into a :class:`DirectRef`:

* ``name @ https://host/name-1.0-py3-none-any.whl`` (or an sdist), with an optional
  ``#sha256=...`` fragment: kind ``url``;
* ``name @ file:///abs/name-1.0.tar.gz`` or a plain path ``./dist/name-1.0-py3-none-any.whl``:
  kind ``file``;
* a directory: ``.``, ``./libs/foo``, ``name @ file:///abs/dir``, ``-e ./libs/foo``: kind
  ``directory`` (``editable`` with ``-e``);
* ``name @ git+file:///path/repo.git@v1.2`` or ``git+https://...#egg=name``: kind ``vcs``.

Relative paths are relative to the directory of the requirements file that names them (as uv
reads them), or to the working directory on the command line. A plain path or an unnamed URL
takes its project name from the file name (wheel or sdist), from a directory's
``pyproject.toml`` ``[project] name`` or ``setup.cfg`` ``[metadata] name``, or from a VCS URL's
``#egg=`` fragment. Parsing reads only those two small files, through the caller's reader.
"""

from __future__ import annotations

import configparser
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import SplitResult, parse_qs, quote, unquote, urlsplit, urlunsplit
from urllib.request import url2pathname

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)

from fetchplan._parse import load_toml
from fetchplan._urls import redact, split_credentials
from fetchplan.errors import FileFormatError, InputError
from fetchplan.schemas.plan import inner_path_problem

__all__ = [
    "ARCHIVE_SUFFIXES",
    "DirectKind",
    "DirectRef",
    "archive_name",
    "directory_problem",
    "is_named",
    "parse_direct",
    "path_to_url",
    "requirement_url",
    "same_file",
]

DirectKind = Literal["url", "file", "directory", "vcs"]

ARCHIVE_SUFFIXES = (".whl", ".tar.gz", ".zip")
"""Archives a direct reference may name: wheels and the sdists fetchplan reads."""

_VCS_SCHEMES = ("git+", "hg+", "svn+", "bzr+")
_STRONG = {"sha256": 64, "sha384": 96, "sha512": 128}
_HEX = re.compile(r"^[0-9a-fA-F]+$")
_EXTRAS = re.compile(r"^(?P<base>.*?)(?P<extras>\[[A-Za-z0-9._,\s-]*\])$")
_NAME_AT = re.compile(r"^\s*[A-Za-z0-9][A-Za-z0-9._-]*\s*(\[[^\]]*\])?\s*@")

Reader = Callable[[Path], str]


@dataclass(frozen=True, kw_only=True, slots=True)
class DirectRef:
    """One direct reference, with what the planner needs to find it."""

    kind: DirectKind
    url: str
    """The artifact's URL: the archive's (without fragment), ``file://`` for local paths, the
    repository's for VCS (without ``git+`` and revision)."""
    text: str
    """As written (credentials redacted), for messages."""
    path: Path | None = None
    """The local file or directory (absolute), for kinds ``file`` and ``directory``."""
    hashes: dict[str, str] = field(default_factory=dict)
    """Digests from the URL's fragment (``#sha256=...``)."""
    editable: bool = False
    revision: str | None = None
    """A VCS URL's ``@revision`` (tag, branch or commit), when given."""
    subdirectory: str | None = None


def is_named(text: str) -> bool:
    """Whether the direct reference ``text`` names its project (``name[extras] @ ...``)."""
    return _NAME_AT.match(text) is not None


def path_to_url(path: Path) -> str:
    """A ``file://`` URL of the absolute ``path`` (RFC 3986 characters, percent-encoded)."""
    return urlunsplit(("file", "", quote(path.as_posix(), safe="/~!$&'()*+,;=:@-._"), "", ""))


def archive_name(url: str) -> str:
    """The last path segment of ``url``, unquoted: the archive's file name."""
    return unquote(urlsplit(url).path.rsplit("/", 1)[-1])


def _fragment(
    fragment: str, where: str, text: str
) -> tuple[dict[str, str], str | None, str | None]:
    hashes: dict[str, str] = {}
    egg: str | None = None
    subdirectory: str | None = None
    for part in fragment.split("&"):
        key, sep, value = part.partition("=")
        if not sep:
            continue
        key = key.lower()
        if key in _STRONG:
            if len(value) != _STRONG[key] or _HEX.match(value) is None:
                raise InputError(f"{where}: '{text}': #{key}= must be {_STRONG[key]} hex digits")
            hashes[key] = value.lower()
        elif key == "egg":
            egg = value
        elif key == "subdirectory":
            subdirectory = unquote(value).rstrip("/") or value
            why = inner_path_problem(subdirectory)
            if why is not None:
                raise InputError(f"{where}: '{text}': #subdirectory={value}: {why}")
    return hashes, egg, subdirectory


def _split_extras(text: str) -> tuple[str, str]:
    match = _EXTRAS.match(text)
    if match is None:
        return text, ""
    return match["base"], match["extras"]


def _static_name(directory: Path, reader: Reader) -> str | None:
    """The project name a directory states statically, or None."""
    try:
        text = reader(directory / "pyproject.toml")
    except OSError:
        text = None
    if text is not None:
        try:
            document = load_toml(text, str(directory / "pyproject.toml"))
        except FileFormatError:
            document = {}
        project = document.get("project")
        if isinstance(project, dict) and isinstance(project.get("name"), str):
            return str(project["name"])
    try:
        cfg = reader(directory / "setup.cfg")
    except OSError:
        return None
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(cfg)
    except configparser.Error:
        return None
    name = parser.get("metadata", "name", fallback=None)
    return name.strip() if name and name.strip() else None


def directory_problem(directory: Path) -> str | None:
    """Why ``directory`` is not a Python project (no ``pyproject.toml`` nor ``setup.py``)."""
    if not (directory / "pyproject.toml").is_file() and not (directory / "setup.py").is_file():
        return "has neither pyproject.toml nor setup.py (it is not a Python project)"
    return None


def _local(
    path: Path,
    where: str,
    text: str,
    *,
    editable: bool,
    hashes: dict[str, str],
    subdirectory: str | None = None,
) -> DirectRef:
    if not path.exists():
        raise InputError(f"{where}: '{text}': no such file or directory")
    if path.is_dir():
        project = path if subdirectory is None else path.joinpath(*subdirectory.split("/"))
        if subdirectory is not None and not project.is_dir():
            raise InputError(f"{where}: '{text}': {path} has no directory {subdirectory}")
        problem = directory_problem(project)
        if problem is not None:
            raise InputError(f"{where}: '{text}': the directory {problem}")
        return DirectRef(
            kind="directory",
            url=path_to_url(path),
            text=text,
            path=path,
            editable=editable,
            subdirectory=subdirectory,
        )
    if editable:
        raise InputError(f"{where}: '{text}': an editable requirement must be a directory")
    _check_archive_name(path.name, where, text, subdirectory)
    return DirectRef(
        kind="file",
        url=path_to_url(path),
        text=text,
        path=path,
        hashes=hashes,
        subdirectory=subdirectory,
    )


def _check_archive_name(filename: str, where: str, text: str, subdirectory: str | None) -> None:
    """Refuse a file that is no wheel or sdist, and a wheel with ``#subdirectory=``."""
    if not filename.endswith(ARCHIVE_SUFFIXES):
        raise InputError(
            f"{where}: '{text}': {filename or 'the URL'} is not a wheel or an sdist "
            "(.whl, .tar.gz, .zip)"
        )
    if subdirectory is not None and filename.endswith(".whl"):
        raise InputError(
            f"{where}: '{text}': #subdirectory= names a project inside a source archive; "
            f"{filename} is a wheel"
        )


def _name_from_archive(filename: str) -> str | None:
    try:
        if filename.endswith(".whl"):
            return str(parse_wheel_filename(filename)[0])
        return str(parse_sdist_filename(filename)[0])
    except (InvalidWheelFilename, InvalidSdistFilename):
        return None


def _reference(
    location: str, where: str, base_dir: Path, *, editable: bool, reader: Reader
) -> tuple[DirectRef, str | None]:
    """The reference ``location`` names and the name it implies (None when it implies none)."""
    shown = redact(location)
    lower = location.lower()
    if lower.startswith(_VCS_SCHEMES):
        return _vcs_reference(location, where, shown, editable=editable)
    if "://" in location or lower.startswith("file:"):
        return _url_reference(location, where, shown, editable=editable, reader=reader)
    path = Path(os.path.normpath(base_dir / Path(location).expanduser()))
    ref = _local(path, where, shown, editable=editable, hashes={})
    if ref.kind == "file":
        return ref, _name_from_archive(path.name)
    return ref, _static_name(path, reader)


def _vcs_reference(
    location: str, where: str, shown: str, *, editable: bool
) -> tuple[DirectRef, str | None]:
    """The reference of a ``git+`` URL and its ``#egg=`` name; other VCSs are refused."""
    if not location.lower().startswith("git+"):
        raise InputError(f"{where}: '{shown}': only git is supported among VCS URLs")
    if editable:
        raise InputError(f"{where}: '{shown}': editable VCS requirements are not supported")
    bare = location[4:]
    clean, credentials = split_credentials(bare)
    if credentials is not None:
        raise InputError(f"{where}: '{shown}': credentials in a VCS URL are not supported")
    parts = urlsplit(clean)
    if parts.scheme not in ("file", "https", "http"):
        raise InputError(f"{where}: '{shown}': git over {parts.scheme}:// is not supported")
    _hashes, egg, subdirectory = _fragment(parts.fragment, where, shown)
    repo_path, at, revision = parts.path.rpartition("@")
    if not at or "/" in revision:
        repo_path, revision = parts.path, ""
    url = urlunsplit((parts.scheme, parts.netloc, repo_path, "", ""))
    ref = DirectRef(
        kind="vcs",
        url=url,
        text=shown,
        revision=revision or None,
        subdirectory=subdirectory,
    )
    return ref, egg


def _url_reference(
    location: str, where: str, shown: str, *, editable: bool, reader: Reader
) -> tuple[DirectRef, str | None]:
    """The reference of a ``file:`` or http(s) URL and the name it implies."""
    parts = urlsplit(location)
    hashes, egg, subdirectory = _fragment(parts.fragment, where, shown)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise InputError(f"{where}: '{shown}': a file:// URL must name a local path")
        path = Path(os.path.normpath(url2pathname(parts.path)))
        ref = _local(
            path, where, shown, editable=editable, hashes=hashes, subdirectory=subdirectory
        )
        if egg is not None:
            return ref, egg
        if ref.kind == "directory":
            project = path if subdirectory is None else path.joinpath(*subdirectory.split("/"))
            return ref, _static_name(project, reader)
        # The archive's name is not the project's when the project lies inside it.
        return ref, (_name_from_archive(path.name) if subdirectory is None else None)
    if parts.scheme not in ("http", "https"):
        raise InputError(f"{where}: '{shown}': unsupported URL scheme {parts.scheme!r}")
    if editable:
        raise InputError(f"{where}: '{shown}': an editable requirement must be a directory")
    ref = _http_reference(location, parts, where, shown, hashes, subdirectory)
    if egg is not None or subdirectory is not None:
        return ref, egg
    return ref, _name_from_archive(archive_name(ref.url))


def _http_reference(  # noqa: PLR0917 - one call site
    location: str,
    parts: SplitResult,
    where: str,
    shown: str,
    hashes: dict[str, str],
    subdirectory: str | None,
) -> DirectRef:
    """The reference of an http(s) archive URL: no credentials, a wheel or sdist name."""
    _clean, credentials = split_credentials(location)
    if credentials is not None:
        raise InputError(
            f"{where}: '{shown}': credentials in a direct URL are not supported "
            "(use ~/.netrc or keyring)"
        )
    url = urlunsplit((parts.scheme, parts.netloc, parts.path, parts.query, ""))
    _check_archive_name(archive_name(url), where, shown, subdirectory)
    return DirectRef(kind="url", url=url, text=shown, hashes=hashes, subdirectory=subdirectory)


def same_file(a: DirectRef, b: DirectRef) -> bool:
    """Whether ``a`` and ``b`` name one file, as pip compares two links (``links_equivalent``):
    the URL with its query's order ignored (an archive's URL holds no credentials and no
    fragment; a local path's URL is normalised), the VCS revision, ``#subdirectory=`` and
    the fragment's hashes. A URL with ``#sha256=`` and the same URL without it are two
    links to pip: its resolver refuses the pair, and so does the planner."""
    return _compared(a) == _compared(b)


def _compared(
    ref: DirectRef,
) -> tuple[SplitResult, dict[str, list[str]], str | None, str | None, dict[str, str]]:
    parts = urlsplit(ref.url)
    netloc = parts.netloc if parts.scheme != "file" else parts.netloc or "localhost"
    clean = parts._replace(netloc=netloc, query="", fragment="")
    return clean, parse_qs(parts.query), ref.revision, ref.subdirectory, ref.hashes


def requirement_url(ref: DirectRef) -> str:
    """The URL a PEP 508 requirement writes for ``ref`` (``git+URL@rev`` for VCS)."""
    if ref.kind != "vcs":
        return ref.url + (f"#subdirectory={ref.subdirectory}" if ref.subdirectory else "")
    url = f"git+{ref.url}" + (f"@{ref.revision}" if ref.revision else "")
    return url + (f"#subdirectory={ref.subdirectory}" if ref.subdirectory else "")


def _requirement(name: str, extras: str, ref: DirectRef, marker: str | None) -> Requirement:
    text = f"{name}{extras} @ {requirement_url(ref)}"
    if marker:
        text += f" ; {marker}"
    return Requirement(text)


def parse_direct(
    text: str,
    where: str,
    base_dir: Path,
    *,
    editable: bool = False,
    reader: Reader,
) -> tuple[Requirement, DirectRef]:
    """The requirement and direct reference of ``text`` (``name @ URL``, a path or a URL).

    ``where`` is ``file:line`` for messages; relative paths join ``base_dir``. Raises
    :class:`InputError` naming ``where`` for a malformed or unusable reference: a path that
    does not exist, a directory without ``pyproject.toml`` or ``setup.py``, a file that is not
    a wheel or sdist, a scheme other than http(s), file and git, or a name it cannot tell.
    """
    stripped = text.strip()
    shown = redact(stripped)
    if _NAME_AT.match(stripped) and not editable:
        try:
            req = Requirement(stripped)
        except InvalidRequirement as exc:
            reason = str(exc).splitlines()[0] if str(exc) else "invalid"
            raise InputError(f"{where}: malformed requirement '{shown}': {reason}") from None
        assert req.url is not None
        ref, implied = _reference(req.url, where, base_dir, editable=False, reader=reader)
        if implied is not None and canonicalize_name(implied) != canonicalize_name(req.name):
            raise InputError(f"{where}: '{shown}': the reference is {implied}, not {req.name}")
        extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
        marker = str(req.marker) if req.marker is not None else None
        return _requirement(req.name, extras, ref, marker), ref
    location, _sep, marker_text = stripped.partition(";")
    if _sep and not location.endswith(" ") and "://" in location:
        # A ';' inside a URL is part of it; pip needs white space before a marker there.
        location, marker_text = stripped, ""
    location = location.strip()
    location, extras = _split_extras(location)
    ref, name = _reference(location, where, base_dir, editable=editable, reader=reader)
    if name is None:
        hint = "name @ " + requirement_url(ref)
        raise InputError(
            f"{where}: '{shown}': cannot tell the project's name without building it; "
            f"write it as '{redact(hint)}'" + (" or add #egg=name" if ref.kind == "vcs" else "")
        )
    marker = marker_text.strip() or None
    try:
        return _requirement(name, extras.replace(" ", ""), ref, marker), ref
    except InvalidRequirement as exc:
        reason = str(exc).splitlines()[0] if str(exc) else "invalid"
        raise InputError(f"{where}: malformed requirement '{shown}': {reason}") from None
