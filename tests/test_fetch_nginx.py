"""The executor against a real nginx: a parallel fetch of real-sized wheels, and the kill test.

The ``nginx_server`` fixture here is a minimal stand-in with the shared fixture's shape
(``nginx_server(root, options=NginxOptions(limit_rate=...))`` over a ``write_index`` root,
``file_url``, byte counts from the access log); the shared one replaces it on merge.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fetchplan.schemas import load_document
from fetchplan.schemas.manifest import load_manifest
from tests.support.faults import PlanFile, write_plan
from tests.support.index import write_index
from tests.support.wheels import Dist, build_wheel

_LOG_FORMAT = (
    '{"path":"$request_uri","status":$status,"body_bytes_sent":$body_bytes_sent,'
    '"range":"$http_range","msec":$msec,"request_time":$request_time}'
)


@dataclass(frozen=True)
class NginxOptions:
    limit_rate: int | None = None


class _Nginx:
    def __init__(self, root: Path, prefix: Path, options: NginxOptions) -> None:
        binary = "/usr/sbin/nginx" if Path("/usr/sbin/nginx").is_file() else "nginx"
        self.prefix = prefix
        self.access_log = prefix / "access.log"
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        (prefix / "tmp").mkdir(parents=True, exist_ok=True)
        rate = f"limit_rate {options.limit_rate};" if options.limit_rate is not None else ""
        user = "user root;" if os.geteuid() == 0 else ""
        temp = "".join(
            f"{kind}_temp_path {prefix / 'tmp' / kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        (prefix / "nginx.conf").write_text(
            f"""{user} daemon off; worker_processes 1; pid {prefix / "nginx.pid"};
error_log {prefix / "error.log"} info; events {{ worker_connections 128; }}
http {{ default_type application/octet-stream; {temp}
  log_format t escape=json '{_LOG_FORMAT}'; access_log {self.access_log} t;
  sendfile on; sendfile_max_chunk 64k; keepalive_timeout 30s;
  server {{ listen 127.0.0.1:{self.port}; root {root}; {rate} location /files/ {{ }} }} }}
"""
        )
        self._proc = subprocess.Popen(
            [binary, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e",
             str(prefix / "error.log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    break
            except OSError:
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    log = (
                        (prefix / "error.log").read_text()
                        if (prefix / "error.log").exists()
                        else ""
                    )
                    raise RuntimeError(f"nginx failed to start:\n{log}") from None
                time.sleep(0.05)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def file_url(self, filename: str) -> str:
        return f"{self.url}/files/{filename}"

    def requests(self) -> list[dict[str, object]]:
        if not self.access_log.exists():
            return []
        return [json.loads(line) for line in self.access_log.read_text().splitlines() if line]

    def bytes_sent(self, since: float = 0.0) -> int:
        """Body bytes of requests that began at or after ``since`` (a ``time.time()``)."""
        total = 0
        for r in self.requests():
            began = float(r["msec"]) - float(r["request_time"])  # type: ignore[arg-type]
            if began >= since - 0.01:
                total += int(r["body_bytes_sent"])  # type: ignore[call-overload]
        return total

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()


MakeNginx = Callable[..., _Nginx]


@pytest.fixture
def nginx_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MakeNginx]:
    servers: list[_Nginx] = []

    def make(root: Path, *, options: NginxOptions | None = None) -> _Nginx:
        server = _Nginx(root, tmp_path_factory.mktemp("nginx"), options or NginxOptions())
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


def _wheels(tmp_path: Path, sizes: list[int]) -> tuple[Path, list[Path]]:
    built = [
        build_wheel(tmp_path / "dists", Dist(f"pkg{i}", "1.0", padding=size))
        for i, size in enumerate(sizes)
    ]
    root = tmp_path / "index"
    write_index(root, built)
    return root, [root / "files" / w.name for w in built]


def _plan(tmp_path: Path, server: _Nginx, wheels: list[Path]) -> tuple[Path, list[PlanFile]]:
    files = [PlanFile(server.file_url(w.name), w.read_bytes(), w.name) for w in wheels]
    return write_plan(tmp_path / "plan.json", files), files


def _check_destination(dest: Path, files: list[PlanFile]) -> None:
    """Every file under a final name is complete and verified; partials stay out of sight."""
    for f in files:
        final = dest / f.destination
        if final.exists():
            assert hashlib.sha256(final.read_bytes()).digest() == hashlib.sha256(f.content).digest()
    names = {f.destination for f in files} | {"manifest.json", "plan.json", ".fetchplan"}
    assert {p.name for p in dest.iterdir()} <= names


def _missing(dest: Path, files: list[PlanFile]) -> int:
    partial = dest / ".fetchplan" / "partial"
    have = 0
    for f in files:
        if (dest / f.destination).exists():
            have += len(f.content)
        elif (partial / f"{f.destination}.part").exists():
            have += (partial / f"{f.destination}.part").stat().st_size
    return sum(len(f.content) for f in files) - have


def test_parallel_fetch_of_real_sized_wheels(
    nginx_server: MakeNginx,
    tmp_path: Path,
    fetchplan_cmd: list[str],
    cli_env: dict[str, str],
) -> None:
    sizes = [4_000_000, 3_000_000, 2_500_000, 2_000_000, 1_500_000, 1_000_000]
    root, wheels = _wheels(tmp_path, sizes)
    server = nginx_server(root, options=NginxOptions(limit_rate=4_000_000))
    plan, files = _plan(tmp_path, server, wheels)
    timings = tmp_path / "timings.json"
    out = subprocess.run(
        [*fetchplan_cmd, "fetch", str(plan), "--isolated", "--timings", str(timings)],
        env=cli_env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    dest = tmp_path / "wheels"
    manifest = load_manifest(dest / "manifest.json")
    assert len(manifest.artifacts) == len(files)
    for artifact, f in zip(manifest.artifacts, files, strict=True):
        assert artifact.sha256 == hashlib.sha256((dest / f.destination).read_bytes()).hexdigest()
        assert artifact.source == "downloaded"
    total = sum(len(f.content) for f in files)
    assert server.bytes_sent() == total
    # Parallel: at 4 MB/s per connection, one after another would take over 3.5 s.
    document = load_document(timings, "fetch-timings")
    spans = [
        (p["start"], p["end"])
        for a in document["artifacts"]
        for p in a["phases"]
        if p["name"] == "download"
    ]
    overlapping = max(sum(1 for s, e in spans if s <= t < e) for t, _ in spans)
    assert overlapping >= 4
    assert document["network_bytes"] == total


@pytest.mark.slow
def test_kill_at_several_points_then_resume(
    nginx_server: MakeNginx,
    tmp_path: Path,
    fetchplan_cmd: list[str],
    cli_env: dict[str, str],
) -> None:
    sizes = [1_600_000, 1_400_000, 1_200_000, 900_000, 300_000, 100_000]
    root, wheels = _wheels(tmp_path, sizes)
    server = nginx_server(root, options=NginxOptions(limit_rate=1_000_000))
    plan, files = _plan(tmp_path, server, wheels)
    dest = tmp_path / "wheels"
    argv = [*fetchplan_cmd, "fetch", str(plan), "--isolated", "--jobs", "3", "-q"]
    env = {**cli_env, "FETCHPLAN_CHECKPOINT_SECONDS": "0.1"}
    missing_before = []
    for delay in (0.45, 0.7, 0.6):
        started = time.monotonic()
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        while time.monotonic() - started < delay and proc.poll() is None:
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL, (err, missing_before)
        _check_destination(dest, files)
        missing_before.append(_missing(dest, files))
    # Every kill landed mid-transfer and every rerun made progress.
    assert 0 < missing_before[-1] < missing_before[0] < sum(sizes)
    assert not (dest / "manifest.json").exists()

    time.sleep(0.2)  # let nginx log the requests the last kill cut off
    began = time.time()
    final = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert final.returncode == 0, final.stderr
    _check_destination(dest, files)
    manifest = load_manifest(dest / "manifest.json")
    assert {a.path for a in manifest.artifacts} == {f.destination for f in files}
    assert "resumed" in {a.source for a in manifest.artifacts}
    for f in files:
        assert (dest / f.destination).read_bytes() == f.content
    assert not list((dest / ".fetchplan" / "partial").iterdir())
    sent = server.bytes_sent(since=began)
    assert sent <= missing_before[-1] + 16 * 1024, (sent, missing_before)
