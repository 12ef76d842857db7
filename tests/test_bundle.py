"""``fetchplan bundle``, then ``verify`` and ``install`` with the network really absent.

The plan is made by the real planner against a served index; the bundle is made while the
server runs; then the server is stopped and everything else runs inside ``unshare -n`` (a
network namespace with nothing in it), into fresh virtual environments.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from fetchplan.bundle import BundleError, verify_bundle, write_tar
from fetchplan.schemas import load_document
from fetchplan.schemas.manifest import load_manifest
from tests.conftest import MakeIndex, MakeIndexServer
from tests.support.airgap import run_without_network
from tests.support.servers import IndexServer
from tests.support.wheels import Dist

DISTS = [
    Dist("app", "1.0", requires=["lib>=2"], console_scripts={"app": "app:main"}),
    Dist("lib", "2.0", requires_python=">=3.8", padding=2000),
    Dist("lib", "1.0"),
]
TIMEOUT = float(os.environ.get("FETCHPLAN_TEST_TIMEOUT", "120"))


@dataclass
class Planned:
    plan: Path
    server: IndexServer
    env: dict[str, str]
    cmd: list[str]
    cwd: Path

    def run(self, *args: str | Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.cmd, *map(str, args)],
            capture_output=True,
            text=True,
            env=self.env,
            cwd=self.cwd,
            timeout=TIMEOUT,
            check=False,
        )

    def offline(self, *args: str | Path) -> subprocess.CompletedProcess[str]:
        return run_without_network([*self.cmd, *map(str, args)], self.env, self.cwd, TIMEOUT)

    def bundle(self, output: str, *args: str) -> Path:
        done = self.run("bundle", self.plan, "-o", output, "--progress", "none", *args)
        assert done.returncode == 0, done.stderr
        return self.cwd / output


@pytest.fixture
def planned(
    make_index: MakeIndex,
    index_server: MakeIndexServer,
    tmp_path: Path,
    fetchplan_cmd: list[str],
    cli_env: dict[str, str],
) -> Planned:
    server = index_server(make_index(DISTS))
    planned = Planned(tmp_path / "plan.json", server, cli_env, fetchplan_cmd, tmp_path)
    done = planned.run("plan", "app", "--index-url", server.index_url, "--isolated", "--no-cache")
    assert done.returncode == 0, done.stderr
    return planned


def _site(venv: Path) -> Path:
    return next((venv / "lib").glob("python*/site-packages"))


def _python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _tamper(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("output", ["bundle", "bundle.tar.gz"])
def test_install_from_bundle_without_network(planned: Planned, output: str) -> None:
    bundle = planned.bundle(output)
    # Before the server goes: inside the namespace even loopback is gone.
    fetch = f"import urllib.request as u; u.urlopen({planned.server.index_url!r}, timeout=5)"
    probe = run_without_network([sys.executable, "-c", fetch], planned.env)
    assert probe.returncode != 0
    assert "URLError" in probe.stderr or "unreachable" in probe.stderr
    planned.server.close()

    verified = planned.offline("verify", bundle)
    assert verified.returncode == 0, verified.stderr
    assert "bundle verified: 2 files" in verified.stdout
    assert verified.stderr == ""
    venv = planned.cwd / "venv"
    done = planned.offline("install", bundle, "--venv", venv, "--offline")
    assert done.returncode == 0, done.stderr
    assert {" + app==1.0", " + lib==2.0"} <= set(done.stdout.splitlines())
    imported = run_without_network(
        [str(_python(venv)), "-c", "import app, lib; print(app.__version__, lib.__version__)"],
        planned.env,
    )
    assert imported.stdout.split() == ["1.0", "2.0"], imported.stderr
    script = run_without_network([str(venv / "bin" / "app")], planned.env)
    assert script.stdout.strip() == "app 1.0"
    if output != "bundle":
        assert not any(p.name.startswith(".bundle") for p in planned.cwd.iterdir())


def test_bundle_contents(planned: Planned) -> None:
    bundle = planned.bundle("out")
    description = load_document(bundle / "bundle.json", "bundle")
    manifest = load_manifest(bundle / "manifest.json")
    assert description["plan"]["sha256"] == manifest.plan.sha256
    assert description["index"] == {"path": "simple/", "projects": ["app", "lib"]}
    assert sorted(p.name for p in bundle.iterdir()) == sorted(
        ["README.txt", "bundle.json", "manifest.json", "plan.json", "simple"]
        + [a.path for a in manifest.artifacts]
    )
    lib = next(a for a in manifest.artifacts if a.name == "lib")
    page = (bundle / "simple" / "lib" / "index.html").read_text()
    assert (
        f'<a href="../../{lib.filename}#sha256={lib.sha256}" data-requires-python="&gt;=3.8">'
        f"{lib.filename}</a>"
    ) in page
    root_page = (bundle / "simple" / "index.html").read_text()
    assert '<a href="app/">app</a>' in root_page and '<a href="lib/">lib</a>' in root_page
    readme = (bundle / "README.txt").read_text()
    assert "--no-index --find-links BUNDLE 'app'" in readme
    assert "uv pip install --offline" in readme
    assert not (bundle / ".fetchplan").exists()
    for path in bundle.rglob("*"):
        if path.is_file():
            assert path.stat().st_mode & 0o044 == 0o044, path


def test_tar_is_deterministic_and_plain(planned: Planned, tmp_path: Path) -> None:
    bundle = planned.bundle("out")
    manifest = load_manifest(bundle / "manifest.json")
    files = [
        "bundle.json", "plan.json", "manifest.json", "README.txt",
        "simple/index.html", "simple/app/index.html", "simple/lib/index.html",
        *(a.path for a in manifest.artifacts),
    ]  # fmt: skip
    mtime = int(datetime.fromisoformat(manifest.created.replace("Z", "+00:00")).timestamp())
    first, second = tmp_path / "a" / "b.tar.gz", tmp_path / "c" / "b.tar.gz"
    write_tar(bundle, reversed(files), first, mtime=mtime)
    write_tar(bundle, files, second, mtime=mtime)
    assert first.read_bytes() == second.read_bytes()
    with tarfile.open(first) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names, key=lambda n: n.split("/"))
    assert all(n == "b" or n.startswith("b/") for n in names)
    assert {(m.uid, m.gid, m.uname, m.gname, m.mtime) for m in members} == {(0, 0, "", "", mtime)}
    assert {m.mode for m in members if m.isfile()} == {0o644}
    assert all(m.isfile() or m.isdir() for m in members)


@pytest.mark.parametrize("output", ["bundle", "bundle.tar"])
def test_tampered_bundle_is_refused(planned: Planned, output: str) -> None:
    directory = planned.bundle("work")
    manifest = load_manifest(directory / "manifest.json")
    lib = next(a for a in manifest.artifacts if a.name == "lib")
    _tamper(directory / lib.path)
    target = directory
    if output != "bundle":
        target = planned.cwd / output
        files = [str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file()]
        write_tar(directory, files, target, mtime=0)
    planned.server.close()
    shown = str(directory / lib.path) if output == "bundle" else f"{target}:{lib.path}"

    verified = planned.offline("verify", target)
    assert verified.returncode == 1
    assert f"fetchplan: {shown}: sha256 mismatch: expected {lib.sha256}, got " in verified.stderr
    assert "1 problem" in verified.stderr

    venv = planned.cwd / "venv"
    done = planned.offline("install", target, "--venv", venv)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1, done.stderr
    assert f"failed verification: {shown}: sha256 mismatch" in done.stderr
    assert not venv.exists()
    # An existing environment stays as it was.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    before = sorted(p.name for p in _site(venv).iterdir())
    assert planned.offline("install", target, "--venv", venv).returncode == 1
    assert sorted(p.name for p in _site(venv).iterdir()) == before


def test_verify_reports_every_problem(planned: Planned) -> None:
    bundle = planned.bundle("out")
    manifest = load_manifest(bundle / "manifest.json")
    app = next(a for a in manifest.artifacts if a.name == "app")
    (bundle / "extra.whl").write_bytes(b"nobody listed me")
    clean = planned.run("verify", bundle)
    assert clean.returncode == 0
    assert f"fetchplan: warning: {bundle / 'extra.whl'}: not listed in the manifest" in clean.stderr

    (bundle / app.path).unlink()
    page = bundle / "simple" / "lib" / "index.html"
    page.write_text(page.read_text().replace("data-requires-python", "data-x"))
    (bundle / "simple" / "evil").mkdir()
    (bundle / "simple" / "evil" / "index.html").write_text("<a href='../../extra.whl'>x</a>")
    description = json.loads((bundle / "bundle.json").read_text())
    description["plan"]["sha256"] = "0" * 64
    (bundle / "bundle.json").write_text(json.dumps(description))
    done = planned.run("verify", bundle)
    assert done.returncode == 1
    problems = [
        line for line in done.stderr.splitlines() if not line.startswith("fetchplan: warning")
    ]
    assert problems == [
        f"fetchplan: {bundle / 'bundle.json'}: plan.sha256: {'0' * 64} is not the digest of "
        f"plan.json ({manifest.plan.sha256})",
        f"fetchplan: {bundle / app.path}: missing",
        f"fetchplan: {page}: index page does not match the manifest",
        f"fetchplan: {bundle / 'simple' / 'evil' / 'index.html'}: not a page of this bundle's "
        "index",
        f"fetchplan: {bundle}: 4 problems",
    ]
    assert planned.run("verify", bundle, "--plan-sha256", "1" * 64).returncode == 1

    broken = json.loads((bundle / "manifest.json").read_text())
    broken["artifacts"][0]["path"] = "../outside.whl"
    (bundle / "manifest.json").write_text(json.dumps(broken))
    done = planned.run("verify", bundle)
    assert "artifacts[0].path: '../outside.whl' is not inside the bundle" in done.stderr


def test_a_file_of_another_size_names_the_document_that_lists_its_size(
    planned: Planned,
) -> None:
    bundle = planned.bundle("sized")
    manifest = load_manifest(bundle / "manifest.json")
    lib = next(a for a in manifest.artifacts if a.name == "lib")
    with (bundle / lib.path).open("ab") as fh:
        fh.write(b"appended")
    done = planned.run("verify", bundle)
    assert done.returncode == 1
    assert (
        f"fetchplan: {bundle / lib.path}: {lib.size + 8} bytes, "
        f"{bundle / 'manifest.json'} says {lib.size}\n"
    ) in done.stderr


def test_verify_a_plain_destination_and_a_plan_digest(planned: Planned) -> None:
    fetched = planned.run("fetch", planned.plan, "--progress", "none", "--isolated")
    assert fetched.returncode == 0, fetched.stderr
    destination = planned.cwd / "wheels"
    digest = load_manifest(destination / "manifest.json").plan.sha256
    done = planned.run("verify", destination, "--plan-sha256", digest.upper())
    assert done.returncode == 0, done.stderr
    assert "destination verified: 2 files" in done.stdout
    wrong = planned.run("verify", destination / "manifest.json", "--plan-sha256", "f" * 64)
    assert wrong.returncode == 1
    assert f"its digest {digest} is not the expected {'f' * 64}" in wrong.stderr


def test_bundle_reuses_an_earlier_fetch(planned: Planned) -> None:
    fetched = planned.run("fetch", planned.plan, "--no-cache", "--isolated")
    assert fetched.returncode == 0, fetched.stderr
    planned.server.close()
    done = planned.offline(
        "bundle", planned.plan, "-o", "out", "--no-cache", "--offline", "--progress", "none"
    )
    assert done.returncode == 0, done.stderr
    assert "0 downloaded, 0 resumed, 0 cache, 2 existing" in done.stdout
    manifest = load_manifest(planned.cwd / "out" / "manifest.json")
    assert {a.source for a in manifest.artifacts} == {"existing"}
    assert planned.run("verify", "out").returncode == 0


def test_failed_bundle_is_no_bundle_and_resumes(planned: Planned) -> None:
    lib = next(p for p in (planned.server.root / "files").glob("lib-2.0*.whl"))
    saved = lib.read_bytes()
    lib.unlink()
    done = planned.run(
        "bundle", planned.plan, "-o", "out.tar", "--no-cache", "--retries", "1", "--progress",
        "none",
    )  # fmt: skip
    assert done.returncode == 1
    assert "bundle not written" in done.stderr
    assert not (planned.cwd / "out.tar").exists()
    assert not (planned.cwd / ".out.tar.partial" / "bundle.json").exists()
    lib.write_bytes(saved)
    planned.bundle("out.tar", "--no-cache")
    assert not (planned.cwd / ".out.tar.partial").exists()
    assert planned.run("verify", "out.tar").returncode == 0


def test_bundle_refuses_a_foreign_directory(planned: Planned) -> None:
    (planned.cwd / "docs").mkdir()
    (planned.cwd / "docs" / "notes.txt").write_text("mine")
    done = planned.run("bundle", planned.plan, "-o", "docs")
    assert done.returncode == 1
    assert "is neither a bundle nor a fetch destination" in done.stderr
    assert sorted(p.name for p in (planned.cwd / "docs").iterdir()) == ["notes.txt"]


def _tar_with(path: Path, member: tarfile.TarInfo, data: bytes = b"") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tar:
        ok = tarfile.TarInfo("b/bundle.json")
        ok.size = 2
        tar.addfile(ok, io.BytesIO(b"{}"))
        tar.addfile(member, io.BytesIO(data) if member.isfile() else None)
    return path


@pytest.mark.parametrize(
    ("name", "kind", "message"),
    [
        ("../evil.txt", tarfile.REGTYPE, "escapes the target directory"),
        ("b/../../evil.txt", tarfile.REGTYPE, "escapes the target directory"),
        ("/tmp/evil.txt", tarfile.REGTYPE, "is not a relative path"),
        ("b/link", tarfile.SYMTYPE, "is a symbolic link"),
        ("b/hard", tarfile.LNKTYPE, "is a hard link"),
        ("b/dev", tarfile.CHRTYPE, "is a device"),
        ("b/fifo", tarfile.FIFOTYPE, "is a FIFO"),
        ("b/bundle.json", tarfile.REGTYPE, "appears twice"),
    ],
)
def test_unsafe_archives_are_refused(
    name: str, kind: bytes, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    member = tarfile.TarInfo(name)
    member.type = kind
    member.linkname = "/etc/passwd" if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE) else ""
    member.size = 4 if kind == tarfile.REGTYPE else 0
    archive = _tar_with(tmp_path / "deep" / "x.tar", member, b"evil")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    with pytest.raises(BundleError) as caught:
        verify_bundle(archive)
    assert str(caught.value).startswith(f"{archive}: member {name!r} {message}")
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "deep" / "evil.txt").exists()
    assert list(scratch.iterdir()) == []  # the extraction directory is gone again


def test_install_refuses_an_unsafe_archive(
    tmp_path: Path, fetchplan_cmd: list[str], cli_env: dict[str, str]
) -> None:
    member = tarfile.TarInfo("b/wheel.whl")
    member.type = tarfile.SYMTYPE
    member.linkname = "../../../outside.whl"
    archive = _tar_with(tmp_path / "x.tar", member)
    done = subprocess.run(
        [*fetchplan_cmd, "install", str(archive), "--venv", str(tmp_path / "venv")],
        capture_output=True, text=True, env=cli_env, timeout=TIMEOUT, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert f"{archive}: member 'b/wheel.whl' is a symbolic link" in done.stderr
    assert not (tmp_path / "venv").exists()


def test_schema_problems_inside_a_tar_are_named_by_member(tmp_path: Path) -> None:
    readme = tarfile.TarInfo("b/README.txt")
    readme.size = 2
    archive = _tar_with(tmp_path / "x.tar", readme, b"hi")
    report = verify_bundle(archive)
    assert not report.ok
    assert f"{archive}:bundle.json: format: missing required field" in report.problems


def test_bundle_side_never_imports_the_planner(cli_env: dict[str, str]) -> None:
    code = (
        "import importlib, pkgutil, sys\n"
        "import fetchplan.bundle\n"
        "for m in pkgutil.iter_modules(fetchplan.bundle.__path__):\n"
        "    importlib.import_module('fetchplan.bundle.' + m.name)\n"
        "for name in ('bundle', 'verify', 'install'):\n"
        "    importlib.import_module('fetchplan.commands.' + name)\n"
        "from fetchplan.commands import install, verify\n"
        "print(sorted(m for m in sys.modules if m.startswith('fetchplan.planner')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=cli_env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_bundle_offline_from_a_mirror(planned: Planned) -> None:
    first = planned.bundle("first")
    planned.server.close()
    done = planned.offline(
        "bundle", planned.plan, "-o", "second.tgz", "--offline", "--no-cache",
        "--mirror", first, "--progress", "none",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "2 mirror" in done.stdout
    report = verify_bundle(planned.cwd / "second.tgz")
    assert report.ok and report.files == 2, report.problems


def _rewritten(
    source: Path,
    output: Path,
    change: Callable[[tarfile.TarInfo, bytes], list[tuple[tarfile.TarInfo, bytes]]],
) -> Path:
    """``source`` copied member by member into ``output``, each through ``change``."""
    with tarfile.open(source) as tar, tarfile.open(output, "w") as out:
        for member in tar.getmembers():
            source_file = tar.extractfile(member) if member.isfile() else None
            data = source_file.read() if source_file is not None else b""
            for info, body in change(member, data):
                out.addfile(info, io.BytesIO(body) if info.isfile() else None)
    return output


def _added(member: tarfile.TarInfo, data: bytes) -> list[tuple[tarfile.TarInfo, bytes]]:
    if not member.name.endswith("/README.txt"):
        return [(member, data)]
    extra = tarfile.TarInfo(member.name.rsplit("/", 1)[0] + "/evil-init.pth")
    extra.size = 24
    return [(member, data), (extra, b"import os; os.system('')")]


def _grown(member: tarfile.TarInfo, data: bytes) -> list[tuple[tarfile.TarInfo, bytes]]:
    if not member.name.endswith(".whl"):
        return [(member, data)]
    member.size = len(data) + 1_000_000  # the same header, a bigger body
    return [(member, data + bytes(1_000_000))]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_added, "evil-init.pth' is not a file the bundle's manifest lists"),
        (_grown, "bytes, the manifest lists"),
    ],
    ids=["unlisted", "oversized"],
)
def test_a_tar_member_the_manifest_does_not_list_is_refused_before_it_is_written(
    planned: Planned,
    change: Callable[[tarfile.TarInfo, bytes], list[tuple[tarfile.TarInfo, bytes]]],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bundle = planned.bundle("good.tar")
    evil = _rewritten(bundle, planned.cwd / "evil.tar", change)
    scratch = planned.cwd / "tmp"
    scratch.mkdir()
    env = {**planned.env, "TMPDIR": str(scratch)}
    for args in (("verify", evil), ("install", evil, "--venv", planned.cwd / "venv")):
        done = subprocess.run(
            [*planned.cmd, *map(str, args)], capture_output=True, text=True, env=env,
            cwd=planned.cwd, timeout=TIMEOUT, check=False,
        )  # fmt: skip
        assert done.returncode != 0
        assert "Traceback" not in done.stderr
        assert message in done.stderr, done.stderr
        assert list(scratch.iterdir()) == []
    assert not (planned.cwd / "venv").exists()
