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

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import report  # noqa: E402
import staticindex  # noqa: E402
from delayproxy import Link  # noqa: E402
from measure import AccessLog, CpuGate, Scratch, disk_bytes, run_measured  # noqa: E402
from tools import _pick  # noqa: E402


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
