"""sdists with dynamic metadata: prepared when planning, built offline when installing.

The end-to-end tests serve, over loopback, an sdist whose dependencies only its ``setup.py``
knows (PKG-INFO says ``Dynamic: Requires-Dist`` and lists none), next to real setuptools and
wheel wheels taken from ``$FETCHPLAN_TEST_TOOLS`` (``.ci/run`` downloads them once; the tests
never reach a registry). Others use an in-tree backend (``backend-path``) without the
``prepare_metadata_for_build_wheel`` hook, hostile archives, and a build that fails.
"""

from __future__ import annotations

import io
import logging
import subprocess
import tarfile
from pathlib import Path

import pytest

from fetchplan.build.errors import BuildError
from fetchplan.build.source import LEGACY_BACKEND, parse_build_system, unpack_sdist
from fetchplan.install import TargetInterpreter
from fetchplan.install.environment import installed_distributions
from fetchplan.pipeline import InstallOptions, install_from
from fetchplan.planner.api import PlanOptions, make_plan
from fetchplan.schemas import dumps_document
from fetchplan.schemas.plan import Artifact, Plan, load_plan, write_plan
from tests.conftest import MakeIndexServer
from tests.support.hostile import new_venv, snapshot
from tests.support.wheels import Dist, build_sdist, build_wheel

TIMEOUT = 300

SETUP_PY = """\
from setuptools import setup

# Computed here, so only a build knows it: PKG-INFO marks Requires-Dist as dynamic.
requirements = ["dep" + ">=1"]
setup(name="legacy", version="1.0", packages=["legacy"], install_requires=requirements)
"""

FAILING_SETUP_PY = """\
import sys
from setuptools import setup

if "bdist_wheel" in sys.argv:
    sys.exit("legacy refuses to build a wheel today")
setup(name="legacy", version="1.0", packages=["legacy"], install_requires=["dep>=1"])
"""

# An in-tree backend with build_wheel only: metadata must come from pyproject_hooks' fallback.
INHOUSE_BACKEND = """\
import base64, hashlib, os, zipfile

NAME, VERSION = "inhouse", "2.0"


def _row(name, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    info = f"{NAME}-{VERSION}.dist-info"
    members = {
        f"{NAME}/__init__.py": b"VALUE = 42\\n",
        f"{info}/METADATA": (
            f"Metadata-Version: 2.1\\nName: {NAME}\\nVersion: {VERSION}\\n"
            "Requires-Dist: dep>=1\\n\\n"
        ).encode(),
        f"{info}/WHEEL": (
            b"Wheel-Version: 1.0\\nGenerator: inhouse\\nRoot-Is-Purelib: true\\n"
            b"Tag: py3-none-any\\n"
        ),
    }
    record = "\\n".join([*(_row(n, d) for n, d in members.items()), f"{info}/RECORD,,"]) + "\\n"
    members[f"{info}/RECORD"] = record.encode()
    filename = f"{NAME}-{VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, filename), "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return filename
"""
INHOUSE_PYPROJECT = (
    '[build-system]\nrequires = []\nbuild-backend = "inhouse_backend"\nbackend-path = ["."]\n'
)


def _legacy_index(tmp_path: Path, build_tools: list[Path], setup_py: str = SETUP_PY) -> list[Path]:
    dists = tmp_path / "dists"
    sdist = build_sdist(
        dists,
        Dist("legacy", "1.0", metadata_version="2.2"),
        dynamic=["Requires-Dist"],
        setup_py=setup_py,
    )
    return [sdist, build_wheel(dists, Dist("dep", "1.0")), *build_tools]


def _inhouse_index(tmp_path: Path) -> list[Path]:
    """inhouse 2.0's sdist (in-tree backend, no prepare hook, no build requirements) and dep."""
    dists = tmp_path / "dists"
    sdist = build_sdist(
        dists,
        Dist("inhouse", "2.0", metadata_version="2.2"),
        dynamic=["Requires-Dist"],
        pyproject=INHOUSE_PYPROJECT,
        extra_files={"inhouse_backend.py": INHOUSE_BACKEND},
    )
    return [sdist, build_wheel(dists, Dist("dep", "1.0"))]


def _run(cmd: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        cmd, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    assert done.returncode == 0, done.stderr
    return done


def _check_plan(plan: Plan, setuptools: str) -> None:
    dumps_document(plan.to_dict(), "plan", "plan.json")
    by_name: dict[str, Artifact] = {a.name: a for a in plan.artifacts}
    assert sorted(by_name) == ["dep", "legacy", "setuptools"]
    legacy = by_name["legacy"]
    assert (legacy.kind, legacy.requested, legacy.build_dependency) == ("sdist", True, False)
    # The dependency only setup.py states: learnt from the backend, not from PKG-INFO.
    assert [(d.name, d.requirement) for d in legacy.dependencies] == [("dep", "dep>=1")]
    assert not by_name["dep"].build_dependency
    assert by_name["setuptools"].build_dependency
    assert by_name["setuptools"].filename == setuptools
    assert all(a.targets is None and a.build_targets is None for a in plan.artifacts)


def test_dynamic_sdist_planned_fetched_and_installed_offline(
    tmp_path: Path,
    build_tools: list[Path],
    index_server: MakeIndexServer,
    cli_env: dict[str, str],
    fetchplan_cmd: list[str],
) -> None:
    server = index_server(_legacy_index(tmp_path, build_tools))
    plan_path = tmp_path / "out" / "plan.json"
    cache = tmp_path / "cache"
    _run(
        [*fetchplan_cmd, "plan", "legacy", "-i", server.index_url, "--isolated",
         "--cache-dir", str(cache), "-o", str(plan_path)],
        cli_env,
    )  # fmt: skip
    plan, _ = load_plan(plan_path)
    _check_plan(plan, build_tools[0].name)
    # The prepared metadata is kept by the sdist's sha256.
    sdist_sha = next(a.sha256 for a in plan.artifacts if a.kind == "sdist")
    assert sdist_sha is not None
    assert (cache / "prepared-metadata" / sdist_sha[:2] / f"{sdist_sha}.json").is_file()
    shown = _run([*fetchplan_cmd, "show", str(plan_path)], cli_env).stdout
    assert "build dependency" in shown and "sdist" in shown

    _run([*fetchplan_cmd, "fetch", str(plan_path)], cli_env)
    server.close()  # from here on, nothing but the fetched files

    venv = tmp_path / "venv"
    # Every HTTP request now goes to a dead proxy: the install must not need any.
    offline = {**cli_env, "NO_PROXY": "", "http_proxy": "http://127.0.0.1:9", "https_proxy": ""}
    done = _run(
        [*fetchplan_cmd, "install", str(plan_path.parent / "wheels" / "manifest.json"),
         "--venv", str(venv)],
        offline,
    )  # fmt: skip
    assert " + legacy==1.0" in done.stdout.splitlines()
    python = venv / "bin" / "python"
    imported = _run([str(python), "-c", "import legacy, dep; print(legacy.__version__)"], cli_env)
    assert imported.stdout.strip() == "1.0"
    installed = installed_distributions(TargetInterpreter.query(python))
    assert sorted(installed) == ["dep", "legacy"]  # setuptools only built, never installed


def test_prepared_metadata_is_reused(
    tmp_path: Path,
    build_tools: list[Path],
    index_server: MakeIndexServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = index_server(_legacy_index(tmp_path, build_tools))
    options = PlanOptions(
        requirements=("legacy",),
        index_url=server.index_url,
        isolated=True,
        cache_dir=tmp_path / "cache",
        output=tmp_path / "plan.json",
    )
    with caplog.at_level(logging.INFO, logger="fetchplan"):
        first = make_plan(options).plan
        assert sum("preparing the metadata" in r.message for r in caplog.records) == 1
        caplog.clear()
        second = make_plan(options).plan
    assert not any("preparing the metadata" in r.message for r in caplog.records)
    assert [a.to_dict() for a in first.artifacts] == [a.to_dict() for a in second.artifacts]
    _check_plan(second, build_tools[0].name)


def _fetched(
    tmp_path: Path,
    server_url: str,
    requirement: str,
    cli_env: dict[str, str],
    fetchplan_cmd: list[str],
) -> Path:
    """Plan ``requirement`` (library) and fetch it (CLI); return the manifest."""
    plan_path = tmp_path / "out" / "plan.json"
    result = make_plan(
        PlanOptions(
            requirements=(requirement,),
            index_url=server_url,
            isolated=True,
            cache_dir=tmp_path / "cache",
            output=plan_path,
        )
    )
    plan_path.parent.mkdir(parents=True, exist_ok=True)
    write_plan(plan_path, result.plan)
    _run([*fetchplan_cmd, "fetch", str(plan_path)], cli_env)
    return plan_path.parent / "wheels" / "manifest.json"


def test_failed_build_writes_nothing(
    tmp_path: Path,
    build_tools: list[Path],
    index_server: MakeIndexServer,
    cli_env: dict[str, str],
    fetchplan_cmd: list[str],
) -> None:
    server = index_server(_legacy_index(tmp_path, build_tools, FAILING_SETUP_PY))
    manifest = _fetched(tmp_path, server.index_url, "legacy", cli_env, fetchplan_cmd)
    server.close()
    target = TargetInterpreter.query(new_venv(tmp_path / "venv"))
    before = snapshot(Path(target.prefix))
    with pytest.raises(BuildError) as caught:
        install_from(manifest, target)
    message = str(caught.value)
    assert message.startswith("legacy-1.0.tar.gz: build_wheel failed: exit status 1: ")
    assert message.endswith("legacy refuses to build a wheel today")
    # dep's wheel was fine, but nothing is installed when any build fails.
    assert snapshot(Path(target.prefix)) == before


def test_backend_without_prepare_hook_and_no_build_requirements(
    tmp_path: Path,
    index_server: MakeIndexServer,
    cli_env: dict[str, str],
    fetchplan_cmd: list[str],
) -> None:
    server = index_server(_inhouse_index(tmp_path))
    manifest = _fetched(tmp_path, server.index_url, "inhouse", cli_env, fetchplan_cmd)
    server.close()
    plan, _ = load_plan(manifest.parent / "plan.json")
    assert [(a.filename, a.build_dependency) for a in plan.artifacts] == [
        ("dep-1.0-py3-none-any.whl", False),
        ("inhouse-2.0.tar.gz", False),
    ]
    assert [d.requirement for d in plan.artifacts[1].dependencies] == ["dep>=1"]

    target = TargetInterpreter.query(new_venv(tmp_path / "venv"))
    report = install_from(manifest, target, InstallOptions(compile=False))
    assert [(p.name, p.action) for p in report.projects] == [
        ("dep", "installed"),
        ("inhouse", "installed"),
    ]
    value = _run([target.executable, "-c", "import inhouse; print(inhouse.VALUE)"], cli_env)
    assert value.stdout.strip() == "42"


def test_run_builds_the_sdist_after_fetching(
    tmp_path: Path,
    index_server: MakeIndexServer,
    cli_env: dict[str, str],
    fetchplan_cmd: list[str],
) -> None:
    server = index_server(_inhouse_index(tmp_path))
    done = _run(
        [*fetchplan_cmd, "run", "inhouse", "-i", server.index_url, "--isolated", "--no-cache",
         "--venv", str(tmp_path / "venv"), "-o", str(tmp_path / "out" / "plan.json")],
        cli_env,
    )  # fmt: skip
    assert "Installed 2 packages in " in done.stdout
    python = tmp_path / "venv" / "bin" / "python"
    value = _run([str(python), "-c", "import inhouse, dep; print(inhouse.VALUE)"], cli_env)
    assert value.stdout.strip() == "42"


def test_build_system_defaults_and_errors() -> None:
    absent = parse_build_system(None, "x.tar.gz")
    assert ([str(r) for r in absent.requires], absent.backend, absent.declared) == (
        ["setuptools>=40.8.0"],
        LEGACY_BACKEND,
        False,
    )
    no_table = parse_build_system("[project]\nname = 'x'\n", "x.tar.gz")
    assert no_table.backend == LEGACY_BACKEND and not no_table.declared
    no_backend = parse_build_system("[build-system]\nrequires = ['flit_core']\n", "x")
    assert no_backend.backend == LEGACY_BACKEND
    assert [str(r) for r in no_backend.requires] == ["flit_core"]
    for text, message in [
        ("[build-system]\nbuild-backend = 'b'\n", "x: build-system.requires: expected a list"),
        ("[build-system]\nrequires = ['ok', 'bad req ~']\n", "x: build-system.requires[1]: "),
        ("[build-system\n", "x: not valid TOML"),
        ("[build-system]\nrequires = []\nbackend-path = 'src'\n", "x: build-system.backend-path"),
    ]:
        with pytest.raises(BuildError) as caught:
            parse_build_system(text, "x")
        assert str(caught.value).startswith(message), str(caught.value)


def _tar(path: Path, members: list[tarfile.TarInfo], data: bytes = b"x") -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for info in members:
            if info.isreg():
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
            else:
                tf.addfile(info)
    return path


def test_hostile_sdists_are_refused_before_writing(tmp_path: Path) -> None:
    link = tarfile.TarInfo("evil-1.0/link")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    cases = {
        "escape": [tarfile.TarInfo("evil-1.0/ok.py"), tarfile.TarInfo("evil-1.0/../../x.py")],
        "absolute": [tarfile.TarInfo("/evil-1.0/x.py")],
        "link": [tarfile.TarInfo("evil-1.0/ok.py"), link],
        "two-tops": [tarfile.TarInfo("evil-1.0/a.py"), tarfile.TarInfo("other/b.py")],
    }
    for case, members in cases.items():
        archive = _tar(tmp_path / f"{case}.tar.gz", members)
        into = tmp_path / f"into-{case}"
        into.mkdir()
        with pytest.raises(BuildError) as caught:
            unpack_sdist(archive, "evil-1.0.tar.gz", into)
        assert str(caught.value).startswith("evil-1.0.tar.gz: "), case
        assert list(into.iterdir()) == [], case
    good = _tar(tmp_path / "good.tar.gz", [tarfile.TarInfo("good-1.0/pkg/x.py")], b"X = 1\n")
    tree = unpack_sdist(good, "good-1.0.tar.gz", tmp_path / "into-good")
    assert (tree / "pkg" / "x.py").read_bytes() == b"X = 1\n"
    assert snapshot(tmp_path / "into-good").keys() == {
        "good-1.0",
        "good-1.0/pkg",
        "good-1.0/pkg/x.py",
    }


OLD_SETUP_PY = """\
from setuptools import setup

setup(name="nested", version="0.3.1.1", packages=["nested"], install_requires=["dep>=1"])
"""


def _old_style_sdist(directory: Path) -> Path:
    """An sdist as old setuptools wrote some: setup.py, no pyproject.toml, and PKG-INFO only
    inside the .egg-info directory (not at the top level)."""
    base = "nested-0.3.1.1"
    members = {
        f"{base}/setup.py": OLD_SETUP_PY.encode(),
        f"{base}/nested/__init__.py": b"VALUE = 7\n",
        f"{base}/nested.egg-info/PKG-INFO": (
            b"Metadata-Version: 1.1\nName: nested\nVersion: 0.3.1.1\n\n"
        ),
    }
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{base}.tar.gz"
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def test_sdist_without_top_level_pkg_info_is_prepared_by_the_legacy_backend(
    tmp_path: Path,
    build_tools: list[Path],
    index_server: MakeIndexServer,
    cli_env: dict[str, str],
    fetchplan_cmd: list[str],
) -> None:
    dists = tmp_path / "dists"
    server = index_server(
        [_old_style_sdist(dists), build_wheel(dists, Dist("dep", "1.0")), *build_tools]
    )
    plan_path = tmp_path / "out" / "plan.json"
    done = _run(
        [*fetchplan_cmd, "plan", "nested==0.3.1.1", "-i", server.index_url, "--isolated",
         "--no-cache", "-o", str(plan_path)],
        cli_env,
    )  # fmt: skip
    plan, _ = load_plan(plan_path)
    by_name: dict[str, Artifact] = {a.name: a for a in plan.artifacts}
    assert sorted(by_name) == ["dep", "nested", "setuptools"], done.stderr
    nested = by_name["nested"]
    assert nested.kind == "sdist"
    # Only setup.py states it: the backend said so, not a PKG-INFO.
    assert [d.requirement for d in nested.dependencies] == ["dep>=1"]
    assert by_name["setuptools"].build_dependency
