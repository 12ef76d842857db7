"""``fetch --mirror``: the plan's files from a directory or another index, verified by the
plan's hashes, with the plan's own URLs as the fallback (never when offline).

The origin index answers 500 to everything unless a test needs it, so a file that came from
it would fail the run: what arrives came from the mirror.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from fetchplan.executor import FetchOptions, RetryPolicy, execute_plan
from fetchplan.schemas.manifest import load_manifest
from tests.conftest import MakeIndex, MakeIndexServer
from tests.support.airgap import plan_for_files
from tests.support.servers import Formats, IndexRequestHandler, IndexServer, ServerOptions
from tests.support.wheels import Dist

DISTS = [
    Dist("app", "1.0", requires=["lib"]),
    Dist("lib", "2.0", padding=3000),
    Dist("util", "0.1"),
]
FAST = RetryPolicy(attempts=2, backoff_base=0.01, backoff_max=0.02)
CLI_ENV = {
    "FETCHPLAN_RETRY_BASE": "0.01",
    "FETCHPLAN_RETRY_MAX": "0.02",
    "FETCHPLAN_RETRIES": "2",
}


def _fail_all(handler: IndexRequestHandler) -> bool:
    handler.respond(500, b"the origin must not be used\n")
    return True


@pytest.fixture
def root(make_index: MakeIndex) -> Path:
    """A static index: root/files/<wheels> and root/simple/<project>/index.{html,json}."""
    return make_index(DISTS)


@pytest.fixture
def origin(root: Path, index_server: MakeIndexServer) -> IndexServer:
    server = index_server(root)
    server.set_handler_hook(_fail_all)
    return server


def _wheels(root: Path) -> list[Path]:
    return sorted(p for p in (root / "files").iterdir() if p.suffix == ".whl")


def _plan(tmp_path: Path, root: Path, origin: IndexServer) -> Path:
    return plan_for_files(tmp_path / "plan.json", _wheels(root), origin.url, requested=["app"])


def _options(tmp_path: Path, mirror: str | Path, **kwargs: object) -> FetchOptions:
    return FetchOptions(
        destination=tmp_path / "dest",
        use_cache=False,
        use_pip_config=False,
        use_netrc=False,
        retry=FAST,
        mirror=str(mirror),
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("layout", ["flat", "files-subdir", "pep503-tree", "file-url"])
def test_mirror_directory_layouts(
    layout: str, root: Path, origin: IndexServer, tmp_path: Path
) -> None:
    plan = _plan(tmp_path, root, origin)
    if layout == "flat":
        mirror = tmp_path / "flat"
        mirror.mkdir()
        for wheel in _wheels(root):
            shutil.copyfile(wheel, mirror / wheel.name)
        where = mirror.resolve().as_uri()
    elif layout == "files-subdir":
        mirror, where = root, (root / "files").resolve().as_uri()
    else:
        # Only the PEP 503 pages are in the mirror directory; their links lead to ../../files.
        mirror, where = root / "simple", (root / "files").resolve().as_uri()
    argument = mirror.resolve().as_uri() if layout == "file-url" else str(mirror)
    if layout == "file-url":
        where = (root / "files").resolve().as_uri()
    result = execute_plan(plan, _options(tmp_path, argument))
    assert result.ok, result.failures
    assert result.sources()["mirror"] == 3
    manifest = load_manifest(tmp_path / "dest" / "manifest.json")
    assert {a.source for a in manifest.artifacts} == {"mirror"}
    for entry in manifest.artifacts:
        assert entry.url == f"{where}/{entry.filename}"
        assert (tmp_path / "dest" / entry.path).read_bytes() == (
            root / "files" / entry.filename
        ).read_bytes()
    assert origin.requests() == []


@pytest.mark.parametrize(
    ("kind", "formats"), [("index", "json"), ("index", "html"), ("flat-url", "both")]
)
def test_mirror_url(
    kind: str,
    formats: Formats,
    *,
    root: Path,
    origin: IndexServer,
    index_server: MakeIndexServer,
    tmp_path: Path,
) -> None:
    mirror = index_server(root, options=ServerOptions(formats=formats))
    url = mirror.index_url if kind == "index" else f"{mirror.url}/files/"
    result = execute_plan(_plan(tmp_path, root, origin), _options(tmp_path, url))
    assert result.ok, result.failures
    manifest = load_manifest(tmp_path / "dest" / "manifest.json")
    assert {a.source for a in manifest.artifacts} == {"mirror"}
    assert {a.url for a in manifest.artifacts} == {mirror.file_url(w.name) for w in _wheels(root)}
    assert origin.requests() == []
    fetched = {r.path for r in mirror.requests("/files/") if r.status == 200}
    assert fetched == {f"/files/{w.name}" for w in _wheels(root)}


def test_mirror_credentials_stay_out_of_the_manifest(
    root: Path, origin: IndexServer, index_server: MakeIndexServer, tmp_path: Path
) -> None:
    mirror = index_server(root, options=ServerOptions(auth=("reader", "s3cret")))
    url = mirror.index_url.replace("http://", "http://reader:s3cret@")
    result = execute_plan(_plan(tmp_path, root, origin), _options(tmp_path, url))
    assert result.ok, result.failures
    text = (tmp_path / "dest" / "manifest.json").read_text()
    assert "s3cret" not in text and "reader" not in text
    assert all(r.headers.get("authorization") for r in mirror.requests())
    assert origin.requests() == []


def test_what_the_mirror_lacks_or_spoils_comes_from_the_plans_url(
    root: Path, origin: IndexServer, tmp_path: Path
) -> None:
    origin.set_handler_hook(None)
    wheels = _wheels(root)
    mirror = tmp_path / "partial"
    mirror.mkdir()
    shutil.copyfile(wheels[0], mirror / wheels[0].name)  # app: intact
    spoiled = bytearray(wheels[1].read_bytes())  # lib: one byte changed
    spoiled[len(spoiled) // 2] ^= 0xFF
    (mirror / wheels[1].name).write_bytes(bytes(spoiled))
    # util: absent
    result = execute_plan(_plan(tmp_path, root, origin), _options(tmp_path, mirror))
    assert result.ok, result.failures
    manifest = load_manifest(tmp_path / "dest" / "manifest.json")
    sources = {a.filename: (a.source, a.url) for a in manifest.artifacts}
    assert sources[wheels[0].name] == ("mirror", (mirror / wheels[0].name).resolve().as_uri())
    assert sources[wheels[1].name] == ("downloaded", origin.file_url(wheels[1].name))
    assert sources[wheels[2].name] == ("downloaded", origin.file_url(wheels[2].name))
    assert (tmp_path / "dest" / wheels[1].name).read_bytes() == wheels[1].read_bytes()
    assert {r.path for r in origin.requests()} == {f"/files/{w.name}" for w in wheels[1:]}


def test_offline_mirror_lacking_or_spoiling_a_file_names_it(
    root: Path,
    origin: IndexServer,
    tmp_path: Path,
    fetchplan_cmd: list[str],
    cli_env: dict[str, str],
) -> None:
    origin.set_handler_hook(None)  # reachable and willing: offline must still not ask it
    wheels = _wheels(root)
    mirror = tmp_path / "partial"
    mirror.mkdir()
    shutil.copyfile(wheels[0], mirror / wheels[0].name)
    spoiled = bytearray(wheels[1].read_bytes())
    spoiled[100] ^= 1
    (mirror / wheels[1].name).write_bytes(bytes(spoiled))
    plan = _plan(tmp_path, root, origin)
    done = subprocess.run(
        [*fetchplan_cmd, "fetch", str(plan), "--dest", str(tmp_path / "dest"), "--no-cache",
         "--isolated", "--progress", "none", "--mirror", str(mirror), "--offline"],
        capture_output=True, text=True, env={**cli_env, **CLI_ENV}, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    failed = [line for line in done.stderr.splitlines() if line.startswith("fetchplan: failed:")]
    assert any(
        f"{wheels[2].name}: offline: {wheels[2].name} is not in the mirror" in line
        for line in failed
    ), done.stderr
    assert any(f"{wheels[1].name}: mirror " in line and "sha256" in line for line in failed)
    assert not any(wheels[0].name in line for line in failed)
    manifest = load_manifest(tmp_path / "dest" / "manifest.json")
    assert [a.filename for a in manifest.artifacts] == [wheels[0].name]
    assert not (tmp_path / "dest" / wheels[1].name).exists()
    assert origin.requests() == []


def test_offline_refuses_a_mirror_url(
    *,
    root: Path,
    origin: IndexServer,
    index_server: MakeIndexServer,
    tmp_path: Path,
    fetchplan_cmd: list[str],
    cli_env: dict[str, str],
) -> None:
    mirror = index_server(root)
    plan = _plan(tmp_path, root, origin)
    done = subprocess.run(
        [*fetchplan_cmd, "fetch", str(plan), "--dest", str(tmp_path / "dest"), "--isolated",
         "--mirror", mirror.index_url, "--offline"],
        capture_output=True, text=True, env=cli_env, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "--offline forbids it" in done.stderr
    assert mirror.requests() == [] and origin.requests() == []
    assert not (tmp_path / "dest").exists()


def test_mirror_must_exist(tmp_path: Path, root: Path, origin: IndexServer) -> None:
    from fetchplan.errors import InputError

    with pytest.raises(InputError, match="no such directory"):
        execute_plan(_plan(tmp_path, root, origin), _options(tmp_path, tmp_path / "nowhere"))


def test_seed_directory_files_are_reverified(
    root: Path, origin: IndexServer, tmp_path: Path
) -> None:
    origin.set_handler_hook(None)
    wheels = _wheels(root)
    seed = tmp_path / "earlier"
    seed.mkdir()
    shutil.copyfile(wheels[0], seed / wheels[0].name)
    spoiled = bytearray(wheels[1].read_bytes())
    spoiled[10] ^= 1
    (seed / wheels[1].name).write_bytes(bytes(spoiled))
    options = FetchOptions(
        destination=tmp_path / "dest",
        use_cache=False,
        use_pip_config=False,
        retry=FAST,
        seed_dirs=(seed,),
    )
    result = execute_plan(_plan(tmp_path, root, origin), options)
    assert result.ok, result.failures
    manifest = load_manifest(tmp_path / "dest" / "manifest.json")
    sources = {a.filename: a.source for a in manifest.artifacts}
    assert sources == {
        wheels[0].name: "existing",
        wheels[1].name: "downloaded",
        wheels[2].name: "downloaded",
    }
    assert (tmp_path / "dest" / wheels[1].name).read_bytes() == wheels[1].read_bytes()
    assert (seed / wheels[1].name).read_bytes() == bytes(spoiled)  # the seed is left alone
    assert {r.path for r in origin.requests()} == {f"/files/{w.name}" for w in wheels[1:]}
