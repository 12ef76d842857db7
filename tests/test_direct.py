"""Direct references end to end: ``name @ URL`` archives and local archives.

Each input is planned, fetched and installed into a fresh virtual environment (which must pass
``pip check`` and import the project), against wheels and sdists served by nginx on loopback,
and what pip's own ``install --dry-run --report`` resolves for the same input is compared.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any, Literal

import pytest

from fetchplan.formats import export_plan
from fetchplan.schemas.plan import Plan, load_plan
from tests.conftest import MakeNginxServer, RunCli
from tests.support.hostile import new_venv
from tests.support.nginx import NginxServer
from tests.support.wheels import Dist, build_sdist, build_wheel

TIMEOUT = 300
ALPHA_PYPROJECT = """\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "alpha"
version = "1.0"
dependencies = ["beta>=2"]
"""


def _ok(done: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert done.returncode == 0, f"{done.args}\n{done.stdout}\n{done.stderr}"
    return done


def _run(cmd: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def served(
    nginx_server: MakeNginxServer, tmp_path: Path, build_tools: list[Path]
) -> tuple[NginxServer, Path]:
    """An index of beta (alpha's dependency) and the build tools, with alpha's wheel and
    sdist among its files (named by URL only: the index does not list alpha)."""
    dists = tmp_path / "dists"
    beta = build_wheel(dists, Dist("beta", "2.0"))
    server = nginx_server([beta, *build_tools])
    files = server.root / "files"
    build_wheel(files, Dist("alpha", "1.0", requires=["beta>=2"]))
    build_sdist(
        files,
        Dist("alpha", "1.0", requires=["beta>=2"], metadata_version="2.2"),
        pyproject=ALPHA_PYPROJECT,
    )
    return server, files


@pytest.fixture
def index_url(served: tuple[NginxServer, Path]) -> str:
    """The index URL of :func:`served` (for a test that needs nothing else of it)."""
    return served[0].index_url


def _plan_fetch_install(
    run_cli: RunCli, tmp_path: Path, index_url: str, *requirement: str
) -> tuple[Plan, Path]:
    _ok(run_cli("plan", *requirement, "--index-url", index_url, "-o", "plan.json"))
    plan, _ = load_plan(tmp_path / "plan.json")
    _ok(run_cli("fetch", "plan.json"))
    python = new_venv(tmp_path / "venv")
    _ok(run_cli("install", "wheels/manifest.json", "--python", python))
    return plan, python


def _pip_check_and_import(python: Path, module: str) -> None:
    # The environment has no pip: the outer one checks it (pip's --python).
    pip = [sys.executable, "-m", "pip", "--python", str(python), "--disable-pip-version-check"]
    _ok(_run([*pip, "check"]))
    _ok(_run([str(python), "-c", f"import {module}"]))


def _pips_report(tmp_path: Path, index_url: str, *requirement: str) -> dict[str, Any]:
    report = tmp_path / "pip-report.json"
    _ok(
        _run(
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
                "--report",
                str(report),
                "--index-url",
                index_url,
                *requirement,
            ],
            cwd=tmp_path,
        )
    )
    loaded: dict[str, Any] = json.loads(report.read_text())
    return loaded


def _identities(report: dict[str, Any]) -> set[tuple[str, str, str, bool]]:
    return {
        (
            item["metadata"]["name"].lower(),
            item["metadata"]["version"],
            item["download_info"]["url"].split("#")[0],
            item["is_direct"],
        )
        for item in report["install"]
    }


@pytest.mark.parametrize("filename", ["alpha-1.0-py3-none-any.whl", "alpha-1.0.tar.gz"])
def test_direct_url_planned_fetched_installed_as_pip_resolves(
    served: tuple[NginxServer, Path], run_cli: RunCli, tmp_path: Path, filename: str
) -> None:
    server, files = served
    url = f"{server.url}/files/{filename}"
    requirement = f"alpha @ {url}"
    plan, python = _plan_fetch_install(run_cli, tmp_path, server.index_url, requirement)

    alpha = next(a for a in plan.artifacts if a.name == "alpha")
    assert alpha.direct and alpha.url == url and alpha.filename == filename
    assert alpha.sha256 == _sha256(files / filename) and alpha.hash_source == "computed"
    assert alpha.size == (files / filename).stat().st_size
    assert alpha.kind == ("wheel" if filename.endswith(".whl") else "sdist")
    beta = next(a for a in plan.artifacts if a.name == "beta")
    assert not beta.direct
    _pip_check_and_import(python, "alpha")

    ours = _identities(json.loads(export_plan(plan, "pip-report")))
    assert ours == _identities(_pips_report(tmp_path, server.index_url, requirement))
    # pip writes direct_url.json for a direct URL install: so does fetchplan.
    direct_url = _ok(
        _run(
            [
                str(python),
                "-c",
                "import importlib.metadata as m; print(m.distribution('alpha')"
                ".read_text('direct_url.json'))",
            ]
        )
    ).stdout
    recorded = json.loads(direct_url)
    assert recorded["url"] == url
    assert recorded["archive_info"]["hashes"] == {"sha256": alpha.sha256}


def test_fragment_and_hash_option_give_the_hash_source(
    served: tuple[NginxServer, Path], run_cli: RunCli, tmp_path: Path
) -> None:
    server, files = served
    wheel = files / "alpha-1.0-py3-none-any.whl"
    digest = _sha256(wheel)
    url = f"{server.url}/files/{wheel.name}"
    _ok(run_cli("plan", f"alpha @ {url}#sha256={digest}", "--index-url", server.index_url))
    plan, _ = load_plan(tmp_path / "plan.json")
    alpha = next(a for a in plan.artifacts if a.name == "alpha")
    assert (alpha.sha256, alpha.hash_source) == (digest, "url")

    reqs = tmp_path / "reqs.txt"
    reqs.write_text(f"alpha @ {url} --hash=sha256:{digest}\nbeta==2.0 --hash=sha256:{'0' * 64}\n")
    done = run_cli("plan", "-r", reqs, "--index-url", server.index_url, "-o", "hashed.json")
    # beta's hash is wrong on purpose: the plan fails, but only after alpha's hash was taken.
    assert done.returncode != 0 and "beta" in done.stderr
    beta = _sha256(files / "beta-2.0-py3-none-any.whl")
    reqs.write_text(f"alpha @ {url} --hash=sha256:{digest}\nbeta==2.0 --hash=sha256:{beta}\n")
    _ok(run_cli("plan", "-r", reqs, "--index-url", server.index_url, "-o", "hashed.json"))
    plan, _ = load_plan(tmp_path / "hashed.json")
    alpha = next(a for a in plan.artifacts if a.name == "alpha")
    assert (alpha.sha256, alpha.hash_source) == (digest, "requirements")


def test_direct_url_errors_name_the_requirement(
    served: tuple[NginxServer, Path], run_cli: RunCli, tmp_path: Path
) -> None:
    server, _files = served
    reqs = tmp_path / "reqs.txt"
    missing = f"{server.url}/files/alpha-9.0-py3-none-any.whl"
    reqs.write_text(f"# direct\nalpha @ {missing}\n")
    done = run_cli("plan", "-r", reqs.name, "--index-url", server.index_url, "-o", "plan.json")
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1].startswith(f"fetchplan: error: {reqs.name}:2: ")
    assert "404" in done.stderr
    assert not (tmp_path / "plan.json").exists()

    wrong = "1" * 64
    url = f"{server.url}/files/alpha-1.0-py3-none-any.whl#sha256={wrong}"
    reqs.write_text(f"alpha @ {url}\n")
    done = run_cli("plan", "-r", reqs.name, "--index-url", server.index_url, "-o", "plan.json")
    assert done.returncode != 0
    assert f"{reqs.name}:1:" in done.stderr and wrong in done.stderr
    assert not (tmp_path / "plan.json").exists()


@pytest.mark.parametrize("spelling", ["path", "file-url"])
def test_local_archive_planned_copied_installed(
    served: tuple[NginxServer, Path], run_cli: RunCli, tmp_path: Path, spelling: str
) -> None:
    server, files = served
    dist = tmp_path / "dist"
    dist.mkdir()
    wheel = dist / "alpha-1.0-py3-none-any.whl"
    wheel.write_bytes((files / wheel.name).read_bytes())
    requirement = "./dist/alpha-1.0-py3-none-any.whl"
    if spelling == "file-url":
        requirement = f"alpha @ {wheel.as_uri()}"
    plan, python = _plan_fetch_install(run_cli, tmp_path, server.index_url, requirement)

    alpha = next(a for a in plan.artifacts if a.name == "alpha")
    assert alpha.direct and alpha.url == wheel.as_uri()
    assert alpha.path == "dist/alpha-1.0-py3-none-any.whl"
    assert (alpha.sha256, alpha.hash_source) == (_sha256(wheel), "computed")
    assert (tmp_path / "wheels" / wheel.name).read_bytes() == wheel.read_bytes()
    _pip_check_and_import(python, "alpha")
    ours = _identities(json.loads(export_plan(plan, "pip-report")))
    assert ours == _identities(_pips_report(tmp_path, server.index_url, requirement))


def test_local_archive_changed_after_planning_fails_the_fetch(
    served: tuple[NginxServer, Path], run_cli: RunCli, tmp_path: Path
) -> None:
    server, files = served
    wheel = tmp_path / "alpha-1.0-py3-none-any.whl"
    wheel.write_bytes((files / wheel.name).read_bytes())
    _ok(run_cli("plan", f"./{wheel.name}", "--index-url", server.index_url))
    wheel.write_bytes(wheel.read_bytes() + b"\0")
    done = run_cli("fetch", "plan.json")
    assert done.returncode != 0
    assert wheel.name in done.stderr
    assert not (tmp_path / "wheels" / wheel.name).exists()


# -- local project directories ----------------------------------------------------------------

GAMMA_PYPROJECT = """\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "gamma"
version = "1.0"
dependencies = ["beta>=2"]

[tool.setuptools]
packages = ["gamma"]
"""


# An in-tree backend (no build requirements, so no setuptools to install in each build
# environment): metadata, a wheel of the gamma package, and an editable wheel whose .pth file
# puts the source directory on sys.path (PEP 660).
INHOUSE_BACKEND = """\
import base64, hashlib, os, zipfile

NAME, VERSION = "gamma", "1.0"
INFO = f"{NAME}-{VERSION}.dist-info"
METADATA = (
    f"Metadata-Version: 2.1\\nName: {NAME}\\nVersion: {VERSION}\\n"
    "Requires-Dist: beta>=2\\n\\n"
)


def _row(name, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def _wheel(directory, members):
    members[f"{INFO}/METADATA"] = METADATA.encode()
    members[f"{INFO}/WHEEL"] = (
        b"Wheel-Version: 1.0\\nGenerator: inhouse\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"
    )
    rows = [_row(n, d) for n, d in members.items()] + [f"{INFO}/RECORD,,"]
    members[f"{INFO}/RECORD"] = ("\\n".join(rows) + "\\n").encode()
    filename = f"{NAME}-{VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(directory, filename), "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return filename


def get_requires_for_build_wheel(config_settings=None):
    return []


get_requires_for_build_editable = get_requires_for_build_wheel


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    os.makedirs(os.path.join(metadata_directory, INFO))
    with open(os.path.join(metadata_directory, INFO, "METADATA"), "w") as out:
        out.write(METADATA)
    return INFO


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    with open(os.path.join("gamma", "__init__.py"), "rb") as source:
        return _wheel(wheel_directory, {"gamma/__init__.py": source.read()})


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    return _wheel(wheel_directory, {"gamma.pth": (os.getcwd() + "\\n").encode()})
"""
INHOUSE_PYPROJECT = """\
[build-system]
requires = []
build-backend = "gamma_backend"
backend-path = ["."]

[project]
name = "gamma"
dynamic = ["version", "dependencies"]
"""


def _project(root: Path, *, setuptools: bool = False) -> Path:
    """The gamma project (VALUE = 1), built by setuptools or by its own in-tree backend."""
    (root / "gamma").mkdir(parents=True)
    if setuptools:
        (root / "pyproject.toml").write_text(GAMMA_PYPROJECT)
    else:
        (root / "pyproject.toml").write_text(INHOUSE_PYPROJECT)
        (root / "gamma_backend.py").write_text(INHOUSE_BACKEND)
    (root / "gamma" / "__init__.py").write_text("VALUE = 1\n")
    return root


@pytest.fixture
def gamma(tmp_path: Path) -> Path:
    """``tmp_path/gamma``: the gamma project with its in-tree backend."""
    return _project(tmp_path / "gamma")


def _value(python: Path) -> str:
    return _ok(_run([str(python), "-c", "import gamma; print(gamma.VALUE)"])).stdout.strip()


def _direct_url(python: Path, project: str) -> dict[str, Any]:
    out = _ok(
        _run(
            [
                str(python),
                "-c",
                "import importlib.metadata as m, sys;"
                f"sys.stdout.write(m.distribution({project!r}).read_text('direct_url.json'))",
            ]
        )
    ).stdout
    loaded: dict[str, Any] = json.loads(out)
    return loaded


def test_directory_planned_archived_built_installed(
    index_url: str, run_cli: RunCli, tmp_path: Path
) -> None:
    project = _project(tmp_path / "libs" / "gamma", setuptools=True)
    (project / "gamma" / "__pycache__").mkdir()
    (project / "gamma" / "__pycache__" / "x.pyc").write_bytes(b"left out")
    plan, python = _plan_fetch_install(run_cli, tmp_path, index_url, "./libs/gamma")

    gamma = next(a for a in plan.artifacts if a.name == "gamma")
    assert (gamma.kind, gamma.direct, gamma.path) == ("directory", True, "libs/gamma")
    assert gamma.filename == "gamma-1.0.src.tar" and gamma.hash_source == "computed"
    archive = tmp_path / "wheels" / gamma.filename
    assert _sha256(archive) == gamma.sha256 and archive.stat().st_size == gamma.size
    with tarfile.open(archive) as tar:
        assert tar.getnames() == ["source/gamma/__init__.py", "source/pyproject.toml"]
    # The backend's build requirements are in the plan, as for an sdist.
    assert any(a.name == "setuptools" and a.build_dependency for a in plan.artifacts)
    assert _value(python) == "1"
    _pip_check_and_import(python, "gamma")
    assert _direct_url(python, "gamma") == {"url": project.as_uri(), "dir_info": {}}
    ours = _identities(json.loads(export_plan(plan, "pip-report")))
    assert ours == _identities(_pips_report(tmp_path, index_url, "./libs/gamma"))
    # A directory has no hash pip could check: the requirements export says so.
    done = run_cli("export", "plan.json", "--format", "requirements")
    assert done.returncode != 0 and "gamma-1.0.src.tar" in done.stderr
    assert "local directory" in done.stderr


def test_directory_edited_after_planning_fails_the_fetch(
    index_url: str, run_cli: RunCli, tmp_path: Path, gamma: Path
) -> None:
    _ok(run_cli("plan", "./gamma", "--index-url", index_url, "-o", "plan.json"))
    (gamma / "gamma" / "__init__.py").write_text("VALUE = 2\n")
    done = run_cli("fetch", "plan.json")
    assert done.returncode != 0
    assert "changed since planning" in done.stderr
    assert not (tmp_path / "wheels" / "gamma-1.0.src.tar").exists()


def test_editable_reflects_edits_and_records_direct_url(
    index_url: str, run_cli: RunCli, tmp_path: Path
) -> None:
    project = _project(tmp_path / "gamma", setuptools=True)
    (tmp_path / "requirements.txt").write_text("-e ./gamma\n")
    _ok(run_cli("plan", "-r", "requirements.txt", "--index-url", index_url))
    plan, _ = load_plan(tmp_path / "plan.json")
    gamma = next(a for a in plan.artifacts if a.name == "gamma")
    assert gamma.editable and gamma.kind == "directory"
    _ok(run_cli("fetch", "plan.json"))
    assert not (tmp_path / "wheels" / gamma.filename).exists()  # nothing to fetch
    python = new_venv(tmp_path / "venv")
    _ok(run_cli("install", "wheels/manifest.json", "--python", python))
    assert _value(python) == "1"
    (project / "gamma" / "__init__.py").write_text("VALUE = 2\n")
    assert _value(python) == "2"
    _pip_check_and_import(python, "gamma")
    assert _direct_url(python, "gamma") == {
        "url": project.as_uri(),
        "dir_info": {"editable": True},
    }
    ours = _identities(json.loads(export_plan(plan, "pip-report")))
    pips = _pips_report(tmp_path, index_url, "-r", "requirements.txt")
    assert ours == _identities(pips)
    pip_gamma = next(i for i in pips["install"] if i["metadata"]["name"] == "gamma")
    assert pip_gamma["download_info"] == {"url": project.as_uri(), "dir_info": {"editable": True}}
    ours_gamma = json.loads(export_plan(plan, "pip-report"))["install"]
    assert (
        next(i for i in ours_gamma if i["metadata"]["name"] == "gamma")["download_info"]
        == (pip_gamma["download_info"])
    )


def test_editable_in_a_plan_for_several_targets_is_refused(
    index_url: str, run_cli: RunCli, tmp_path: Path, gamma: Path
) -> None:
    (tmp_path / "requirements.txt").write_text("beta\n-e ./gamma\n")
    done = run_cli(
        "plan",
        "-r",
        "requirements.txt",
        "--index-url",
        index_url,
        "--target",
        "py=3.11,platform=manylinux_2_28_x86_64",
        "--target",
        "py=3.12,platform=manylinux_2_28_x86_64",
    )
    assert done.returncode != 0
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .startswith(
            "fetchplan: error: requirements.txt:2: './gamma': an editable requirement cannot"
        )
    )
    assert not (tmp_path / "plan.json").exists()


# -- VCS --------------------------------------------------------------------------------------


def _git(*args: str | Path, cwd: Path) -> str:
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@localhost",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@localhost",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "HOME": str(cwd),
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run(
        ["git", *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture
def bare_repo(tmp_path: Path) -> tuple[Path, str]:
    """A bare repository of the gamma project: v1.2 tagged, then one more commit on main."""
    work = _project(tmp_path / "work")
    _git("init", "--quiet", "--initial-branch=main", cwd=work)
    _git("add", ".", cwd=work)
    _git("commit", "--quiet", "-m", "gamma 1.0", cwd=work)
    _git("tag", "-a", "v1.2", "-m", "v1.2", cwd=work)
    tagged = _git("rev-parse", "v1.2^{commit}", cwd=work)
    (work / "gamma" / "__init__.py").write_text("VALUE = 3\n")
    _git("commit", "--quiet", "-am", "later", cwd=work)
    bare = tmp_path / "repo.git"
    _git("clone", "--quiet", "--bare", work, bare, cwd=tmp_path)
    return bare, tagged


def test_vcs_pinned_to_its_commit_fetched_built_installed(
    index_url: str,
    run_cli: RunCli,
    tmp_path: Path,
    bare_repo: tuple[Path, str],
) -> None:
    bare, commit = bare_repo
    requirement = f"gamma @ git+{bare.as_uri()}@v1.2"
    plan, python = _plan_fetch_install(run_cli, tmp_path, index_url, requirement)

    gamma = next(a for a in plan.artifacts if a.name == "gamma")
    assert gamma.kind == "vcs" and gamma.direct and gamma.vcs is not None
    assert (gamma.vcs.url, gamma.vcs.commit_id) == (bare.as_uri(), commit)
    assert gamma.vcs.requested_revision == "v1.2"
    assert gamma.filename == f"gamma-1.0-git-{commit[:12]}.src.tar"
    assert _sha256(tmp_path / "wheels" / gamma.filename) == gamma.sha256
    assert _value(python) == "1"  # the tagged commit, not the branch's newer one
    _pip_check_and_import(python, "gamma")
    recorded = _direct_url(python, "gamma")
    assert recorded == {
        "url": bare.as_uri(),
        "vcs_info": {"vcs": "git", "requested_revision": "v1.2", "commit_id": commit},
    }
    pips = _pips_report(tmp_path, index_url, requirement)
    ours = json.loads(export_plan(plan, "pip-report"))
    assert _identities(ours) == _identities(pips)
    pip_gamma = next(i for i in pips["install"] if i["metadata"]["name"] == "gamma")
    assert pip_gamma["download_info"]["vcs_info"]["commit_id"] == commit
    lock = export_plan(plan, "pylock")
    assert f'commit-id = "{commit}"' in lock and 'requested-revision = "v1.2"' in lock


def test_vcs_errors_name_the_requirement(
    index_url: str,
    run_cli: RunCli,
    tmp_path: Path,
    bare_repo: tuple[Path, str],
) -> None:
    bare, _commit = bare_repo
    reqs = tmp_path / "requirements.txt"
    for revision, expected in (
        ("v9.9", "no branch or tag 'v9.9'"),
        ("0123456789abcdef0123456789abcdef01234567", "is not in the repository"),
    ):
        reqs.write_text(f"beta\ngamma @ git+{bare.as_uri()}@{revision}\n")
        done = run_cli("plan", "-r", reqs.name, "--index-url", index_url)
        assert done.returncode != 0
        last = done.stderr.strip().splitlines()[-1]
        assert last.startswith("fetchplan: error: requirements.txt:2: gamma: ") and expected in last
        assert not (tmp_path / "plan.json").exists()
    env = {**os.environ, "PATH": str(tmp_path / "no-git-here")}
    reqs.write_text(f"gamma @ git+{bare.as_uri()}@v1.2\n")
    done = run_cli("plan", "-r", reqs.name, "--index-url", index_url, env=env)
    assert done.returncode != 0 and "git is not on PATH" in done.stderr


def test_vcs_commit_gone_fails_the_fetch_with_one_line(
    index_url: str,
    run_cli: RunCli,
    tmp_path: Path,
    bare_repo: tuple[Path, str],
) -> None:
    bare, commit = bare_repo
    _ok(run_cli("plan", f"gamma @ git+{bare.as_uri()}@v1.2", "--index-url", index_url))
    shutil.rmtree(bare)
    done = run_cli("fetch", "plan.json", "--no-cache")
    assert done.returncode != 0
    assert f"gamma-1.0-git-{commit[:12]}.src.tar" in done.stderr
    assert bare.as_uri() in done.stderr


# -- bundles, offline -------------------------------------------------------------------------


def test_bundle_carries_direct_artifacts_to_an_offline_install(
    served: tuple[NginxServer, Path],
    run_cli: RunCli,
    tmp_path: Path,
    bare_repo: tuple[Path, str],
) -> None:
    server, _files = served
    bare, _commit = bare_repo
    (tmp_path / "requirements.txt").write_text(
        f"alpha @ {server.url}/files/alpha-1.0-py3-none-any.whl\ngamma @ git+{bare.as_uri()}@v1.2\n"
    )
    _ok(run_cli("plan", "-r", "requirements.txt", "--index-url", server.index_url))
    _ok(run_cli("fetch", "plan.json"))
    _ok(run_cli("bundle", "plan.json", "-o", "bundle"))
    _ok(run_cli("verify", "bundle"))
    server.close()
    shutil.rmtree(bare)
    python = new_venv(tmp_path / "venv")
    _ok(run_cli("install", "bundle", "--python", python, "--offline"))
    _pip_check_and_import(python, "alpha")
    assert _value(python) == "1"
    assert _direct_url(python, "alpha")["url"].endswith("/files/alpha-1.0-py3-none-any.whl")


def test_offline_plan_of_a_local_archive_and_directory(
    served: tuple[NginxServer, Path], run_cli: RunCli, tmp_path: Path, gamma: Path
) -> None:
    server, files = served
    index = tmp_path / "index"
    for wheel in (server.root / "files").glob("*.whl"):
        (index / "files").mkdir(parents=True, exist_ok=True)
        shutil.copy(wheel, index / "files")
    (tmp_path / "dist").mkdir()
    shutil.copy(files / "alpha-1.0-py3-none-any.whl", tmp_path / "dist")
    done = run_cli(
        "plan",
        "./dist/alpha-1.0-py3-none-any.whl",
        "./gamma",
        "--no-index",
        "--find-links",
        index / "files",
        "--offline",
    )
    _ok(done)
    plan, _ = load_plan(tmp_path / "plan.json")
    assert {a.name for a in plan.artifacts if a.direct} == {"alpha", "gamma"}
    _ok(run_cli("fetch", "plan.json", "--offline"))
    python = new_venv(tmp_path / "venv")
    _ok(run_cli("install", "wheels/manifest.json", "--python", python, "--offline"))
    _pip_check_and_import(python, "gamma")


# -- exports, imports, review -----------------------------------------------------------------


def _uv() -> str:
    beside = Path(sys.executable).parent / "uv"
    found = str(beside) if beside.exists() else shutil.which("uv")
    if found is None:
        pytest.fail("uv is not installed (it is in the dev extras: pip install -e '.[dev]')")
    return found


def test_exports_of_a_direct_archive_work_with_pip_and_uv(
    served: tuple[NginxServer, Path], run_cli: RunCli, tmp_path: Path
) -> None:
    server, files = served
    url = f"{server.url}/files/alpha-1.0-py3-none-any.whl"
    _ok(run_cli("plan", f"alpha @ {url}", "--index-url", server.index_url))
    plan, _ = load_plan(tmp_path / "plan.json")

    text = export_plan(plan, "requirements")
    assert (
        f"alpha @ {url} \\\n    --hash=sha256:{_sha256(files / 'alpha-1.0-py3-none-any.whl')}"
        in text
    )
    (tmp_path / "hashed.txt").write_text(text)
    report = tmp_path / "pip.json"
    _ok(
        _run(
            [
                *(sys.executable, "-m", "pip", "--disable-pip-version-check", "install"),
                *("--dry-run", "--ignore-installed", "--no-cache-dir", "--quiet"),
                *("--require-hashes", "--report", str(report), "-r", "hashed.txt"),
            ],
            cwd=tmp_path,
        )
    )
    assert _identities(json.loads(report.read_text())) == _identities(
        json.loads(export_plan(plan, "pip-report"))
    )

    lock = tmp_path / "pylock.toml"
    lock.write_text(export_plan(plan, "pylock"))
    assert "[packages.archive]" in lock.read_text()
    python = new_venv(tmp_path / "venv")
    env = {**os.environ, "UV_CACHE_DIR": str(tmp_path / "uv-cache"), "UV_NO_CONFIG": "1"}
    done = subprocess.run(
        [_uv(), "pip", "install", "--no-index", "--python", str(python), "-r", str(lock)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    _pip_check_and_import(python, "alpha")

    # Each export comes back as the same direct artifacts.
    formats: tuple[tuple[Literal["pip-report", "pylock", "requirements"], str], ...] = (
        ("pylock", "pylock.toml"),
        ("pip-report", "r.json"),
        ("requirements", "h.txt"),
    )
    for fmt, name in formats:
        (tmp_path / name).write_text(export_plan(plan, fmt))
        _ok(run_cli("import", name, "-o", f"back-{fmt}.json", "--index-url", server.index_url))
        back, _ = load_plan(tmp_path / f"back-{fmt}.json")
        alpha = next(a for a in back.artifacts if a.name == "alpha")
        assert (alpha.direct, alpha.url, alpha.sha256) == (True, url, plan_sha(plan, "alpha"))


def plan_sha(plan: Plan, name: str) -> str | None:
    return next(a.sha256 for a in plan.artifacts if a.name == name)


def test_review_commands_name_direct_artifacts(
    served: tuple[NginxServer, Path],
    run_cli: RunCli,
    tmp_path: Path,
    bare_repo: tuple[Path, str],
) -> None:
    server, _files = served
    bare, commit = bare_repo
    project = _project(tmp_path / "proj")
    url = f"{server.url}/files/alpha-1.0-py3-none-any.whl"
    (tmp_path / "requirements.txt").write_text(
        f"alpha @ {url}\ngit+{bare.as_uri()}@v1.2#egg=gamma\n"
    )
    _ok(run_cli("plan", "-r", "requirements.txt", "--index-url", server.index_url))
    audit = json.loads(_ok(run_cli("audit", "plan.json", "--format", "json")).stdout)["audit"]
    sources = {n["project"]: n["detail"] for n in audit["direct"]}
    assert sources == {
        "alpha": f"URL {url}",
        "gamma": f"git {bare.as_uri()} commit {commit} (asked for v1.2)",
    }
    assert {n["project"]: n["detail"] for n in audit["sdists"]} == {"gamma": "vcs"}
    assert url not in audit["indexes"]

    (tmp_path / "policy.yaml").write_text("allow_direct_urls: false\nallow_vcs: false\n")
    done = run_cli("audit", "plan.json", "--policy", "policy.yaml")
    assert done.returncode == 1
    assert "allow_direct_urls" in done.stdout + done.stderr
    assert "allow_vcs" in done.stdout + done.stderr
    done = run_cli("fetch", "plan.json", "--policy", "policy.yaml")
    assert done.returncode != 0 and not (tmp_path / "wheels" / "manifest.json").exists()

    shown = _ok(run_cli("show", "plan.json")).stdout
    assert "vcs, direct" in shown and "direct" in shown.split("alpha", 1)[1].splitlines()[0]

    # The same inputs with gamma from a directory instead: diff names the change of origin.
    (tmp_path / "requirements.txt").write_text(f"alpha @ {url}\n./proj\n")
    _ok(run_cli("plan", "-r", "requirements.txt", "--index-url", server.index_url, "-o", "b.json"))
    diff = _ok(run_cli("diff", "plan.json", "b.json")).stdout
    assert "Changed origins" in diff and "directory proj" in diff
    (project / "gamma" / "__init__.py").write_text("VALUE = 5\n")
    _ok(run_cli("plan", "-r", "requirements.txt", "--index-url", server.index_url, "-o", "c.json"))
    diff = _ok(run_cli("diff", "b.json", "c.json")).stdout
    assert "Changed source trees" in diff and "WARNING" not in diff


def test_plan_inside_the_project_leaves_itself_out_of_the_tree(
    index_url: str, run_cli: RunCli, tmp_path: Path
) -> None:
    _project(tmp_path / "p")
    args = ("--index-url", index_url, "-o", "p/plan.json")
    _ok(run_cli("plan", "./p", *args))
    plan, _ = load_plan(tmp_path / "p" / "plan.json")
    gamma = next(a for a in plan.artifacts if a.name == "gamma")
    assert gamma.path == "." and gamma.exclude == ("plan.json", "wheels")
    # Planned again over its own plan, after a fetch filled p/wheels: the same digest.
    _ok(run_cli("fetch", "p/plan.json"))
    _ok(run_cli("plan", "./p", *args))
    again, _ = load_plan(tmp_path / "p" / "plan.json")
    assert next(a for a in again.artifacts if a.name == "gamma").sha256 == gamma.sha256
    _ok(run_cli("fetch", "p/plan.json"))


def test_local_paths_are_relative_to_the_plan(
    served: tuple[NginxServer, Path], run_cli: RunCli, tmp_path: Path
) -> None:
    server, files = served
    project = _project(tmp_path / "p")
    (project / "dist").mkdir()
    shutil.copy(files / "alpha-1.0-py3-none-any.whl", project / "dist")
    (project / "requirements.txt").write_text("./dist/alpha-1.0-py3-none-any.whl\n.\n")
    _ok(
        run_cli(
            "plan", "-r", "p/requirements.txt", "--index-url", server.index_url, "-o", "p/plan.json"
        )
    )
    moved = tmp_path / "moved"
    project.rename(moved)
    _ok(run_cli("fetch", "moved/plan.json"))
    python = new_venv(tmp_path / "venv")
    _ok(run_cli("install", "moved/wheels/manifest.json", "--python", python))
    _pip_check_and_import(python, "gamma")
    _pip_check_and_import(python, "alpha")


def test_run_installs_an_editable_and_a_direct_url(
    served: tuple[NginxServer, Path], run_cli: RunCli, tmp_path: Path, gamma: Path
) -> None:
    server, _files = served
    url = f"{server.url}/files/alpha-1.0-py3-none-any.whl"
    python = new_venv(tmp_path / "venv")
    done = run_cli(
        "run",
        "-e",
        "./gamma",
        f"alpha @ {url}",
        "--index-url",
        server.index_url,
        "--python",
        python,
    )
    _ok(done)
    assert "+ gamma==1.0" in done.stdout and "+ alpha==1.0" in done.stdout
    (gamma / "gamma" / "__init__.py").write_text("VALUE = 7\n")
    assert _value(python) == "7"
    assert _direct_url(python, "alpha")["url"] == url
    _pip_check_and_import(python, "alpha")


def test_pyproject_dependency_by_url(
    served: tuple[NginxServer, Path], run_cli: RunCli, tmp_path: Path
) -> None:
    server, _files = served
    url = f"{server.url}/files/alpha-1.0-py3-none-any.whl"
    (tmp_path / "pyproject.toml").write_text(
        f'[project]\nname = "app"\nversion = "0"\ndependencies = ["alpha @ {url}"]\n'
    )
    _ok(run_cli("plan", "-r", "pyproject.toml", "--index-url", server.index_url))
    plan, _ = load_plan(tmp_path / "plan.json")
    alpha = next(a for a in plan.artifacts if a.name == "alpha")
    assert alpha.direct and alpha.url == url
