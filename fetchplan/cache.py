"""The content-addressed artifact cache shared by planner and executor, across runs and plans.

Layout: ``<root>/sha256/<aa>/<bb>/<full hex digest>``, one file per content. A file enters only
through :meth:`ArtifactCache.add`, which hashes it while copying into a temporary file beside
its final place and renames it in only when the digest matches, so every cache entry is a
verified file. Readers still re-verify what they take out (a disk can rot, a user can edit).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from pathlib import Path

import platformdirs

from fetchplan._fs import CHUNK_SIZE, fsync_dir, make_temp
from fetchplan.errors import HashMismatch

__all__ = ["ArtifactCache", "default_cache_dir"]

log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    """The user's cache directory for fetchplan (``$XDG_CACHE_HOME/fetchplan`` on Linux)."""
    return Path(platformdirs.user_cache_dir("fetchplan", appauthor=False))


class ArtifactCache:
    """sha256 -> file. Safe for several threads and processes: entries appear by rename."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, sha256: str) -> Path:
        return self.root / "sha256" / sha256[:2] / sha256[2:4] / sha256

    def get(self, sha256: str) -> Path | None:
        """The cached file for ``sha256`` if present (not re-hashed: callers verify on use)."""
        path = self.path_for(sha256)
        return path if path.is_file() else None

    def add(self, source: Path, sha256: str) -> Path:
        """Copy ``source`` into the cache under ``sha256``, verifying it on the way in.

        Raises :class:`HashMismatch` (and adds nothing) when the content differs.
        """
        final = self.path_for(sha256)
        if final.is_file():
            return final
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = make_temp(final.parent, prefix=".add.")
        try:
            digest = hashlib.sha256()
            with os.fdopen(fd, "wb") as out, source.open("rb") as src:
                while chunk := src.read(CHUNK_SIZE):
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            actual = digest.hexdigest()
            if actual != sha256:
                raise HashMismatch(str(source), "sha256", sha256, actual)
            os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        fsync_dir(final.parent)
        log.debug("cached %s as %s", source.name, sha256)
        return final

    def staging_file(self, prefix: str) -> tuple[int, Path]:
        """A new temporary file inside the cache, for :meth:`adopt` once it is written."""
        self.root.mkdir(parents=True, exist_ok=True)
        return make_temp(self.root, prefix=prefix, suffix=".part")

    def adopt(self, staged: Path, sha256: str) -> Path:
        """Rename ``staged`` (from :meth:`staging_file`) into the cache under ``sha256``.

        The caller hashed the bytes as it wrote them and passes that digest: no second copy or
        hash. If the entry exists already, ``staged`` is removed and the entry kept.
        """
        final = self.path_for(sha256)
        if final.is_file():
            staged.unlink(missing_ok=True)
            return final
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged, final)
        fsync_dir(final.parent)
        return final

    def materialize(self, sha256: str, target: Path) -> bool:
        """Place the cached file at ``target`` (hard link, else copy) without verifying it.

        Returns False when the cache has no such entry. The caller verifies ``target``.
        """
        cached = self.get(sha256)
        if cached is None:
            return False
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(cached, target)
        except OSError:
            shutil.copyfile(cached, target)
        return True
