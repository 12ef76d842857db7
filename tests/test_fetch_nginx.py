"""The executor against a real nginx: a parallel fetch of real-sized wheels, and the kill test.

The nginx is the shared ``nginx_server`` fixture; its byte counter is nginx's access log.
"""

from __future__ import annotations

import hashlib
import signal
import subprocess
import time
from pathlib import Path

import pytest

from fetchplan.schemas import load_document
from fetchplan.schemas.manifest import load_manifest
from tests.conftest import MakeNginxServer
from tests.support.faults import PlanFile, write_plan
from tests.support.index import write_index
from tests.support.nginx import NginxOptions, NginxServer
from tests.support.processes import Processes
from tests.support.wheels import Dist, build_wheel


def _wheels(tmp_path: Path, sizes: list[int]) -> tuple[Path, list[Path]]:
    built = [
        build_wheel(tmp_path / "dists", Dist(f"pkg{i}", "1.0", padding=size))
        for i, size in enumerate(sizes)
    ]
    root = tmp_path / "index"
    write_index(root, built)
    return root, [root / "files" / w.name for w in built]


def _plan(tmp_path: Path, server: NginxServer, wheels: list[Path]) -> tuple[Path, list[PlanFile]]:
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
        else:
            try:  # the partial may be renamed into place between two looks
                have += (partial / f"{f.destination}.part").stat().st_size
            except FileNotFoundError:
                if (dest / f.destination).exists():
                    have += len(f.content)
    return sum(len(f.content) for f in files) - have


def test_parallel_fetch_of_real_sized_wheels(
    nginx_server: MakeNginxServer,
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
    nginx_server: MakeNginxServer,
    tmp_path: Path,
    fetchplan_cmd: list[str],
    cli_env: dict[str, str],
    processes: Processes,
) -> None:
    sizes = [1_600_000, 1_400_000, 1_200_000, 900_000, 300_000, 100_000]
    root, wheels = _wheels(tmp_path, sizes)
    server = nginx_server(root, options=NginxOptions(limit_rate=1_000_000))
    plan, files = _plan(tmp_path, server, wheels)
    dest = tmp_path / "wheels"
    argv = [*fetchplan_cmd, "fetch", str(plan), "--isolated", "--jobs", "3", "-q"]
    env = {**cli_env, "FETCHPLAN_CHECKPOINT_SECONDS": "0.1"}
    missing_before: list[int] = []
    total = sum(sizes)
    # Kill once each run has brought a further share of the bytes onto the disk, rather than
    # after a fixed time, so a slow start on a loaded machine cannot make a kill land early.
    for goal in (0.2 * total, 0.45 * total, 0.7 * total):
        deadline = time.monotonic() + 30
        proc = processes.start(argv, env=env, stdout=subprocess.DEVNULL)
        while (
            proc.poll() is None
            and time.monotonic() < deadline
            and (not dest.exists() or total - _missing(dest, files) < goal)
        ):
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL, (err, missing_before)
        _check_destination(dest, files)
        missing_before.append(_missing(dest, files))
    # Every kill landed mid-transfer and every rerun made progress.
    assert 0 < missing_before[-1] < missing_before[0] < sum(sizes)
    assert not (dest / "manifest.json").exists()

    server.wait_idle()  # nginx has logged the requests the last kill cut off
    server.reset_counters()
    final = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert final.returncode == 0, final.stderr
    _check_destination(dest, files)
    manifest = load_manifest(dest / "manifest.json")
    assert {a.path for a in manifest.artifacts} == {f.destination for f in files}
    assert "resumed" in {a.source for a in manifest.artifacts}
    for f in files:
        assert (dest / f.destination).read_bytes() == f.content
    assert not list((dest / ".fetchplan" / "partial").iterdir())
    sent = server.bytes_sent()
    assert sent <= missing_before[-1] + 16 * 1024, (sent, missing_before)
