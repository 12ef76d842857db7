"""The real consumers the tests compare with: uv (from the dev extras) and the newest pip
(from a wheel of the test tools), each run as a subprocess reaching only loopback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version

__all__ = ["install_newest_pip", "run_ok", "uv_command", "uv_pins"]

TIMEOUT = float(os.environ.get("FETCHPLAN_TEST_TIMEOUT", "120"))


def uv_command() -> list[str]:
    """uv beside this interpreter (the dev extras install it there), else on PATH."""
    beside = Path(sys.executable).parent / "uv"
    found = str(beside) if beside.exists() else shutil.which("uv")
    if found is None:
        pytest.fail("uv is not installed (it is in the dev extras: pip install -e '.[dev]')")
    return [found]


def run_ok(
    cmd: Sequence[str], *, cwd: Path | None = None, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``cmd``; a non-zero exit fails the test with its output."""
    result = subprocess.run(
        list(cmd),
        cwd=cwd,
        env=None if env is None else dict(env),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, f"{result.args}\n{result.stdout}\n{result.stderr}"
    return result


def install_newest_pip(tools: Path, directory: Path) -> Path:
    """A new venv in ``directory`` whose pip is the newest pip wheel of ``tools`` (26.1 or
    newer: it reads pylock.toml and takes --group); returns its python."""
    wheels = sorted(tools.glob("pip-*.whl"), key=lambda p: parse_wheel_filename(p.name)[1])
    if not wheels or parse_wheel_filename(wheels[-1].name)[1] < Version("26.1"):
        pytest.fail(f"no pip>=26.1 wheel in {tools}")
    run_ok([sys.executable, "-m", "venv", "--without-pip", str(directory)])
    python = directory / "bin" / "python"
    wheel = wheels[-1]
    # pip runs from its own wheel to install itself: the bootstrap pip documents.
    run_ok(
        [
            str(python),
            f"{wheel}/pip",
            "install",
            "--no-index",
            "--no-cache-dir",
            "--disable-pip-version-check",
            "--quiet",
            str(wheel),
        ]
    )
    return python


def uv_pins(directory: Path, index_url: str, *args: str) -> dict[str, str]:
    """What ``uv pip compile ARGS`` pins (canonical name -> version), run in ``directory``
    for this interpreter against ``index_url`` only (no config, no Python downloads)."""
    out = directory / "uv-out.txt"
    env = {
        **os.environ,
        "UV_CACHE_DIR": str(directory / "uv-cache"),
        "UV_NO_CONFIG": "1",
        "UV_PYTHON_DOWNLOADS": "never",
    }
    run_ok(
        [
            *uv_command(),
            "pip",
            "compile",
            "--quiet",
            "--python",
            sys.executable,
            "--index-url",
            index_url,
            "--no-header",
            "--no-annotate",
            *args,
            "-o",
            str(out),
        ],
        cwd=directory,
        env=env,
    )
    pins: dict[str, str] = {}
    for line in out.read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, _, version = line.strip().partition("==")
            pins[canonicalize_name(name.split("[")[0])] = version.split()[0]
    return pins
