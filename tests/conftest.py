"""Fixtures shared by every test.

Every test runs hermetic: pip's configuration and ``PIP_*`` variables of the machine are hidden
(``PIP_CONFIG_FILE`` set to the null device makes pip read no config file at all), the user
cache and ``~/.netrc`` point into the test's temporary directory, and proxies are cleared so
loopback requests go straight to the test's own servers.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def hermetic_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    saved = dict(os.environ)
    home = tmp_path_factory.mktemp("home")
    for key in list(os.environ):
        if key.startswith(("PIP_", "UV_")) or key.lower() in {
            "http_proxy",
            "https_proxy",
            "all_proxy",
            "no_proxy",
        }:
            del os.environ[key]
    os.environ["PIP_CONFIG_FILE"] = os.devnull
    os.environ["XDG_CACHE_HOME"] = str(home / "cache")
    os.environ["NETRC"] = str(home / "netrc")
    os.environ["NO_PROXY"] = "*"
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture
def cli_env() -> dict[str, str]:
    """Environment for running ``python -m fetchplan`` in a subprocess from this checkout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


@pytest.fixture
def fetchplan_cmd() -> list[str]:
    """The argv prefix that runs this checkout's fetchplan in a subprocess."""
    return [sys.executable, "-m", "fetchplan"]
