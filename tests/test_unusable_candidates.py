"""A version whose metadata cannot be prepared is unusable, not the end of the plan.

As pip and uv do, the resolver drops such a version (a Python 2 sdist reached while
backtracking, say), says so at ``-v``, and goes on with the others; only when nothing usable is
left does the plan fail, in one line naming each version tried and why. The broken sdists here
have an in-tree backend written in Python 2, so preparing their metadata fails on import.
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import MakeIndexServer, RunCli
from tests.support.wheels import Dist, build_sdist, build_wheel

PY2_BACKEND = 'print "this backend is Python 2"\n'
PY2_PYPROJECT = (
    '[build-system]\nrequires = []\nbuild-backend = "py2_backend"\nbackend-path = ["."]\n'
)


def _python2_sdist(directory: Path, name: str, version: str) -> Path:
    return build_sdist(
        directory,
        Dist(name, version, metadata_version="2.2"),
        dynamic=["Requires-Dist"],
        pyproject=PY2_PYPROJECT,
        extra_files={"py2_backend.py": PY2_BACKEND},
    )


def _plan(run_cli: RunCli, index: str, *args: str) -> tuple[int, str, str]:
    out = run_cli("plan", *args, "-i", index, "-o", "plan.json", "--isolated", "--no-cache")
    return out.returncode, out.stdout, out.stderr


def test_an_unpreparable_version_reached_while_backtracking_is_skipped(
    index_server: MakeIndexServer, run_cli: RunCli, tmp_path: Path
) -> None:
    dists = tmp_path / "dists"
    server = index_server(
        [
            build_wheel(dists, Dist("app", "2.0", requires=["lib>=2"])),
            build_wheel(dists, Dist("app", "1.0", requires=["lib<2"])),
            _python2_sdist(dists, "lib", "2.0"),
            build_wheel(dists, Dist("lib", "1.0")),
        ]
    )
    code, _stdout, stderr = _plan(run_cli, server.index_url, "app", "-v")
    assert code == 0, stderr
    assert "lib 2.0 is unusable" in stderr
    assert "lib-2.0.tar.gz" in stderr
    plan = (tmp_path / "plan.json").read_text()
    assert "app-1.0-py3-none-any.whl" in plan and "lib-1.0-py3-none-any.whl" in plan

    # Without -v the plan says nothing about it.
    code, _stdout, stderr = _plan(run_cli, server.index_url, "app")
    assert code == 0, stderr
    assert "unusable" not in stderr


def test_when_every_version_is_unusable_one_line_says_why(
    index_server: MakeIndexServer, run_cli: RunCli, tmp_path: Path
) -> None:
    dists = tmp_path / "dists"
    server = index_server(
        [_python2_sdist(dists, "lib", "2.0"), _python2_sdist(dists, "lib", "1.0")]
    )
    code, _stdout, stderr = _plan(run_cli, server.index_url, "lib")
    assert code != 0
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "no usable version of lib" in lines[0]
    assert "2.0 (" in lines[0] and "1.0 (" in lines[0]
    assert "cannot prepare the metadata of lib 2.0" in lines[0]
    assert not (tmp_path / "plan.json").exists()

    # A pin on an unusable version names it as rejected, with the reason.
    code, _stdout, stderr = _plan(run_cli, server.index_url, "lib==1.0")
    assert code != 0
    assert "lib 1.0" in stderr and "cannot prepare the metadata" in stderr
