"""pip and uv install from a bundle's files and index, with the network really absent.

The bundle is what ``fetchplan bundle`` writes for a plan made by the real planner; pip and uv
then run inside ``unshare -n`` with their own indexes switched off (``--no-index``,
``--offline``), each into a fresh virtual environment.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.conftest import MakeIndex, MakeIndexServer
from tests.support.airgap import run_without_network
from tests.support.wheels import Dist

TIMEOUT = float(os.environ.get("FETCHPLAN_TEST_TIMEOUT", "120"))
DISTS = [
    Dist("app", "1.0", requires=["lib>=2"]),
    Dist("lib", "2.0", requires_python=">=3.8"),
    Dist("lib", "1.0"),
]


def _uv() -> str:
    beside = Path(sys.executable).parent / "uv"
    found = str(beside) if beside.exists() else shutil.which("uv")
    if found is None:
        pytest.fail("uv is not installed (it is in the dev extras: pip install -e '.[dev]')")
    return found


@pytest.fixture
def bundle(
    make_index: MakeIndex,
    index_server: MakeIndexServer,
    tmp_path: Path,
    fetchplan_cmd: list[str],
    cli_env: dict[str, str],
) -> Path:
    server = index_server(make_index(DISTS))
    for argv in (
        ["plan", "app", "--index-url", server.index_url, "--isolated", "--no-cache"],
        ["bundle", "plan.json", "-o", "bundle", "--no-cache", "--progress", "none"],
    ):
        done = subprocess.run(
            [*fetchplan_cmd, *argv], capture_output=True, text=True, env=cli_env,
            cwd=tmp_path, timeout=TIMEOUT, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    server.close()
    return tmp_path / "bundle"


def _venv(path: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    return path / "bin" / "python"


def _installs(argv: Sequence[str], python: Path, env: dict[str, str]) -> None:
    done = run_without_network(argv, env, timeout=TIMEOUT)
    assert done.returncode == 0, done.stdout + done.stderr
    shown = run_without_network(
        [str(python), "-c", "import app, lib; print(app.__version__, lib.__version__)"], env
    )
    assert shown.stdout.split() == ["1.0", "2.0"], shown.stderr


@pytest.mark.parametrize("where", ["find-links", "index-url"])
def test_pip_installs_from_the_bundle(
    where: str, bundle: Path, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    python = _venv(tmp_path / "venv")
    source = (
        ["--no-index", "--find-links", str(bundle)]
        if where == "find-links"
        else ["--index-url", (bundle / "simple").resolve().as_uri()]
    )
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    _installs(
        [*pip, "--python", str(python), "install", "--no-cache-dir", *source, "app"],
        python,
        cli_env,
    )


def test_uv_installs_from_the_bundle(bundle: Path, tmp_path: Path, cli_env: dict[str, str]) -> None:
    python = _venv(tmp_path / "venv")
    env = {**cli_env, "UV_CACHE_DIR": str(tmp_path / "uv-cache"), "UV_NO_CONFIG": "1"}
    _installs(
        [_uv(), "pip", "install", "--offline", "--no-index", "--find-links", str(bundle),
         "--python", str(python), "app"],
        python,
        env,
    )  # fmt: skip
    # Through the PEP 503 index as well, with uv's own copy of the files gone.
    shutil.rmtree(tmp_path / "uv-cache")
    other = _venv(tmp_path / "other")
    _installs(
        [_uv(), "pip", "install", "--offline", "--index-url",
         (bundle / "simple").resolve().as_uri(), "--python", str(other), "app"],
        other,
        env,
    )  # fmt: skip
