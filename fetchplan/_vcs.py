"""git, as the planner and the executor use it: a revision to its commit, a commit's tree.

Only ``git`` on ``PATH`` is needed; every call runs it with a fixed environment (no terminal
prompt, no system or user configuration that could rewrite URLs or line endings), a time
limit, and its output captured. A failure is a :class:`VcsError` of one line: git missing,
the repository not answering, or the revision or commit not in it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from fetchplan._urls import redact
from fetchplan.errors import FetchplanError

__all__ = ["TIMEOUT", "VcsError", "checkout", "resolve_revision"]

TIMEOUT = 600.0
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


class VcsError(FetchplanError):
    """git is missing, or could not give the revision or commit asked for."""


def _git() -> str:
    found = shutil.which("git")
    if found is None:
        raise VcsError("git is not on PATH: VCS requirements need git")
    return found


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        {
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_ASKPASS": "true",
            "LC_ALL": "C",
        }
    )
    return env


def _run(args: list[str], cwd: Path | None, what: str) -> str:
    try:
        done = subprocess.run(
            [_git(), "-c", "core.autocrlf=false", "-c", "advice.detachedHead=false", *args],
            cwd=cwd,
            env=_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise VcsError(f"{what}: git did not finish within {TIMEOUT:g} seconds") from None
    except OSError as exc:
        raise VcsError(f"{what}: cannot run git: {exc}") from None
    if done.returncode != 0:
        lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
        last = lines[-1] if lines else f"exit status {done.returncode}"
        raise VcsError(f"{what}: {redact(last)}")
    return done.stdout


def resolve_revision(url: str, revision: str | None) -> str:
    """The full commit id ``revision`` (a tag, branch or commit; None: the default branch)
    names in the repository at ``url``."""
    where = redact(url)
    if revision is not None and _COMMIT.match(revision.lower()):
        return revision.lower()
    wanted = revision or "HEAD"
    out = _run(["ls-remote", "--", url, wanted, f"{wanted}^{{}}"], None, where)
    refs: dict[str, str] = {}
    for line in out.splitlines():
        commit, _, ref = line.partition("\t")
        refs[ref] = commit
    for ref in (
        f"refs/tags/{wanted}^{{}}",
        f"refs/tags/{wanted}",
        f"refs/heads/{wanted}",
        wanted,
    ):
        if ref in refs and _COMMIT.match(refs[ref]):
            return refs[ref]
    if revision is not None and re.fullmatch(r"[0-9a-fA-F]{7,39}", revision):
        raise VcsError(f"{where}: give the full 40-digit commit id, not {revision!r}")
    raise VcsError(f"{where}: no branch or tag {wanted!r}")


def checkout(url: str, commit: str, into: Path) -> Path:
    """Check out ``commit`` of the repository at ``url`` into the new directory ``into``;
    return it. Raises :class:`VcsError` when the commit is not in the repository."""
    where = redact(url)
    into.mkdir(parents=True)
    _run(["init", "--quiet"], into, where)
    try:
        _run(["fetch", "--quiet", "--depth=1", "--", url, commit], into, where)
        target = "FETCH_HEAD"
    except VcsError:
        # A server that serves no commit by id: every branch and tag, then the commit.
        _run(["fetch", "--quiet", "--tags", "--", url, "+refs/heads/*:refs/fetched/*"], into, where)
        target = commit
    try:
        _run(["checkout", "--quiet", target], into, where)
    except VcsError:
        raise VcsError(f"{where}: commit {commit} is not in the repository") from None
    head = _run(["rev-parse", "HEAD"], into, where).strip()
    if head != commit:
        raise VcsError(f"{where}: fetched commit {head}, not {commit}")
    return into
