"""More direct references: git over HTTP, ``#subdirectory=``, direct URLs in constraints and in
a dependency's metadata, and what the review commands and exports say of each kind.

git over HTTP is git's dumb protocol: a bare repository (after ``git update-server-info``)
under the files of the tests' nginx on loopback. Each input is planned, fetched and installed
into a fresh environment that must import the project, and compared with what pip's own
``install --dry-run --report`` resolves for it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from fetchplan.formats import export_plan
from fetchplan.schemas.plan import load_plan
from tests.conftest import MakeNginxServer, RunCli
from tests.support.index import IndexOptions
from tests.support.nginx import NginxServer
from tests.support.wheels import Dist, build_wheel
from tests.test_direct import (
    _direct_url,
    _git,
    _identities,
    _ok,
    _pip_check_and_import,
    _pips_report,
    _plan_fetch_install,
    _project,
    _value,
    served,  # noqa: F401 - a fixture
)

Served = tuple[NginxServer, Path]


def _bare(work: Path, bare: Path) -> str:
    """``work`` committed and tagged v1.2, cloned bare into ``bare`` for the dumb HTTP
    protocol; the tagged commit."""
    _git("init", "--quiet", "--initial-branch=main", cwd=work)
    _git("add", ".", cwd=work)
    _git("commit", "--quiet", "-m", "first", cwd=work)
    _git("tag", "-a", "v1.2", "-m", "v1.2", cwd=work)
    commit = _git("rev-parse", "v1.2^{commit}", cwd=work)
    _git("clone", "--quiet", "--bare", work, bare, cwd=work.parent)
    _git("update-server-info", cwd=bare)
    return commit


@pytest.fixture
def http_repo(served: Served, tmp_path: Path) -> tuple[str, str]:  # noqa: F811
    """gamma's repository served by nginx over git's dumb HTTP protocol: its URL and the
    commit tagged v1.2."""
    server, files = served
    commit = _bare(_project(tmp_path / "work"), files / "gamma.git")
    return f"{server.url}/files/gamma.git", commit


@pytest.fixture
def monorepo(served: Served, tmp_path: Path) -> tuple[str, str]:  # noqa: F811
    """A repository whose gamma project lies in ``libs/gamma`` (the top has no project),
    served over HTTP: its URL and the commit tagged v1.2."""
    server, files = served
    work = tmp_path / "mono"
    _project(work / "libs" / "gamma")
    (work / "README").write_text("not a project at the top\n")
    commit = _bare(work, files / "mono.git")
    return f"{server.url}/files/mono.git", commit


def _lock_vcs(plan_path: Path) -> dict[str, Any]:
    import tomllib

    plan, _ = load_plan(plan_path)
    lock = tomllib.loads(export_plan(plan, "pylock"))
    gamma = next(p for p in lock["packages"] if p["name"] == "gamma")
    vcs: dict[str, Any] = gamma["vcs"]
    return vcs


def test_git_over_http_pinned_fetched_installed_as_pip_resolves(
    served: Served,  # noqa: F811
    run_cli: RunCli,
    tmp_path: Path,
    http_repo: tuple[str, str],
) -> None:
    server, files = served
    url, commit = http_repo
    requirement = f"gamma @ git+{url}@v1.2"
    plan, python = _plan_fetch_install(run_cli, tmp_path, server.index_url, requirement)

    gamma = next(a for a in plan.artifacts if a.name == "gamma")
    assert gamma.kind == "vcs" and gamma.vcs is not None
    assert (gamma.vcs.url, gamma.vcs.commit_id, gamma.vcs.subdirectory) == (url, commit, None)
    assert _value(python) == "1"
    _pip_check_and_import(python, "gamma")
    assert _direct_url(python, "gamma") == {
        "url": url,
        "vcs_info": {"vcs": "git", "requested_revision": "v1.2", "commit_id": commit},
    }
    pips = _pips_report(tmp_path, server.index_url, requirement)
    assert _identities(json.loads(export_plan(plan, "pip-report"))) == _identities(pips)
    # The repository answered over HTTP (git's dumb protocol reads info/refs first).
    assert server.requests("/files/gamma.git/info/refs")

    # Fetched again into a new destination with the repository gone: the archive of the
    # commit comes from the cache, and an offline fetch needs nothing else.
    shutil.rmtree(files / "gamma.git")
    _ok(run_cli("fetch", "plan.json", "--dest", "again", "--offline"))
    assert (tmp_path / "again" / gamma.filename).is_file()


def test_git_over_http_without_the_cache_offline_is_one_line(
    served: Served,  # noqa: F811
    run_cli: RunCli,
    tmp_path: Path,
    http_repo: tuple[str, str],
) -> None:
    server, _files = served
    url, _commit = http_repo
    _ok(run_cli("plan", f"gamma @ git+{url}@v1.2", "--index-url", server.index_url))
    done = run_cli("fetch", "plan.json", "--offline", "--no-cache")
    assert done.returncode != 0
    assert "offline: commit" in done.stderr and url in done.stderr
    (tmp_path / "reqs.txt").write_text(f"gamma @ git+{url}@v1.2\n")
    done = run_cli("plan", "-r", "reqs.txt", "--no-index", "--offline")
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("fetchplan: error: reqs.txt:1: gamma: --offline") and url in last


def test_vcs_subdirectory_planned_fetched_installed_as_pip_resolves(
    served: Served,  # noqa: F811
    run_cli: RunCli,
    tmp_path: Path,
    monorepo: tuple[str, str],
) -> None:
    server, _files = served
    url, commit = monorepo
    requirement = f"gamma @ git+{url}@v1.2#subdirectory=libs/gamma"
    plan, python = _plan_fetch_install(run_cli, tmp_path, server.index_url, requirement)

    gamma = next(a for a in plan.artifacts if a.name == "gamma")
    assert gamma.vcs is not None and gamma.vcs.subdirectory == "libs/gamma"
    assert gamma.vcs.commit_id == commit and gamma.path is None
    assert _value(python) == "1"
    _pip_check_and_import(python, "gamma")
    assert _direct_url(python, "gamma") == {
        "url": url,
        "vcs_info": {"vcs": "git", "requested_revision": "v1.2", "commit_id": commit},
        "subdirectory": "libs/gamma",
    }
    pips = _pips_report(tmp_path, server.index_url, requirement)
    assert _identities(json.loads(export_plan(plan, "pip-report"))) == _identities(pips)
    pip_gamma = next(i for i in pips["install"] if i["metadata"]["name"] == "gamma")
    ours = json.loads(export_plan(plan, "pip-report"))["install"]
    ours_gamma = next(i for i in ours if i["metadata"]["name"] == "gamma")
    assert ours_gamma["download_info"] == pip_gamma["download_info"]
    assert _lock_vcs(tmp_path / "plan.json") == {
        "type": "git",
        "url": url,
        "requested-revision": "v1.2",
        "commit-id": commit,
        "subdirectory": "libs/gamma",
    }


def test_vcs_subdirectory_that_is_not_a_project_names_the_requirement(
    served: Served,  # noqa: F811
    run_cli: RunCli,
    tmp_path: Path,
    monorepo: tuple[str, str],
) -> None:
    server, _files = served
    url, commit = monorepo
    reqs = tmp_path / "requirements.txt"
    for fragment, expected in (
        ("", "its top has neither pyproject.toml nor setup.py"),
        ("#subdirectory=libs/nothing", f"commit {commit} has no directory libs/nothing"),
        ("#subdirectory=../outside", "'../outside' leaves the tree"),
        ("#subdirectory=/etc", "'/etc' is not a relative POSIX path"),
    ):
        reqs.write_text(f"beta\ngamma @ git+{url}@v1.2{fragment}\n")
        done = run_cli("plan", "-r", reqs.name, "--index-url", server.index_url)
        assert done.returncode != 0, fragment
        last = done.stderr.strip().splitlines()[-1]
        assert last.startswith("fetchplan: error: requirements.txt:2: "), last
        assert expected in last, last
        assert not (tmp_path / "plan.json").exists()


# -- release age: direct artifacts have no upload time ----------------------------------------

OLD = "2025-06-01T12:00:00Z"


def test_exclude_newer_and_min_age_report_direct_artifacts_as_of_unknown_age(
    nginx_server: MakeNginxServer, run_cli: RunCli, tmp_path: Path
) -> None:
    beta = build_wheel(tmp_path / "dists", Dist("beta", "2.0"))
    server = nginx_server(
        [beta], index_options=IndexOptions(upload_times={"beta-2.0-py3-none-any.whl": OLD})
    )
    alpha = build_wheel(server.root / "files", Dist("alpha", "1.0", requires=["beta>=2"]))
    (tmp_path / "dist").mkdir()
    shutil.copy(alpha, tmp_path / "dist")
    _project(tmp_path / "gamma")
    url = server.file_url(alpha.name)
    # As pip's --uploaded-prior-to and uv's --exclude-newer: the cut-off is for index files;
    # a file the user named is taken (it has no upload time to compare).
    _ok(
        run_cli(
            *("plan", f"alpha @ {url}", "./gamma", "--index-url", server.index_url),
            *("--exclude-newer", "2026-01-01T00:00:00Z"),
        )
    )
    plan, _ = load_plan(tmp_path / "plan.json")
    times = {a.name: (a.direct, a.upload_time) for a in plan.artifacts}
    assert times == {"alpha": (True, None), "gamma": (True, None), "beta": (False, OLD)}

    policy = tmp_path / "policy.yaml"
    policy.write_text("min_age: 7 days\n")
    done = run_cli("audit", "plan.json", "--policy", policy, "--format", "json")
    assert done.returncode == 1, done.stderr
    found = {v["project"]: v["message"] for v in json.loads(done.stdout)["violations"]}
    assert set(found) == {"alpha", "gamma"}
    assert found["alpha"].startswith("a direct reference (URL) has no upload time")
    assert found["gamma"].startswith("a direct reference (local directory) has no upload time")
    done = run_cli("fetch", "plan.json", "--policy", policy)
    assert done.returncode != 0 and not (tmp_path / "wheels" / "manifest.json").exists()
    policy.write_text("min_age: {default: 7 days, exempt: [alpha, gamma]}\n")
    _ok(run_cli("audit", "plan.json", "--policy", policy))

    # The local archive says so too.
    _ok(run_cli("plan", f"./dist/{alpha.name}", "--index-url", server.index_url, "-o", "b.json"))
    policy.write_text("min_age: 7 days\n")
    done = run_cli("audit", "b.json", "--policy", policy, "--format", "json")
    found = {v["project"]: v["message"] for v in json.loads(done.stdout)["violations"]}
    assert found["alpha"].startswith("a direct reference (local archive) has no upload time")


# -- direct references in constraints and in a dependency's metadata --------------------------


def test_constraint_with_a_url_is_the_projects_file_as_pip_resolves(
    served: Served,  # noqa: F811
    run_cli: RunCli,
    tmp_path: Path,
) -> None:
    server, files = served
    wheel = next(files.glob("alpha-*.whl"))
    url = server.file_url(wheel.name)
    # pip and uv take 'name @ URL' in a constraints file: the file when the project is needed.
    # A constraint on a project nothing requires brings nothing in.
    gamma = _project(tmp_path / "gamma")
    (tmp_path / "c.txt").write_text(f"alpha @ {url}\ngamma @ {gamma.as_uri()}\n")
    (tmp_path / "requirements.txt").write_text("-c c.txt\nalpha\n")
    plan, python = _plan_fetch_install(
        run_cli, tmp_path, server.index_url, "-r", "requirements.txt"
    )
    alpha = next(a for a in plan.artifacts if a.name == "alpha")
    assert (alpha.url, alpha.direct, alpha.requested, alpha.hash_source) == (
        url,
        True,
        True,
        "computed",
    )
    assert {a.name for a in plan.artifacts} == {"alpha", "beta"}
    _pip_check_and_import(python, "alpha")
    pips = _pips_report(tmp_path, server.index_url, "-c", "c.txt", "alpha")
    assert _identities(json.loads(export_plan(plan, "pip-report"))) == _identities(pips)

    # An unnamed constraint is refused, as pip and uv refuse it.
    (tmp_path / "c.txt").write_text(f"{url}\n")
    done = run_cli(
        "plan", "-r", "requirements.txt", "--index-url", server.index_url, "-o", "x.json"
    )
    assert done.returncode != 0 and not (tmp_path / "x.json").exists()
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("fetchplan: error: c.txt:1: unnamed requirements are not allowed")


def test_dependency_by_url_in_metadata_is_followed_as_pip_resolves(
    nginx_server: MakeNginxServer,
    run_cli: RunCli,
    tmp_path: Path,
) -> None:
    dists = tmp_path / "dists"
    beta = build_wheel(dists, Dist("beta", "2.0"))
    server = nginx_server([beta])
    alpha = build_wheel(server.root / "files", Dist("alpha", "1.0", requires=["beta>=2"]))
    url = server.file_url(alpha.name)
    outer = build_wheel(server.root / "files", Dist("outer", "1.0", requires=[f"alpha @ {url}"]))
    requirement = f"outer @ {server.file_url(outer.name)}"
    plan, python = _plan_fetch_install(run_cli, tmp_path, server.index_url, requirement)
    found = {a.name: (a.direct, a.requested) for a in plan.artifacts}
    assert found == {"outer": (True, True), "alpha": (True, False), "beta": (False, False)}
    assert next(a for a in plan.artifacts if a.name == "alpha").url == url
    _pip_check_and_import(python, "alpha")
    assert _direct_url(python, "alpha")["url"] == url
    pips = _pips_report(tmp_path, server.index_url, requirement)
    assert _identities(json.loads(export_plan(plan, "pip-report"))) == _identities(pips)

    # A dependency's URL that does not answer: one line naming the project that asks for it.
    missing = server.file_url("gone/alpha-1.0-py3-none-any.whl")
    outer2 = build_wheel(dists, Dist("outer", "2.0", requires=[f"alpha @ {missing}"]))
    shutil.copy(outer2, server.root / "files")
    done = run_cli(
        "plan",
        f"outer @ {server.file_url(outer2.name)}",
        "--index-url",
        server.index_url,
        "-o",
        "bad.json",
    )
    assert done.returncode != 0 and not (tmp_path / "bad.json").exists()
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("fetchplan: error: outer 2.0 (its metadata's Requires-Dist): alpha:")
    assert "404" in last
