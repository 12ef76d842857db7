"""Tests of the bench's own parts: ``python3 -m pytest -q bench/test_bench.py`` (a few seconds).

They reach only loopback: a throwaway TCP server and the delaying proxy in front of it.
"""

from __future__ import annotations

import hashlib
import io
import json
import socket
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import realindex  # noqa: E402
import report  # noqa: E402
import staticindex  # noqa: E402
from delayproxy import Link  # noqa: E402
from measure import AccessLog, CpuGate, Scratch, disk_bytes, run_measured  # noqa: E402
from tools import Job, _pick, target_commands  # noqa: E402


def test_link_serialises_then_delays() -> None:
    link = Link(rate_bps=8e6, delay=0.025, queue_s=0.01)  # 1 MB/s
    assert link.schedule(1000, now=0.0) == pytest.approx(0.001 + 0.025)
    # A second chunk at the same instant waits for the first to be serialised.
    assert link.schedule(1000, now=0.0) == pytest.approx(0.002 + 0.025)
    assert link.backlog(0.0) == pytest.approx(0.002)
    # Once the link is idle, a chunk goes out at its own arrival time.
    assert link.schedule(0, now=1.0) == pytest.approx(1.025)


def test_unlimited_link_only_delays() -> None:
    link = Link(rate_bps=0, delay=0.05, queue_s=0.01)
    assert link.schedule(10**9, now=2.0) == pytest.approx(2.05)
    assert link.backlog(2.0) == 0.0


def _echo_server() -> tuple[socket.socket, int]:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()

    def serve() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            with conn:
                while data := conn.recv(65536):
                    conn.sendall(data)

    threading.Thread(target=serve, daemon=True).start()
    return srv, srv.getsockname()[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_proxy_delays_round_trips_and_keeps_bytes(tmp_path: Path) -> None:
    srv, port = _echo_server()
    listen = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable, str(HERE / "delayproxy.py"), "serve",
            "--listen", f"127.0.0.1:{listen}", "--upstream", f"127.0.0.1:{port}",
            "--delay-ms", "40", "--rate-mbit", "80", "--port-file", str(tmp_path / "port"),
        ]
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while not (tmp_path / "port").exists():
            assert time.monotonic() < deadline, "proxy did not start"
            time.sleep(0.02)
        with socket.create_connection(("127.0.0.1", listen), timeout=10) as c:
            t0 = time.perf_counter()
            c.sendall(b"ping")
            assert c.recv(16) == b"ping"
            first = time.perf_counter() - t0
            t1 = time.perf_counter()
            c.sendall(b"pong")
            assert c.recv(16) == b"pong"
            second = time.perf_counter() - t1
            # Handshake round trip + request round trip, then one round trip.
            assert 0.155 <= first < 0.4
            assert 0.075 <= second < 0.2
            payload = bytes(range(256)) * 4096  # 1 MiB: 0.1 s at 80 Mbit/s
            t2 = time.perf_counter()
            c.sendall(payload)
            got = bytearray()
            while len(got) < len(payload):
                got += c.recv(1 << 16)
            elapsed = time.perf_counter() - t2
            assert bytes(got) == payload
            # Serialised once each way at 10 MB/s, plus a round trip.
            assert elapsed >= 0.1 + 0.08
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        srv.close()


def _wheel(path: Path, name: str, version: str, requires: list[str]) -> Path:
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nRequires-Python: >=3.8\n"
    meta += "".join(f"Requires-Dist: {r}\n" for r in requires)
    whl = path / f"{name}-{version}-py3-none-any.whl"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(f"{name}/__init__.py", "")
        zf.writestr(f"{name}-{version}.dist-info/METADATA", meta)
    whl.write_bytes(buf.getvalue())
    return whl


def test_index_variants(tmp_path: Path) -> None:
    whl = _wheel(tmp_path, "alpha", "1.0", ["beta>=1"])
    info = staticindex.wheel_info(whl, {})
    staticindex.build_index(tmp_path / "idx", {whl.name: whl}, [info])
    page = json.loads((tmp_path / "idx/pep658/simple/alpha/index.json").read_text())
    (entry,) = page["files"]
    assert entry["hashes"]["sha256"] == hashlib.sha256(whl.read_bytes()).hexdigest()
    assert entry["size"] == whl.stat().st_size
    assert entry["requires-python"] == ">=3.8"
    meta = (tmp_path / "idx/pep658/files" / f"{whl.name}.metadata").read_bytes()
    assert entry["core-metadata"] == {"sha256": hashlib.sha256(meta).hexdigest()}
    html = (tmp_path / "idx/pep658/simple/alpha/index.html").read_text()
    assert 'data-core-metadata="sha256=' in html
    assert 'data-requires-python="&gt;=3.8"' in html
    no = json.loads((tmp_path / "idx/nometa/simple/alpha/index.json").read_text())
    assert no["files"][0]["core-metadata"] is False
    assert not (tmp_path / "idx/nometa/files" / f"{whl.name}.metadata").exists()
    assert "data-core-metadata" not in (tmp_path / "idx/nometa/simple/alpha/index.html").read_text()


def test_link_limit_model() -> None:
    res = SimpleNamespace(depth=3, meta_bytes=250_000, wheel_bytes=25_000_000)
    # RTT 50 ms, 25 MB/s.
    assert report.link_limit("plan", res, 25, 200) == pytest.approx(0.05 * 7 + 0.01)
    assert report.link_limit("fetch", res, 25, 200) == pytest.approx(0.1 + 1.0)
    assert report.link_limit("run", res, 25, 200) == pytest.approx(0.35 + 1.01)


def test_option_detection() -> None:
    help_text = "usage: fetchplan plan [-h] [-r FILE] [--index-url URL]\n  -o, --output PLAN\n"
    assert _pick(help_text, "--index-url", "-i") == "--index-url"
    assert _pick(help_text, "--requirement", "-r") == "-r"
    assert _pick(help_text, "--out", "-o") == "-o"
    assert _pick(help_text, "--constraint", "-c") is None


def test_run_measured_and_kill_when(tmp_path: Path) -> None:
    ok = run_measured(
        [sys.executable, "-c", "b = bytearray(60 << 20); print('x')"],
        env={},
        cwd=tmp_path,
        log=tmp_path / "a.log",
        timeout=30,
    )
    assert ok.returncode == 0
    assert ok.maxrss_mb >= 60
    assert (tmp_path / "a.log").read_text().strip() == "x"
    out = tmp_path / "out"
    out.mkdir()
    writer = (
        "import time, pathlib\n"
        f"p = pathlib.Path({str(out / 'f')!r})\n"
        "for i in range(200):\n"
        "    p.write_bytes(b'x' * 1000 * i); time.sleep(0.01)\n"
    )
    killed = run_measured(
        [sys.executable, "-c", writer],
        env={},
        cwd=tmp_path,
        log=tmp_path / "b.log",
        timeout=30,
        kill_when=lambda: disk_bytes(out) >= 50_000,
    )
    assert killed.killed
    assert killed.returncode == -9
    assert killed.wall_s < 1.5


def test_access_log_counts_only_new_whole_lines(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text("100 200 /a\n")
    acc = AccessLog(log)
    with log.open("a") as fh:
        fh.write("250 200 /b\n30 206 /c\n7 200 /partial")
    assert acc.take() == (280, 2, ["/b", "/c"])
    with log.open("a") as fh:
        fh.write("\n")
    assert acc.take() == (7, 1, ["/partial"])


def test_scratch_keeps_every_directory_until_closed(tmp_path: Path) -> None:
    scratch = Scratch(tmp_path)
    first, second = scratch.new(), scratch.new()
    assert first != second
    (first / "venv").mkdir()
    (first / "venv" / "file").write_bytes(b"x")
    assert (first / "venv" / "file").exists() and second.is_dir()
    scratch.close()
    assert not first.exists() and not second.exists() and not scratch.root.exists()
    assert list(tmp_path.iterdir()) == []


def test_cpu_gate_waits_for_the_machine_to_be_at_speed() -> None:
    probes = iter([0.10, 0.10, 0.25, 0.24, 0.12, 0.30, 0.11, 0.12])
    slept: list[float] = []
    gate = CpuGate(lambda: next(probes), pause=2.0, sleep=slept.append)
    assert gate.wait() == (0.10, True)  # the first probe sets the pace
    # Each check is the faster of two probes. 0.24 is too slow (over 1.25 x 0.10): wait and
    # probe again; 0.12 is within it.
    assert gate.wait() == (0.12, True)
    assert slept == [2.0]
    assert gate.wait() == (0.11, True)
    assert gate.waited_s == 2.0


def test_cpu_gate_gives_up_after_max_wait() -> None:
    slept: list[float] = []
    probes = iter([0.1, 0.1] + [0.3] * 20)
    gate = CpuGate(lambda: next(probes), max_wait=4.0, pause=2.0, sleep=slept.append)
    gate.wait()
    assert gate.wait() == (0.3, False)
    assert slept == [2.0, 2.0]
    assert gate.waited_s == 4.0


def _page(files: list[dict[str, object]]) -> dict[str, object]:
    return {"meta": {"api-version": "1.1", "_last-serial": "7"}, "name": "alpha",
            "versions": ["1.0", "2.0"], "files": files}  # fmt: skip


_FILES: list[dict[str, object]] = [
    {
        "filename": "alpha-1.0-py3-none-any.whl",
        "url": "https://index.invalid/packages/aa/alpha-1.0-py3-none-any.whl",
        "hashes": {"sha256": "11"},
        "requires-python": ">=3.8",
        "core-metadata": {"sha256": "ff"},
        "yanked": "broken",
        "size": 10,
    },
    {
        "filename": "alpha-2.0-py3-none-any.whl",
        "url": "https://index.invalid/packages/bb/alpha-2.0-py3-none-any.whl",
        "hashes": {"sha256": "22"},
        "requires-python": None,
        "yanked": False,
        "size": 20,
        "upload-time": "2026-01-01T00:00:00Z",
    },
    {
        "filename": "alpha-2.0.tar.gz",
        "url": "https://index.invalid/packages/cc/alpha-2.0.tar.gz",
        "hashes": {"sha256": "33"},
        "yanked": False,
        "size": 30,
    },
]


def test_rewrite_page_points_every_file_at_the_bench_and_keeps_the_rest() -> None:
    page = _page([dict(f) for f in _FILES])
    own = {"alpha-2.0-py3-none-any.whl": "2222"}
    meta = {"alpha-2.0-py3-none-any.whl": "m2"}
    out = realindex.rewrite_page(page, own, meta, pep658=True)
    assert out["meta"] == page["meta"] and out["versions"] == ["1.0", "2.0"]
    old, mine, sdist = out["files"]
    # Every file still listed, each URL relative to the bench's files/ (404 unless it is there).
    assert [f["url"] for f in out["files"]] == [
        "../../files/alpha-1.0-py3-none-any.whl",
        "../../files/alpha-2.0-py3-none-any.whl",
        "../../files/alpha-2.0.tar.gz",
    ]
    # The set's own file gets its hash and the bench's metadata; the rest keep theirs but lose
    # metadata attributes the bench could not serve.
    assert mine["hashes"] == {"sha256": "2222"}
    assert mine["core-metadata"] == mine["dist-info-metadata"] == {"sha256": "m2"}
    assert mine["upload-time"] == "2026-01-01T00:00:00Z"
    assert old["hashes"] == {"sha256": "11"} and "core-metadata" not in old
    assert old["yanked"] == "broken" and old["requires-python"] == ">=3.8"
    assert sdist["hashes"] == {"sha256": "33"}
    # The snapshot itself is left as it was.
    assert page["files"][0]["url"].startswith("https://")  # type: ignore[index]
    no = realindex.rewrite_page(page, own, meta, pep658=False)
    assert all("core-metadata" not in f for f in no["files"])


def test_page_html_from_json() -> None:
    page = realindex.rewrite_page(
        _page([dict(f) for f in _FILES]), {}, {"alpha-1.0-py3-none-any.whl": "m1"}, pep658=True
    )
    text = realindex.page_html(page)
    lines = [line.strip() for line in text.splitlines() if "<a " in line]
    assert lines == [
        '<a href="../../files/alpha-1.0-py3-none-any.whl#sha256=11" '
        'data-requires-python="&gt;=3.8" data-yanked="broken" '
        'data-core-metadata="sha256=m1" data-dist-info-metadata="sha256=m1">'
        "alpha-1.0-py3-none-any.whl</a><br/>",
        '<a href="../../files/alpha-2.0-py3-none-any.whl#sha256=22">'
        "alpha-2.0-py3-none-any.whl</a><br/>",
        '<a href="../../files/alpha-2.0.tar.gz#sha256=33">alpha-2.0.tar.gz</a><br/>',
    ]
    assert "<h1>Links for alpha</h1>" in text


def test_target_tags() -> None:
    linux = realindex.target_tags(realindex.Target("3.12", "manylinux_2_28_x86_64"))
    names = {str(t) for t in linux}
    assert "cp312-cp312-manylinux_2_28_x86_64" in names
    assert "cp312-abi3-manylinux2014_x86_64" in names
    assert "cp311-abi3-manylinux_2_17_x86_64" in names
    assert "py3-none-any" in names
    assert not any("aarch64" in n or "2_31" in n or "cp313" in n for n in names)
    assert str(linux[0]) == "cp312-cp312-manylinux_2_28_x86_64"
    mac = {str(t) for t in realindex.target_tags(realindex.Target("3.11", "macosx_14_0_arm64"))}
    assert "cp311-cp311-macosx_11_0_arm64" in mac and "cp311-cp311-macosx_15_0_arm64" not in mac


def _closure_pages() -> dict[str, dict[str, object]]:
    def files(name: str, names: list[str]) -> dict[str, object]:
        return {"name": name, "files": [{"filename": n, "url": n, "hashes": {}} for n in names]}

    return {
        "app": files("app", ["app-1.0-py3-none-any.whl"]),
        "lib": files(
            "lib",
            [
                "lib-2.0-cp312-cp312-manylinux_2_28_x86_64.whl",
                "lib-2.0-cp312-cp312-win_amd64.whl",
                "lib-2.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
                "lib-3.0-cp312-cp312-win_amd64.whl",
            ],
        ),
        "winonly": files(
            "winonly", ["winonly-0.9-py3-none-any.whl", "winonly-1.0rc1-py3-none-any.whl"]
        ),
    }


def test_target_closure_takes_pins_and_pins_what_a_target_adds() -> None:
    pages = _closure_pages()
    metadata = {
        "app-1.0-py3-none-any.whl": b"Name: app\nRequires-Dist: lib>=1\n"
        b"Requires-Dist: winonly; sys_platform == 'win32'\nRequires-Dist: gone; extra == 'x'\n",
    }

    def meta(_name: str, entry: Any) -> bytes:
        return metadata.get(entry["filename"], b"Name: x\n")

    linux = realindex.Target("3.12", "manylinux_2_28_x86_64")
    got = realindex.target_closure(["app"], {"lib": "2.0"}, linux, pages.__getitem__, meta)
    assert sorted(got) == ["app", "lib"]
    # Both Linux wheels of the pinned version, best first; the Windows one is not for it.
    assert got["lib"] == realindex.Picked(
        "2.0",
        (
            "lib-2.0-cp312-cp312-manylinux_2_28_x86_64.whl",
            "lib-2.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        ),
    )
    win = realindex.Target("3.12", "win_amd64")
    got = realindex.target_closure(["app"], {"lib": "2.0"}, win, pages.__getitem__, meta)
    # Unpinned: the newest final release (not the release candidate).
    assert got["winonly"].version == "0.9"
    assert got["lib"].files == ("lib-2.0-cp312-cp312-win_amd64.whl",)
    mac = realindex.Target("3.12", "macosx_14_0_arm64")
    with pytest.raises(ValueError, match=r"lib==2.0: no wheel for py=3.12,platform=macosx"):
        realindex.target_closure(["app"], {"lib": "2.0"}, mac, pages.__getitem__, meta)


def test_target_commands_share_one_cache(tmp_path: Path) -> None:
    job = Job(
        tmp=tmp_path, index_url="http://127.0.0.1:1/simple/", reqs_in=tmp_path / "r.in",
        constraints=tmp_path / "c.txt", top_level=("app",), venv=tmp_path / "v",
        python=tmp_path / "py",
    )  # fmt: skip
    argv = target_commands("uv", job, tmp_path / "bench", realindex.TARGETS[:2])
    assert argv[:2] == ["sh", "-ec"]
    lines = argv[2].splitlines()
    assert len(lines) == 2
    assert all(f"--cache-dir {tmp_path / 'cache'} " in line for line in lines)
    assert "--python-platform aarch64-manylinux_2_28" in lines[1]
    assert str(tmp_path / "target-1" / "requirements.txt") in lines[1]
    pip = target_commands("pip", job, tmp_path / "bench", realindex.TARGETS[3:4])[2]
    assert "--platform win_amd64 --python-version 3.11" in pip and "--only-binary :all:" in pip
    linux = target_commands("pip", job, tmp_path / "bench", realindex.TARGETS[:1])[2]
    # pip takes a manylinux tag as it is: the older ones a manylinux_2_28 machine runs are given.
    assert "--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64" in linux
    assert "--platform manylinux2014_x86_64" in linux and "--platform linux_" not in linux


def test_build_real_index_from_a_snapshot(tmp_path: Path) -> None:
    whl = _wheel(tmp_path, "alpha", "1.0", [])
    info = staticindex.wheel_info(whl, {})
    pages = tmp_path / "pages"
    (pages / "metadata").mkdir(parents=True)
    page = {
        "meta": {"api-version": "1.1"},
        "name": "alpha",
        "versions": ["0.9", "1.0"],
        "files": [
            {"filename": n, "url": f"https://index.invalid/p/{n}", "hashes": {"sha256": h},
             "size": 5}
            for n, h in (("alpha-0.9-py3-none-any.whl", "09"), (whl.name, info.sha256))
        ],
    }  # fmt: skip
    (pages / "alpha.json").write_text(json.dumps(page))
    # A snapshot answers from disk: nothing here reaches the (invalid) index.
    snap = realindex.Snapshot(pages, "https://index.invalid/simple/", None)
    real = realindex.build_real_index(
        tmp_path / "idx", "s", ["alpha"], {"alpha": "1.0"},
        {whl.name: (whl, info.sha256, info.metadata)}, snapshot=snap,
    )  # fmt: skip
    base = tmp_path / "idx/s/real-pep658"
    served = json.loads((base / "simple/alpha/index.json").read_text())
    assert [f["url"] for f in served["files"]] == [
        "../../files/alpha-0.9-py3-none-any.whl",
        f"../../files/{whl.name}",
    ]
    assert served["files"][1]["core-metadata"] == {"sha256": info.metadata_sha256}
    # Only the set's own file (and its metadata) is there: the other one answers 404.
    assert sorted(p.name for p in (base / "files").iterdir()) == [whl.name, f"{whl.name}.metadata"]
    assert "alpha-0.9-py3-none-any.whl#sha256=09" in (base / "simple/alpha/index.html").read_text()
    nometa = json.loads((tmp_path / "idx/s/real-nometa/simple/alpha/index.json").read_text())
    assert all("core-metadata" not in f for f in nometa["files"])
    assert real.targets_constraints.read_text() == "alpha==1.0\n"
    assert real.targets_projects == 1 and real.targets_errors == ()
    assert real.page_bytes == len(json.dumps(served).encode())
    # Nothing changed: the index is not written again.
    mtime = (base / "simple/alpha/index.json").stat().st_mtime_ns
    realindex.build_real_index(
        tmp_path / "idx", "s", ["alpha"], {"alpha": "1.0"},
        {whl.name: (whl, info.sha256, info.metadata)}, snapshot=snap,
    )  # fmt: skip
    assert (base / "simple/alpha/index.json").stat().st_mtime_ns == mtime


def test_nginx_serves_real_pages_without_validators(tmp_path: Path) -> None:
    import urllib.error
    import urllib.request

    from server import nginx_argv, write_nginx_conf

    root = tmp_path / "index"
    for kind in ("real-pep658", "pep658"):
        page = root / "s" / kind / "simple" / "alpha"
        page.mkdir(parents=True)
        (page / "index.json").write_text('{"name": "alpha"}')
        (page / "index.html").write_text("<html></html>")
    port = _free_port()
    rundir = tmp_path / "run"
    write_nginx_conf(rundir, root, f"127.0.0.1:{port}")
    proc = subprocess.Popen(nginx_argv(rundir), stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "nginx did not start"
                time.sleep(0.05)

        def get(kind: str, **headers: str) -> tuple[int, Any]:
            req = urllib.request.Request(
                f"http://127.0.0.1:{port}/s/{kind}/simple/alpha/", headers=headers
            )
            try:
                with urllib.request.urlopen(req, timeout=10) as resp:
                    return resp.status, resp.headers
            except urllib.error.HTTPError as err:
                return err.code, err.headers

        json_type = "application/vnd.pypi.simple.v1+json"
        status, headers = get("real-pep658", Accept=json_type)
        assert status == 200 and headers["Content-Type"] == json_type
        assert headers["ETag"] is None and headers["Last-Modified"] is None
        assert headers["Vary"] == "Accept"
        # Nothing to revalidate with, and a guessed date gets the whole page again.
        late = "Thu, 01 Jan 2099 00:00:00 GMT"
        assert get("real-pep658", Accept=json_type, **{"If-Modified-Since": late})[0] == 200
        assert get("real-pep658")[1]["Content-Type"] == "text/html"
        # The minimal index keeps nginx's validators, as in the earlier rounds.
        status, headers = get("pep658", Accept=json_type)
        assert headers["ETag"] is not None and headers["Last-Modified"] is not None
        assert get("pep658", Accept=json_type, **{"If-None-Match": headers["ETag"]})[0] == 304
    finally:
        proc.terminate()
        proc.wait(timeout=10)
