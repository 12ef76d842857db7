"""PEP 610 ``direct_url.json`` of a direct artifact: pip's report and the installer share it."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from fetchplan.schemas.plan import Artifact

__all__ = ["direct_url"]


def direct_url(artifact: Artifact, directory: Path | None = None) -> dict[str, Any]:
    """What pip writes in ``direct_url.json`` (and its report's ``download_info``) for
    ``artifact``: ``archive_info`` with its hashes, ``dir_info`` (``editable`` when it is),
    or ``vcs_info`` with the commit, and ``subdirectory`` when the project lies in one.
    ``directory`` is where a directory is (for its URL; an editable's project directory)."""
    if artifact.vcs is not None:
        info: dict[str, Any] = {"vcs": artifact.vcs.type}
        if artifact.vcs.requested_revision is not None:
            info["requested_revision"] = artifact.vcs.requested_revision
        info["commit_id"] = artifact.vcs.commit_id
        found: dict[str, Any] = {"url": artifact.vcs.url, "vcs_info": info}
        if artifact.vcs.subdirectory is not None:
            found["subdirectory"] = artifact.vcs.subdirectory
        return found
    if artifact.kind == "directory" and artifact.editable:
        # pip names an editable's project directory itself, without a subdirectory.
        url = artifact.url if directory is None else directory.resolve().as_uri()
        if directory is None and artifact.subdirectory is not None:
            url = url.rstrip("/") + "/" + quote(artifact.subdirectory)
        return {"url": url, "dir_info": {"editable": True}}
    if artifact.kind == "directory":
        url = artifact.url if directory is None else directory.resolve().as_uri()
        found = {"url": url, "dir_info": {}}
    else:
        archive: dict[str, Any] = {}
        if artifact.sha256 is not None:
            archive["hash"] = f"sha256={artifact.sha256}"
        if artifact.hashes:
            archive["hashes"] = dict(sorted(artifact.hashes.items()))
        found = {"url": artifact.url, "archive_info": archive}
    if artifact.subdirectory is not None:
        found["subdirectory"] = artifact.subdirectory
    return found
