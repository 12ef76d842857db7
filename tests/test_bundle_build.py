"""``fetchplan bundle --build-local``: a bundle that carries the wheel built from a local project.

A plan of a local directory project (its in-tree backend notes each ``build_wheel`` in a
marker file outside the tree) is bundled with ``--build-local``; ``verify`` re-hashes the
built wheel; an offline install from the bundle, with the index gone, installs that wheel
without running the backend; a wheel whose recorded source is not the verified archive is
passed over for a build from the archive. The same for a tar bundle and a VCS artifact.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

from fetchplan.schemas.plan import load_plan
from tests.conftest import RunCli
from tests.support.hostile import new_venv
from tests.support.nginx import NginxServer
from tests.test_direct import (
    INHOUSE_BACKEND,
    INHOUSE_PYPROJECT,
    _ok,
    _pip_check_and_import,
    _value,
    served,  # noqa: F401 - a fixture
)
from tests.test_direct_kinds import _bare

WHEEL = "gamma-1.0-py3-none-any.whl"
ARCHIVE = "gamma-1.0.src.tar"
_BUILD_WHEEL = "def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):\n"


def _marked_project(root: Path, marker: Path) -> Path:
    """The gamma project with its in-tree backend, whose build_wheel appends to ``marker``."""
    backend = INHOUSE_BACKEND.replace(
        _BUILD_WHEEL, f"{_BUILD_WHEEL}    open({str(marker)!r}, 'a').write('built\\n')\n"
    )
    assert backend != INHOUSE_BACKEND
    (root / "gamma").mkdir(parents=True)
    (root / "pyproject.toml").write_text(INHOUSE_PYPROJECT)
    (root / "gamma_backend.py").write_text(backend)
    (root / "gamma" / "__init__.py").write_text("VALUE = 1\n")
    return root


def _builds(marker: Path) -> int:
    return len(marker.read_text().splitlines()) if marker.exists() else 0


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_bundle_build_local_carries_the_wheel_to_an_offline_install(
    served: tuple[NginxServer, Path],  # noqa: F811
    run_cli: RunCli,
    tmp_path: Path,
) -> None:
    server, _files = served
    marker = tmp_path / "builds.txt"
    _marked_project(tmp_path / "gamma", marker)
    _ok(run_cli("plan", "./gamma", "--index-url", server.index_url, "-o", "plan.json"))
    plan, _ = load_plan(tmp_path / "plan.json")
    gamma = next(a for a in plan.artifacts if a.name == "gamma")
    assert (gamma.kind, gamma.filename) == ("directory", ARCHIVE)

    _ok(run_cli("bundle", "plan.json", "-o", "bundle", "--build-local"))
    assert _builds(marker) == 1
    bundle = tmp_path / "bundle"
    described = json.loads((bundle / "bundle.json").read_text())
    wheel = bundle / "built" / WHEEL
    assert described["built"] == [
        {
            "artifact": ARCHIVE,
            "filename": WHEEL,
            "path": f"built/{WHEEL}",
            "sha256": _sha256(wheel),
            "size": wheel.stat().st_size,
            "source_sha256": gamma.sha256,
        }
    ]
    # The source archive is carried too, for an interpreter the wheel does not fit.
    assert _sha256(bundle / ARCHIVE) == gamma.sha256
    done = _ok(run_cli("verify", "bundle"))
    assert "not listed" not in done.stderr

    server.close()
    python = new_venv(tmp_path / "venv")
    _ok(run_cli("install", "bundle", "--python", python, "--offline"))
    assert _builds(marker) == 1  # the carried wheel, no build
    assert _value(python) == "1"
    _pip_check_and_import(python, "gamma")

    # A wheel said to come from another archive is not used: install builds from the archive.
    described["built"][0]["source_sha256"] = "0" * 64
    (bundle / "bundle.json").write_text(json.dumps(described))
    _ok(run_cli("verify", "bundle"))
    other = new_venv(tmp_path / "other")
    _ok(run_cli("install", "bundle", "--python", other, "--offline"))
    assert _builds(marker) == 2
    assert _value(other) == "1"


def test_a_changed_byte_in_the_built_wheel_fails_verify_and_install(
    served: tuple[NginxServer, Path],  # noqa: F811
    run_cli: RunCli,
    tmp_path: Path,
) -> None:
    server, _files = served
    marker = tmp_path / "builds.txt"
    _marked_project(tmp_path / "gamma", marker)
    _ok(run_cli("plan", "./gamma", "--index-url", server.index_url, "-o", "plan.json"))
    _ok(run_cli("bundle", "plan.json", "-o", "bundle", "--build-local"))
    wheel = tmp_path / "bundle" / "built" / WHEEL
    data = bytearray(wheel.read_bytes())
    data[len(data) // 2] ^= 0x01
    wheel.write_bytes(bytes(data))

    done = run_cli("verify", "bundle")
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if WHEEL in line]
    assert len(lines) == 1 and "sha256 mismatch" in lines[0], done.stderr
    python = new_venv(tmp_path / "venv")
    done = run_cli("install", "bundle", "--python", python, "--offline")
    assert done.returncode != 0 and WHEEL in done.stderr
    assert _builds(marker) == 1

    # A wheel name with a directory in it is refused by the schema, naming the field.
    described = json.loads((tmp_path / "bundle" / "bundle.json").read_text())
    described["built"][0]["filename"] = f"../{WHEEL}"
    (tmp_path / "bundle" / "bundle.json").write_text(json.dumps(described))
    done = run_cli("verify", "bundle")
    assert done.returncode != 0 and "built[0].filename" in done.stderr, done.stderr


def test_build_local_refuses_an_editable_in_one_line(
    served: tuple[NginxServer, Path],  # noqa: F811
    run_cli: RunCli,
    tmp_path: Path,
) -> None:
    server, _files = served
    _marked_project(tmp_path / "gamma", tmp_path / "builds.txt")
    _ok(run_cli("plan", "-e", "./gamma", "--index-url", server.index_url, "-o", "plan.json"))
    done = run_cli("bundle", "plan.json", "-o", "bundle", "--build-local")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "editable" in done.stderr, done.stderr
    assert not (tmp_path / "bundle").exists()
    assert not (tmp_path / "builds.txt").exists()


def test_a_tar_bundle_carries_the_built_wheel(
    served: tuple[NginxServer, Path],  # noqa: F811
    run_cli: RunCli,
    tmp_path: Path,
) -> None:
    server, _files = served
    marker = tmp_path / "builds.txt"
    _marked_project(tmp_path / "gamma", marker)
    _ok(run_cli("plan", "./gamma", "--index-url", server.index_url, "-o", "plan.json"))
    _ok(run_cli("bundle", "plan.json", "-o", "bundle.tar", "--build-local"))
    with tarfile.open(tmp_path / "bundle.tar") as tar:
        assert f"bundle/built/{WHEEL}" in tar.getnames()
    _ok(run_cli("verify", "bundle.tar"))
    server.close()
    python = new_venv(tmp_path / "venv")
    _ok(run_cli("install", "bundle.tar", "--python", python, "--offline"))
    assert _builds(marker) == 1
    assert _value(python) == "1"


def test_build_local_builds_a_vcs_artifact_too(
    served: tuple[NginxServer, Path],  # noqa: F811
    run_cli: RunCli,
    tmp_path: Path,
) -> None:
    server, _files = served
    marker = tmp_path / "builds.txt"
    bare = tmp_path / "repo.git"
    commit = _bare(_marked_project(tmp_path / "work", marker), bare)
    requirement = f"gamma @ git+{bare.as_uri()}@v1.2"
    _ok(run_cli("plan", requirement, "--index-url", server.index_url, "-o", "plan.json"))
    _ok(run_cli("bundle", "plan.json", "-o", "bundle", "--build-local"))
    assert _builds(marker) == 1
    described = json.loads((tmp_path / "bundle" / "bundle.json").read_text())
    (built,) = described["built"]
    archive = tmp_path / "bundle" / built["artifact"]
    assert built["artifact"] == f"gamma-1.0-git-{commit[:12]}.src.tar"
    assert built["filename"] == WHEEL and built["source_sha256"] == _sha256(archive)
    _ok(run_cli("verify", "bundle"))
    server.close()
    python = new_venv(tmp_path / "venv")
    _ok(run_cli("install", "bundle", "--python", python, "--offline"))
    assert _builds(marker) == 1, "the carried wheel was built again at install"
    assert _value(python) == "1"
