"""``#subdirectory=`` for direct archives and local directories, as pip takes it.

pip accepts ``name @ https://host/repo.tar.gz#subdirectory=sub`` and
``file:///abs/repo#subdirectory=sub`` (and the same as ``-e``): the project lies in that
directory of the archive (below its one top-level directory, which pip strips) or of the
directory. A plain path with a fragment (``./repo#subdirectory=sub``) is a file pip does not
find, and neither does fetchplan. Each input is planned, fetched and installed into a fresh
environment, and compared with what pip's ``install --dry-run --report`` says of it.
"""

from __future__ import annotations

import json
import tarfile
import tomllib
from pathlib import Path
from typing import Any

from fetchplan.formats import export_plan
from fetchplan.schemas.plan import Plan, load_plan
from tests.conftest import RunCli
from tests.support.hostile import new_venv
from tests.support.nginx import NginxServer
from tests.test_direct import (
    _direct_url,
    _ok,
    _pip_check_and_import,
    _pips_report,
    _plan_fetch_install,
    _project,
    _value,
    served,  # noqa: F401 - a fixture
)

Served = tuple[NginxServer, Path]


def _monorepo(root: Path) -> Path:
    """A repository whose gamma project lies in ``libs/gamma``; its top is no project."""
    _project(root / "libs" / "gamma")
    (root / "README").write_text("not a project at the top\n")
    return root


def _tarball(work: Path, into: Path) -> Path:
    """``work`` as a GitHub-style archive: ``mono-main.tar.gz`` with one top directory."""
    archive = into / "mono-main.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(work, arcname="mono-main")
    return archive


def _pip_item(report: dict[str, Any], name: str) -> dict[str, Any]:
    item: dict[str, Any] = next(i for i in report["install"] if i["metadata"]["name"] == name)
    return item


def _lock_package(plan: Plan, name: str) -> dict[str, Any]:
    lock = tomllib.loads(export_plan(plan, "pylock"))
    package: dict[str, Any] = next(p for p in lock["packages"] if p["name"] == name)
    return package


def test_archive_url_subdirectory_planned_fetched_installed_as_pip_resolves(
    served: Served,  # noqa: F811
    run_cli: RunCli,
    tmp_path: Path,
) -> None:
    server, files = served
    archive = _tarball(_monorepo(tmp_path / "mono"), files)
    url = f"{server.url}/files/{archive.name}"
    requirement = f"gamma @ {url}#subdirectory=libs/gamma"
    plan, python = _plan_fetch_install(run_cli, tmp_path, server.index_url, requirement)

    gamma = next(a for a in plan.artifacts if a.name == "gamma")
    assert (gamma.kind, gamma.direct, gamma.filename) == ("sdist", True, "mono-main.tar.gz")
    assert (gamma.url, gamma.subdirectory, gamma.version) == (url, "libs/gamma", "1.0")
    assert gamma.hash_source == "computed" and gamma.size == archive.stat().st_size
    assert (tmp_path / "wheels" / "mono-main.tar.gz").read_bytes() == archive.read_bytes()
    assert {a.name for a in plan.artifacts} == {"gamma", "beta"}
    assert _value(python) == "1"
    _pip_check_and_import(python, "gamma")
    pips = _pips_report(tmp_path, server.index_url, requirement)
    pip_gamma = _pip_item(pips, "gamma")
    assert pip_gamma["download_info"]["subdirectory"] == "libs/gamma"
    assert pip_gamma["is_direct"] is True
    ours = _pip_item(json.loads(export_plan(plan, "pip-report")), "gamma")
    assert ours["download_info"] == pip_gamma["download_info"]
    assert ours["metadata"]["version"] == pip_gamma["metadata"]["version"]
    # The installed project records where it came from as pip does.
    assert _direct_url(python, "gamma") == pip_gamma["download_info"]
    assert _lock_package(plan, "gamma")["archive"] == {
        "url": url,
        "size": archive.stat().st_size,
        "hashes": {"sha256": gamma.sha256},
        "subdirectory": "libs/gamma",
    }
    done = _ok(run_cli("export", "plan.json", "--format", "requirements"))
    assert f"gamma @ {url}#subdirectory=libs/gamma" in done.stdout
    assert f"--hash=sha256:{gamma.sha256}" in done.stdout


def test_local_archive_url_subdirectory_with_its_hash(
    served: Served,  # noqa: F811
    run_cli: RunCli,
    tmp_path: Path,
) -> None:
    server, _files = served
    (tmp_path / "dist").mkdir()
    archive = _tarball(_monorepo(tmp_path / "mono"), tmp_path / "dist")
    import hashlib

    sha256 = hashlib.sha256(archive.read_bytes()).hexdigest()
    requirement = f"gamma @ {archive.as_uri()}#subdirectory=libs/gamma&sha256={sha256}"
    plan, python = _plan_fetch_install(run_cli, tmp_path, server.index_url, requirement)
    gamma = next(a for a in plan.artifacts if a.name == "gamma")
    assert (gamma.path, gamma.subdirectory, gamma.hash_source) == (
        "dist/mono-main.tar.gz",
        "libs/gamma",
        "url",
    )
    assert _value(python) == "1"
    pip_gamma = _pip_item(_pips_report(tmp_path, server.index_url, requirement), "gamma")
    assert _direct_url(python, "gamma") == pip_gamma["download_info"]


def test_directory_url_subdirectory_planned_and_editable_as_pip_resolves(
    served: Served,  # noqa: F811
    run_cli: RunCli,
    tmp_path: Path,
) -> None:
    server, _files = served
    mono = _monorepo(tmp_path / "mono")
    # Unnamed, as pip takes it: the name is the project's pyproject.toml's.
    requirement = f"{mono.as_uri()}#subdirectory=libs/gamma"
    plan, python = _plan_fetch_install(run_cli, tmp_path, server.index_url, requirement)
    gamma = next(a for a in plan.artifacts if a.name == "gamma")
    assert (gamma.kind, gamma.path, gamma.subdirectory) == ("directory", "mono", "libs/gamma")
    with tarfile.open(tmp_path / "wheels" / gamma.filename) as tar:
        # The source tree is the project's: the repository's README is not in it.
        assert "source/README" not in tar.getnames()
        assert "source/pyproject.toml" in tar.getnames()
    assert _value(python) == "1"
    _pip_check_and_import(python, "gamma")
    pip_gamma = _pip_item(_pips_report(tmp_path, server.index_url, requirement), "gamma")
    assert pip_gamma["download_info"] == {
        "url": mono.as_uri(),
        "dir_info": {},
        "subdirectory": "libs/gamma",
    }
    ours = _pip_item(json.loads(export_plan(plan, "pip-report")), "gamma")
    assert ours["download_info"] == pip_gamma["download_info"]
    assert _direct_url(python, "gamma") == pip_gamma["download_info"]
    assert _lock_package(plan, "gamma")["directory"] == {
        "path": mono.as_posix(),
        "subdirectory": "libs/gamma",
    }

    # Editable: installed from the project's directory, an edit seen at once.
    (tmp_path / "requirements.txt").write_text(f"-e {mono.as_uri()}#subdirectory=libs/gamma\n")
    _ok(run_cli("plan", "-r", "requirements.txt", "--index-url", server.index_url, "-o", "e.json"))
    editable, _ = load_plan(tmp_path / "e.json")
    gamma = next(a for a in editable.artifacts if a.name == "gamma")
    assert gamma.editable and gamma.subdirectory == "libs/gamma"
    _ok(run_cli("fetch", "e.json", "--dest", "e"))
    python = new_venv(tmp_path / "venv-e")
    _ok(run_cli("install", "e/manifest.json", "--python", python))
    (mono / "libs" / "gamma" / "gamma" / "__init__.py").write_text("VALUE = 2\n")
    assert _value(python) == "2"
    pips = _pips_report(tmp_path, server.index_url, "-r", "requirements.txt")
    # pip names an editable's project directory, not the directory and its subdirectory.
    expected = {"url": (mono / "libs" / "gamma").as_uri(), "dir_info": {"editable": True}}
    assert _pip_item(pips, "gamma")["download_info"] == expected
    assert _direct_url(python, "gamma") == expected
    ours = _pip_item(json.loads(export_plan(editable, "pip-report")), "gamma")
    assert ours["download_info"] == expected
    assert _lock_package(editable, "gamma")["directory"] == {
        "path": mono.as_posix(),
        "editable": True,
        "subdirectory": "libs/gamma",
    }


def test_subdirectory_errors_name_the_requirement(
    served: Served,  # noqa: F811
    run_cli: RunCli,
    tmp_path: Path,
) -> None:
    server, files = served
    mono = _monorepo(tmp_path / "mono")
    archive = _tarball(mono, files)
    url = f"{server.url}/files/{archive.name}"
    wheel = next(files.glob("alpha-*.whl"))
    reqs = tmp_path / "requirements.txt"
    for line, expected in (
        (f"gamma @ {url}#subdirectory=libs/nothing", "has no directory libs/nothing"),
        (f"gamma @ {url}#subdirectory=../up", "'../up' leaves the tree"),
        (f"gamma @ {url}#subdirectory=libs", "libs has neither pyproject.toml nor setup.py"),
        (f"gamma @ {mono.as_uri()}#subdirectory=libs/none", "has no directory libs/none"),
        (f"gamma @ {mono.as_uri()}", "neither pyproject.toml nor setup.py"),
        (
            f"alpha @ {server.url}/files/{wheel.name}#subdirectory=x",
            f"{wheel.name} is a wheel",
        ),
        # Without a subdirectory the archive's file name must name the project.
        (f"gamma @ {url}", "mono-main.tar.gz: not a valid wheel or sdist file name"),
        # pip reads a plain path's '#' as part of the file name, and finds no such file.
        ("./mono#subdirectory=libs/gamma", "no such file or directory"),
    ):
        reqs.write_text(f"beta\n{line}\n")
        done = run_cli("plan", "-r", reqs.name, "--index-url", server.index_url)
        assert done.returncode != 0, line
        last = done.stderr.strip().splitlines()[-1]
        assert last.startswith("fetchplan: error: requirements.txt:2: "), last
        assert expected in last, (line, last)
        assert not (tmp_path / "plan.json").exists()

    # Two projects of one archive are two artifacts with one URL: refused in one line.
    _project(mono / "libs" / "delta")
    archive = _tarball(mono, files)
    reqs.write_text(
        f"gamma @ {url}#subdirectory=libs/gamma\ndelta @ {url}#subdirectory=libs/delta\n"
    )
    done = run_cli("plan", "-r", reqs.name, "--index-url", server.index_url)
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert "requirements.txt:2: " in last and "two projects in one archive" in last
