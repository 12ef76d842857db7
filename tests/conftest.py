"""Fixtures shared by every test.

Every test runs hermetic: pip's configuration and ``PIP_*`` variables of the machine are hidden
(``PIP_CONFIG_FILE`` set to the null device makes pip read no config file at all), the user
cache and ``~/.netrc`` point into the test's temporary directory, and proxies are cleared so
loopback requests go straight to the test's own servers.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol

import pytest

from tests.support.faults import FaultServer
from tests.support.index import IndexOptions, write_index
from tests.support.netguard import loopback_only
from tests.support.nginx import NginxOptions, NginxServer
from tests.support.processes import Processes
from tests.support.pypiserver import PypiServer
from tests.support.servers import IndexServer, ServerOptions
from tests.support.tools import install_newest_pip
from tests.support.wheels import Dist, build_wheel

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True, scope="session")
def only_loopback() -> Iterator[None]:
    """No socket of the test process connects anywhere but loopback (see tests.support.netguard)."""
    with loopback_only():
        yield


@pytest.fixture
def processes() -> Iterator[Processes]:
    """``processes.start(argv, **popen) -> Popen``: child processes that do not outlive the
    test. At teardown any still running is stopped (SIGTERM, then SIGKILL), every one is
    reaped and its pipes closed, whether the test passed or failed."""
    owned = Processes()
    try:
        yield owned
    finally:
        owned.close()


@pytest.fixture(autouse=True)
def hermetic_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    saved = dict(os.environ)
    home = tmp_path_factory.mktemp("home")
    for key in list(os.environ):
        # VIRTUAL_ENV too: an activated environment is where install and run would go.
        if (
            key.startswith(("PIP_", "UV_"))
            or key == "VIRTUAL_ENV"
            or key.lower()
            in {
                "http_proxy",
                "https_proxy",
                "all_proxy",
                "no_proxy",
            }
        ):
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


@pytest.fixture(scope="session")
def test_tools() -> Path:
    """The directory of real tool wheels (newest pip, setuptools, wheel) that .ci/run fills
    once from the package registry: ``$FETCHPLAN_TEST_TOOLS``, else ``.ci-tools`` in the
    checkout. The tests serve these wheels from their own loopback servers. Fails loudly when
    the directory is missing (never skips)."""
    tools = Path(os.environ.get("FETCHPLAN_TEST_TOOLS") or REPO_ROOT / ".ci-tools")
    if not tools.is_dir():
        pytest.fail(
            f"{tools}: no tool wheels; run `bash .ci/run` once (it downloads them), or set "
            "FETCHPLAN_TEST_TOOLS to a directory holding the newest pip, setuptools and wheel "
            "wheels"
        )
    return tools


@pytest.fixture(scope="session")
def build_tools(test_tools: Path) -> list[Path]:
    """The newest setuptools and wheel wheels of the test tools, to build sdists with
    (setuptools 61 or later: the test sdists declare their metadata in pyproject.toml)."""
    from packaging.utils import parse_wheel_filename
    from packaging.version import Version

    found = []
    for project in ("setuptools", "wheel"):
        wheels = sorted(
            test_tools.glob(f"{project}-*.whl"), key=lambda p: parse_wheel_filename(p.name)[1]
        )
        if not wheels:
            pytest.fail(f"no {project} wheel in {test_tools}")
        found.append(wheels[-1])
    if parse_wheel_filename(found[0].name)[1] < Version("61"):
        pytest.fail(f"{found[0].name}: the test sdists need setuptools>=61")
    return found


@pytest.fixture(scope="session")
def newest_pip(tmp_path_factory: pytest.TempPathFactory, test_tools: Path) -> Path:
    """A Python whose pip is the newest of the test tools (26.1+: reads pylock.toml, takes
    --group), installed from its wheel."""
    return install_newest_pip(test_tools, tmp_path_factory.mktemp("newest-pip") / "venv")


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


CLI_TIMEOUT = float(os.environ.get("FETCHPLAN_TEST_TIMEOUT", "180"))


class RunCli(Protocol):
    def __call__(
        self, *args: str | Path, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]: ...


@pytest.fixture
def run_cli(fetchplan_cmd: list[str], cli_env: dict[str, str], tmp_path: Path) -> RunCli:
    """Runs ``fetchplan *args`` in ``tmp_path`` with ``env`` (default: ``cli_env``).

    Output is captured as text; a non-zero exit is the caller's to assert on.
    """

    def run(
        *args: str | Path, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*fetchplan_cmd, *map(str, args)],
            env=cli_env if env is None else env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT,
            check=False,
        )

    return run


# -- real servers (tests/support/servers.py, nginx.py, pypiserver.py) --------------------------

DistSource = Path | Sequence[Dist | Path]
"""A ``write_index`` root directory, or distributions: ``Dist`` (built as a wheel) or files."""


class MakeIndex(Protocol):
    def __call__(
        self, dists: Sequence[Dist | Path], options: IndexOptions | None = None
    ) -> Path: ...


class MakeIndexServer(Protocol):
    def __call__(
        self,
        source: DistSource,
        *,
        index_options: IndexOptions | None = None,
        options: ServerOptions | None = None,
    ) -> IndexServer: ...


class MakeNginxServer(Protocol):
    def __call__(
        self,
        source: DistSource,
        *,
        index_options: IndexOptions | None = None,
        options: NginxOptions | None = None,
    ) -> NginxServer: ...


class MakePypiServer(Protocol):
    def __call__(self, source: DistSource) -> PypiServer: ...


def _dist_files(directory: Path, dists: Sequence[Dist | Path]) -> list[Path]:
    return [build_wheel(directory, d) if isinstance(d, Dist) else Path(d) for d in dists]


@pytest.fixture
def server() -> Iterator[FaultServer]:
    """A :class:`~tests.support.faults.FaultServer` on loopback: files with scripted faults."""
    with FaultServer() as srv:
        yield srv


@pytest.fixture
def make_index(tmp_path_factory: pytest.TempPathFactory) -> MakeIndex:
    """``make_index(dists, options=None) -> root``: build wheels for ``Dist`` entries and write
    a static index (``root/files``, ``root/simple``) in a fresh directory."""

    def make(dists: Sequence[Dist | Path], options: IndexOptions | None = None) -> Path:
        built = _dist_files(tmp_path_factory.mktemp("dists"), dists)
        root = tmp_path_factory.mktemp("index")
        write_index(root, built, options)
        return root

    return make


def _index_root(make: MakeIndex, source: DistSource, options: IndexOptions | None) -> Path:
    if isinstance(source, Path):
        if options is not None:
            raise TypeError("index_options only apply when the source is a list of dists")
        return source
    return make(source, options)


@pytest.fixture
def index_server(make_index: MakeIndex) -> Iterator[MakeIndexServer]:
    """``index_server(source, *, index_options=None, options=None) -> IndexServer``: the
    in-process server over a root (or over a new index of ``source`` dists). Switches live in
    ``server.options`` and may change mid-test. Closed at teardown, which fails if a request
    handler raised unexpectedly (see ``IndexServer.errors``)."""
    servers: list[IndexServer] = []

    def make(
        source: DistSource,
        *,
        index_options: IndexOptions | None = None,
        options: ServerOptions | None = None,
    ) -> IndexServer:
        server = IndexServer(_index_root(make_index, source, index_options), options)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()
    errors = [err for server in servers for err in server.errors]
    if errors:
        raise RuntimeError(f"index server handler errors: {errors!r}")


@pytest.fixture
def nginx_server(
    make_index: MakeIndex, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MakeNginxServer]:
    """``nginx_server(source, *, index_options=None, options=None) -> NginxServer``: a real
    nginx over a root (or a new index of ``source`` dists); stopped at teardown."""
    servers: list[NginxServer] = []

    def make(
        source: DistSource,
        *,
        index_options: IndexOptions | None = None,
        options: NginxOptions | None = None,
    ) -> NginxServer:
        root = _index_root(make_index, source, index_options)
        server = NginxServer(root, tmp_path_factory.mktemp("nginx"), options)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


@pytest.fixture
def pypiserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MakePypiServer]:
    """``pypiserver(source) -> PypiServer``: pypiserver over a directory of distributions (or
    a new directory of ``source`` dists, ``Dist`` built as wheels); stopped at teardown."""
    servers: list[PypiServer] = []

    def make(source: DistSource) -> PypiServer:
        if isinstance(source, Path):
            packages = source
        else:
            packages = tmp_path_factory.mktemp("packages")
            for path in _dist_files(packages, source):
                if path.parent.resolve() != packages.resolve():
                    shutil.copyfile(path, packages / path.name)
        server = PypiServer(packages, tmp_path_factory.mktemp("pypiserver"))
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()
