"""Two URLs for one project, and direct references reached late or never.

A dependency's ``b @ URL`` (in its metadata's Requires-Dist) for a project the user named by
another URL, or that another dependency names by another URL, is a conflict for pip and uv.
pip's resolver then tries another version of the dependency that asks for it; when none is
left the plan fails with one line naming both URLs and who asked for each, and nothing is
written. Each case is compared with what pip itself does on the same index (nginx on
loopback), as pip compares two links: the same URL again is no conflict, nor is it with the
same ``#sha256=``, but the URL with a hash and without one are two links.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from fetchplan.formats import export_plan
from fetchplan.schemas.plan import load_plan
from tests.conftest import MakeNginxServer, RunCli
from tests.support.index import write_index
from tests.support.nginx import NginxServer
from tests.support.wheels import Dist, build_wheel
from tests.test_direct import TIMEOUT, _identities, _ok, _pips_report


@dataclass(frozen=True)
class Conflicts:
    """An index of a (1.0 requires ``b @ U2``, 0.9 requires ``b``), c (requires ``b @ U1``),
    s (requires ``b @ U1#sha256=...``), with b's two wheels served by URL only."""

    server: NginxServer
    u1: str
    u2: str
    sha1: str


@pytest.fixture
def conflicts(nginx_server: MakeNginxServer, tmp_path: Path) -> Conflicts:
    server = nginx_server([])
    files = server.root / "files"
    b1 = build_wheel(files, Dist("b", "1.0"))
    b2 = build_wheel(files, Dist("b", "2.0"))
    u1, u2 = server.file_url(b1.name), server.file_url(b2.name)
    sha1 = hashlib.sha256(b1.read_bytes()).hexdigest()
    dists = tmp_path / "dists"
    listed = [
        build_wheel(dists, Dist("a", "1.0", requires=[f"b @ {u2}"])),
        build_wheel(dists, Dist("a", "0.9", requires=["b"])),
        build_wheel(dists, Dist("c", "1.0", requires=[f"b @ {u1}"])),
        build_wheel(dists, Dist("s", "1.0", requires=[f"b @ {u1}#sha256={sha1}"])),
    ]
    write_index(server.root, listed)
    return Conflicts(server, u1, u2, sha1)


def _pip_dry_run(tmp_path: Path, index_url: str, *requirement: str) -> int:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--disable-pip-version-check",
            "install",
            "--dry-run",
            "--ignore-installed",
            "--no-cache-dir",
            "--quiet",
            "--index-url",
            index_url,
            *requirement,
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    return done.returncode


def _plan_fails(run_cli: RunCli, tmp_path: Path, index_url: str, *requirement: str) -> str:
    """The last line of a plan that must fail and write nothing."""
    done = run_cli("plan", *requirement, "--index-url", index_url, "-o", "bad.json")
    assert done.returncode != 0, done.stdout
    assert not (tmp_path / "bad.json").exists()
    return done.stderr.strip().splitlines()[-1]


def test_a_dependencys_other_url_sends_the_resolver_to_another_version_as_pip(
    conflicts: Conflicts, run_cli: RunCli, tmp_path: Path
) -> None:
    index_url = conflicts.server.index_url
    (tmp_path / "r.txt").write_text(f"b @ {conflicts.u1}\na\n")
    _ok(run_cli("plan", "-r", "r.txt", "--index-url", index_url, "-o", "plan.json"))
    plan, _ = load_plan(tmp_path / "plan.json")
    found = {a.name: (a.version, a.direct) for a in plan.artifacts}
    assert found == {"a": ("0.9", False), "b": ("1.0", True)}
    assert next(a.url for a in plan.artifacts if a.name == "b") == conflicts.u1
    pips = _pips_report(tmp_path, index_url, "-r", "r.txt")
    assert _identities(json.loads(export_plan(plan, "pip-report"))) == _identities(pips)


def test_the_users_url_and_a_dependencys_other_url_fail_in_one_line_as_pip(
    conflicts: Conflicts, run_cli: RunCli, tmp_path: Path
) -> None:
    index_url = conflicts.server.index_url
    (tmp_path / "r.txt").write_text(f"b @ {conflicts.u1}\na==1.0\n")
    last = _plan_fails(run_cli, tmp_path, index_url, "-r", "r.txt")
    assert last.startswith("fetchplan: error: "), last
    assert f"conflicting URLs for b: {conflicts.u1} (r.txt:1) and {conflicts.u2} (a 1.0)" in last
    assert _pip_dry_run(tmp_path, index_url, "-r", "r.txt") != 0


def test_two_dependencies_with_two_urls_fail_in_one_line_as_pip(
    conflicts: Conflicts, run_cli: RunCli, tmp_path: Path
) -> None:
    index_url = conflicts.server.index_url
    last = _plan_fails(run_cli, tmp_path, index_url, "a==1.0", "c")
    assert "conflicting URLs for b: " in last, last
    # Whichever was met first, both URLs and both askers are named.
    first = f"{conflicts.u2} (a 1.0) and {conflicts.u1} (c 1.0)"
    second = f"{conflicts.u1} (c 1.0) and {conflicts.u2} (a 1.0)"
    assert first in last or second in last, last
    assert _pip_dry_run(tmp_path, index_url, "a==1.0", "c") != 0


@pytest.mark.parametrize(
    ("users", "dependent", "same"),
    [
        ("{u1}", "c", True),
        ("{u1}#sha256={sha1}", "s", True),
        ("{u1}#sha256={sha1}&egg=b", "s", True),
        ("{u1}", "s", False),
    ],
)
def test_the_same_url_is_no_conflict_as_pip_compares_links(  # noqa: PLR0917 - fixtures
    conflicts: Conflicts,
    run_cli: RunCli,
    tmp_path: Path,
    users: str,
    dependent: str,
    same: bool,
) -> None:
    index_url = conflicts.server.index_url
    url = users.format(u1=conflicts.u1, sha1=conflicts.sha1)
    requirement = (f"b @ {url}", dependent)
    assert (_pip_dry_run(tmp_path, index_url, *requirement) == 0) is same
    if not same:
        last = _plan_fails(run_cli, tmp_path, index_url, *requirement)
        assert f"conflicting URLs for b: {url} (<command line>) and {conflicts.u1}#" in last
        return
    _ok(run_cli("plan", *requirement, "--index-url", index_url, "-o", "plan.json"))
    plan, _ = load_plan(tmp_path / "plan.json")
    b = next(a for a in plan.artifacts if a.name == "b")
    assert (b.url, b.sha256, b.direct, b.requested) == (
        conflicts.u1,
        conflicts.sha1,
        True,
        True,
    )
    pips = _pips_report(tmp_path, index_url, *requirement)
    assert _identities(json.loads(export_plan(plan, "pip-report"))) == _identities(pips)


def test_lookahead_never_follows_a_url_dependency_of_a_version_not_chosen(
    nginx_server: MakeNginxServer, run_cli: RunCli, tmp_path: Path
) -> None:
    # p 2.0 (pinned first) requires w==2, q requires w==1: on that backtrack the resolver
    # looks into what every solution holds, reading the metadata of top's versions, 2.0
    # among them. Its 'x @ URL' is followed only if the resolver pins top 2.0: it never does.
    server = nginx_server([])
    x = build_wheel(server.root / "files", Dist("x", "1.0"))
    dists = tmp_path / "dists"
    listed = [
        build_wheel(dists, Dist("top", "3.0")),
        build_wheel(dists, Dist("top", "2.0", requires=[f"x @ {server.file_url(x.name)}"])),
        build_wheel(dists, Dist("p", "2.0", requires=["w==2"])),
        build_wheel(dists, Dist("p", "1.0")),
        build_wheel(dists, Dist("q", "1.0", requires=["w==1"])),
        build_wheel(dists, Dist("w", "1.0")),
        build_wheel(dists, Dist("w", "2.0")),
    ]
    write_index(server.root, listed)
    requirement = ("top", "p", "q")
    _ok(run_cli("plan", *requirement, "--index-url", server.index_url, "-v", "-o", "plan.json"))
    plan, _ = load_plan(tmp_path / "plan.json")
    assert {a.name: a.version for a in plan.artifacts} == {
        "top": "3.0",
        "p": "1.0",
        "q": "1.0",
        "w": "1.0",
    }
    # The lookahead did read top 2.0's metadata: the case is the one it is about.
    assert server.requests("/top-2.0-py3-none-any.whl")
    assert _seen_after_a_probe(server, f"/files/{x.name}") == 0
    pips = _pips_report(tmp_path, server.index_url, *requirement)
    assert _identities(json.loads(export_plan(plan, "pip-report"))) == _identities(pips)


def _seen_after_a_probe(server: NginxServer, path: str) -> int:
    """Requests for ``path`` logged, once a probe request made now is logged too (nginx logs
    in order: what the finished command asked for is in the log by then)."""
    probe = "/files/probe-after-the-command"
    with contextlib.suppress(OSError):  # a 404 is logged too
        urllib.request.urlopen(server.url + probe, timeout=10)
    server.wait_for_requests(1, probe)
    return len(server.requests(path))
