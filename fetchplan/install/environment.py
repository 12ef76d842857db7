"""The environment's side: which distributions are installed, removing one, checking where
staged files will go.

Removal follows the installed distribution's RECORD but never touches a path outside the
environment's prefix, however the RECORD names it (``..``, absolute paths, symlinked
directories). :func:`check_destinations` refuses any destination whose existing directories
lead outside the prefix; the files themselves are moved in by
:mod:`fetchplan.install.transaction`.
"""

from __future__ import annotations

import csv
import logging
import os
import shutil
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path

from packaging.utils import NormalizedName, canonicalize_name

from fetchplan.install.errors import InstallError
from fetchplan.install.interpreter import TargetInterpreter
from fetchplan.install.staging import StagedWheel

__all__ = [
    "InstalledDist",
    "check_destinations",
    "installed_distributions",
    "is_inside",
    "prune",
    "real_inside",
    "record_files",
    "uninstall",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class InstalledDist:
    """A distribution installed in the target, found by its ``.dist-info`` directory."""

    name: NormalizedName
    version: str
    dist_info: Path


def is_inside(path: str | Path, root: str | Path) -> bool:
    """Whether ``path`` is ``root`` or below it, comparing absolute, normalised paths."""
    path, root = os.path.abspath(path), os.path.abspath(root)  # noqa: PTH100
    return os.path.commonpath([path, root]) == root


def _read_dist(dist_info: Path) -> InstalledDist | None:
    try:
        text = (dist_info / "METADATA").read_text("utf-8", errors="replace")
    except OSError:
        return None
    metadata = HeaderParser().parsestr(text)
    name, version = metadata.get("Name"), metadata.get("Version")
    if name is None or version is None:
        return None
    return InstalledDist(canonicalize_name(name), version, dist_info)


def installed_distributions(target: TargetInterpreter) -> dict[NormalizedName, list[InstalledDist]]:
    """Distributions in the target's purelib and platlib, by normalised name."""
    found: dict[NormalizedName, list[InstalledDist]] = {}
    for site in target.site_dirs():
        if not site.is_dir():
            continue
        for entry in sorted(site.iterdir()):
            if entry.name.endswith(".dist-info") and entry.is_dir():
                dist = _read_dist(entry)
                if dist is not None:
                    found.setdefault(dist.name, []).append(dist)
    return found


def real_inside(path: Path, root_real: str) -> bool:
    """Whether ``path`` lies under ``root_real`` once its directories' symlinks are resolved."""
    parent = os.path.realpath(path.parent)
    return is_inside(parent, root_real) and path.name not in ("", ".", "..")


def _remove_file(path: Path) -> bool:
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    except IsADirectoryError:
        log.warning("%s: listed in RECORD but a directory; left alone", path)
        return False
    return True


def record_files(dist: InstalledDist, target: TargetInterpreter) -> tuple[list[Path], set[Path]]:
    """The files of ``dist`` to remove, outside its ``.dist-info``, and their directories.

    The files are those its RECORD lists that exist inside the target prefix, and each listed
    module's bytecode; a path RECORD names outside the prefix is left alone (logged). Raises
    :class:`InstallError` when the distribution has no RECORD.
    """
    prefix_real = os.path.realpath(target.prefix)
    record = dist.dist_info / "RECORD"
    try:
        text = record.read_text("utf-8")
    except OSError as exc:
        raise InstallError(
            f"{record}: cannot uninstall {dist.name} {dist.version}: {exc.strerror or exc}"
        ) from exc
    base = str(dist.dist_info.parent)
    own = os.path.join(str(dist.dist_info), "")  # noqa: PTH118
    files: list[Path] = []
    seen: set[str] = set()
    touched: set[Path] = set()
    # Thousands of rows share a few hundred directories: each is resolved and listed once.
    inside: dict[str, bool] = {}
    caches: dict[str, list[str]] = {}
    for row in csv.reader(text.splitlines()):
        if not row or not row[0]:
            continue
        path = os.path.normpath(os.path.join(base, row[0]))  # noqa: PTH118
        parent, name = os.path.split(path)
        ok = inside.get(parent)
        if ok is None:
            ok = inside[parent] = is_inside(os.path.realpath(parent), prefix_real)
        if not ok or name in ("", ".", ".."):
            log.warning("%s: lists %s outside the environment; left alone", record, row[0])
            continue
        if path.startswith(own):
            continue  # goes with the .dist-info directory
        candidates = [path]
        if name.endswith(".py"):
            cache = os.path.join(parent, "__pycache__")  # noqa: PTH118
            entries = caches.get(cache)
            if entries is None:
                try:
                    entries = caches[cache] = os.listdir(cache)  # noqa: PTH208
                except OSError:
                    entries = caches[cache] = []
                else:
                    touched.add(Path(cache))
            stem = name[:-3] + "."
            candidates.extend(
                os.path.join(cache, e)  # noqa: PTH118
                for e in entries
                if e.startswith(stem) and e.endswith(".pyc")
            )
        touched.add(Path(parent))
        for candidate in candidates:
            if candidate not in seen and _is_file_or_link(Path(candidate)):
                seen.add(candidate)
                files.append(Path(candidate))
    return files, touched


def _is_file_or_link(path: Path) -> bool:
    try:
        return not stat.S_ISDIR(path.lstat().st_mode)
    except OSError:
        return False


def uninstall(dist: InstalledDist, target: TargetInterpreter) -> int:
    """Remove the files ``dist``'s RECORD lists inside the target prefix; return how many.

    Also removes each listed module's bytecode, the ``.dist-info`` directory and directories
    left empty. Raises :class:`InstallError` when the distribution has no RECORD. Not
    journaled: :class:`fetchplan.install.transaction.Transaction` removes distributions as
    part of an install.
    """
    files, touched = record_files(dist, target)
    removed = sum(_remove_file(path) for path in files)
    if real_inside(dist.dist_info, os.path.realpath(target.prefix)):
        shutil.rmtree(dist.dist_info, ignore_errors=True)
    prune(touched, target)
    log.info("removed %s %s (%d files)", dist.name, dist.version, removed)
    return removed


def prune(directories: Iterable[Path], target: TargetInterpreter) -> None:
    """Remove directories left empty, up to (not including) the scheme directories."""
    keep = {Path(os.path.abspath(p)) for p in target.paths.values()}  # noqa: PTH100
    keep.add(Path(os.path.abspath(target.prefix)))  # noqa: PTH100
    for directory in sorted(directories, key=lambda p: len(p.parts), reverse=True):
        current = directory
        while current not in keep and is_inside(current, target.prefix):
            try:
                current.rmdir()
            except OSError:
                break
            current = current.parent


def check_destinations(staged: Iterable[StagedWheel], target: TargetInterpreter) -> None:
    """Refuse, before anything moves, a destination whose existing directories lead outside
    the prefix (a symlinked package directory) or that is a directory."""
    prefix_real = os.path.realpath(target.prefix)
    real_roots: dict[str, str] = {}
    # Thousands of files share a few hundred directories, and nothing moves while we check:
    # each directory is looked at (one stat; realpath, a stat per component, only for those
    # that exist) and judged once.
    nearest: dict[str, tuple[str, bool]] = {}

    def real_dir(directory: str) -> tuple[str, bool]:
        """The real path of ``directory`` (or of its nearest existing ancestor), and whether
        it exists itself."""
        found = nearest.get(directory)
        if found is None:
            parent = os.path.dirname(directory)  # noqa: PTH120
            if os.path.exists(directory) or parent == directory:  # noqa: PTH110
                found = (os.path.realpath(directory), True)
            else:
                found = (real_dir(parent)[0], False)
            nearest[directory] = found
        return found

    checked: dict[tuple[str, str], bool] = {}
    for wheel in staged:
        for item in wheel.files:
            directory = os.path.dirname(item.final)  # noqa: PTH120
            parent_exists = checked.get((directory, item.root))
            if parent_exists is None:
                real, parent_exists = real_dir(directory)
                root_real = real_roots.get(item.root)
                if root_real is None:
                    root_real = real_roots[item.root] = os.path.realpath(item.root)
                if not (is_inside(real, prefix_real) or is_inside(real, root_real)):
                    raise InstallError(
                        f"{item.final}: its directory leads outside the environment ({real})"
                    )
                checked[(directory, item.root)] = parent_exists
            # In a directory that does not exist yet, nothing is in the way.
            if parent_exists and _is_real_dir(item.final):
                raise InstallError(f"{item.final}: is a directory; cannot install a file there")


def _is_real_dir(path: str) -> bool:
    """Whether ``path`` is a directory itself (not a symlink to one)."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False
