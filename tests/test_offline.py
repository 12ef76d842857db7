"""``--offline``: no request leaves the machine, whatever the plan or the index pages say.

Every test keeps a willing server running and asserts that it received nothing.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import requests

from fetchplan._offline import NetworkDisabled, disable_network, offline_session
from fetchplan.schemas.manifest import load_manifest
from fetchplan.schemas.plan import load_plan
from tests.conftest import MakeIndex, MakeIndexServer, RunCli
from tests.support.airgap import plan_for_files
from tests.support.servers import IndexServer
from tests.support.wheels import Dist

DISTS = [Dist("app", "1.0", requires=["lib"]), Dist("lib", "2.0")]


@pytest.fixture
def root(make_index: MakeIndex) -> Path:
    return make_index(DISTS)


@pytest.fixture
def server(root: Path, index_server: MakeIndexServer) -> IndexServer:
    return index_server(root)


def test_offline_session_refuses_before_connecting(server: IndexServer) -> None:
    with offline_session() as session, pytest.raises(NetworkDisabled, match="offline"):
        session.get(server.index_url, timeout=5)
    # A session that had adapters (a host-specific one too) loses them all.
    session = requests.Session()
    session.mount(f"{server.url}/", requests.adapters.HTTPAdapter())
    disable_network(session)
    with session, pytest.raises(NetworkDisabled, match=str(server.port)):
        session.get(f"{server.url}/simple/", timeout=5)
    assert server.requests() == []
    assert requests.get(server.index_url, timeout=5).status_code == 200  # it was listening


def test_fetch_offline_names_every_missing_file(
    root: Path,
    server: IndexServer,
    tmp_path: Path,
    run_cli: RunCli,
) -> None:
    wheels = sorted((root / "files").glob("*.whl"))
    plan = plan_for_files(tmp_path / "plan.json", wheels, server.url)
    done = run_cli("fetch", plan, "--offline", "--isolated", "--progress", "none")
    assert done.returncode == 1
    for wheel in wheels:
        assert (
            f"fetchplan: failed: {wheel.name}: offline: {wheel.name} is not in the destination "
            f"or the cache (it would come from {server.file_url(wheel.name)})"
        ) in done.stderr
    assert load_manifest(tmp_path / "wheels" / "manifest.json").artifacts == ()
    assert server.requests() == []


def test_fetch_offline_from_the_cache_and_the_destination(
    root: Path,
    server: IndexServer,
    tmp_path: Path,
    run_cli: RunCli,
) -> None:
    wheels = sorted((root / "files").glob("*.whl"))
    plan = plan_for_files(tmp_path / "plan.json", wheels, server.url)
    online = run_cli("fetch", plan, "--isolated")
    assert online.returncode == 0, online.stderr
    server.reset_counters()
    (tmp_path / "wheels" / wheels[0].name).unlink()  # this one only in the cache now
    done = run_cli("fetch", plan, "--offline", "--isolated")
    assert done.returncode == 0, done.stderr
    assert "0 downloaded, 0 resumed, 1 cache, 1 existing" in done.stdout
    assert server.requests() == []


def test_plan_offline_refuses_network_indexes(
    server: IndexServer, tmp_path: Path, run_cli: RunCli
) -> None:
    plan = ["plan", "app", "--isolated", "--no-cache", "--offline"]
    done = run_cli(*plan, "--index-url", server.index_url)
    assert done.returncode == 2
    assert f"--offline: {server.index_url} needs the network" in done.stderr
    done = run_cli(*plan, "--no-index", "--find-links", f"{server.url}/files/")
    assert done.returncode == 2
    assert f"{server.url}/files/ needs the network" in done.stderr
    done = run_cli(*plan)
    assert done.returncode == 2
    assert "no index given, and the default index needs the network" in done.stderr
    assert not (tmp_path / "plan.json").exists()
    assert server.requests() == []


@pytest.mark.parametrize("source", ["index", "find-links"])
def test_plan_offline_from_local_sources(
    source: str, root: Path, tmp_path: Path, run_cli: RunCli
) -> None:
    where = (
        ["--index-url", (root / "simple").as_uri()]
        if source == "index"
        else ["--no-index", "--find-links", str(root / "files")]
    )
    done = run_cli("plan", "app", "--isolated", "--no-cache", "--offline", *where)
    assert done.returncode == 0, done.stderr
    plan, _ = load_plan(tmp_path / "plan.json")
    assert {a.name: a.version for a in plan.artifacts} == {"app": "1.0", "lib": "2.0"}
    assert all(a.url.startswith("file:") for a in plan.artifacts)


def test_plan_offline_local_index_linking_to_the_network(
    root: Path,
    server: IndexServer,
    tmp_path: Path,
    run_cli: RunCli,
) -> None:
    # A file:// index whose links (and metadata) live on a server: offline, the planner may
    # read the pages but must not follow them.
    local = tmp_path / "pages"
    shutil.copytree(root / "simple", local)
    for page in local.rglob("index.*"):
        page.write_text(page.read_text().replace("../../files/", f"{server.url}/files/"))
    done = run_cli(
        "plan", "app", "--isolated", "--no-cache", "--offline", "--index-url", local.as_uri()
    )
    assert done.returncode != 0
    assert f"offline: refusing to fetch {server.url}/files/app-1.0-py3-none-any.whl" in done.stderr
    assert server.requests() == []
    assert not (tmp_path / "plan.json").exists()
