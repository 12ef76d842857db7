"""The library entry points: streaming results, scheduling limits, shards, merge, reporters."""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from rich.console import Console

from fetchplan.errors import FileFormatError, InputError
from fetchplan.executor.lock import DestinationBusy, destination_lock
from fetchplan.executor.manifests import merge_manifests
from fetchplan.executor.mirror import MirrorLocation
from fetchplan.executor.plancheck import read_plan
from fetchplan.executor.progress import InFlight, Snapshot
from fetchplan.executor.reporters import BarReporter, LineReporter
from fetchplan.executor.retry import RetryPolicy
from fetchplan.executor.run import FetchOptions, execute_plan, open_execution, set_up_run
from fetchplan.executor.scheduler import Scheduler
from fetchplan.executor.shard import assign_shards, parse_shard, shard_members
from fetchplan.schemas.manifest import load_manifest
from fetchplan.schemas.plan import load_plan
from tests.support.faults import Fault, FaultServer, PlanFile, write_plan


def _options(tmp_path: Path, **changes: object) -> FetchOptions:
    base = FetchOptions(
        cache_dir=tmp_path / "cache",
        use_pip_config=False,
        retry=RetryPolicy(backoff_base=0.01, backoff_max=0.05),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def _files(
    server: FaultServer, sizes: list[int], fault: Fault | None = None, prefix: str = "f"
) -> list[PlanFile]:
    files = []
    for i, size in enumerate(sizes):
        data = os.urandom(size)
        path = f"/{prefix}{i}.whl"
        url = server.add(path, data, None if fault is None else Fault(**vars(fault)))
        files.append(PlanFile(url, data, f"{prefix}{i}.whl"))
    return files


def test_results_stream_while_downloads_continue(server: FaultServer, tmp_path: Path) -> None:
    small = _files(server, [1000, 1000], prefix="small")
    big = _files(server, [300_000], Fault(rate=300_000), prefix="big")
    plan = write_plan(tmp_path / "plan.json", [*big, *small])
    seen: list[tuple[str, bool]] = []
    with open_execution(plan, _options(tmp_path)) as run:
        for verified in run:
            big_done = (tmp_path / "wheels" / "big0.whl").exists()
            seen.append((verified.artifact.destination, big_done))
            assert verified.path.read_bytes()
    assert run.result is not None and run.result.ok
    # The small files were handed over while the big one was still on its way.
    assert ("small0.whl", False) in seen and ("small1.whl", False) in seen
    assert seen[-1][0] == "big0.whl"


def test_leaving_early_stops_workers_and_lists_only_verified(
    server: FaultServer, tmp_path: Path
) -> None:
    small = _files(server, [1000], prefix="small")
    big = _files(server, [800_000], Fault(rate=800_000), prefix="big")
    plan = write_plan(tmp_path / "plan.json", [*big, *small])
    started = time.monotonic()
    with open_execution(plan, _options(tmp_path)) as run:
        for verified in run:
            assert verified.artifact.destination == "small0.whl"
            break
    assert time.monotonic() - started < 3
    assert run.result is not None and run.result.interrupted
    manifest = load_manifest(tmp_path / "wheels" / "manifest.json")
    assert [a.path for a in manifest.artifacts] == ["small0.whl"]
    assert not (tmp_path / "wheels" / "big0.whl").exists()
    # The lock is free again, and the partial resumes.
    result = execute_plan(plan, _options(tmp_path))
    assert result.ok
    assert result.sources() == {
        "downloaded": 0,
        "resumed": 1,
        "cache": 0,
        "existing": 1,
        "mirror": 0,
        "failed": 0,
    }


def test_per_host_cap_and_jobs_bound_concurrency(server: FaultServer, tmp_path: Path) -> None:
    files = _files(server, [60_000] * 6, Fault(rate=300_000))
    plan = write_plan(tmp_path / "plan.json", files)
    result = execute_plan(plan, _options(tmp_path, jobs=6, per_host=2))
    assert result.ok
    spans = [(v.timing.start, v.timing.end) for v in result.verified]
    most = max(sum(1 for s, e in spans if s <= t < e) for t, _ in spans)
    assert most == 2


def test_scheduler_hands_out_largest_first_and_reports_errors() -> None:
    order: list[int] = []
    lock = threading.Lock()

    def work(n: int) -> int:
        with lock:
            order.append(n)
        if n == 3:
            raise ValueError("three")
        return n * 10

    scheduler: Scheduler[int, int] = Scheduler(
        [1, 5, 3, 4], work, jobs=1, per_host=1, host=lambda n: "h", weight=lambda n: n
    )
    scheduler.start()
    done = list(scheduler.results(0.05, lambda: None))
    scheduler.close()
    assert order == [5, 4, 3, 1]
    assert {(d.item, d.value) for d in done if d.error is None} == {(5, 50), (4, 40), (1, 10)}
    [failed] = [d for d in done if d.error is not None]
    assert failed.item == 3 and isinstance(failed.error, ValueError)


def test_unhashed_needs_permission_and_then_records_the_computed_hash(
    server: FaultServer, tmp_path: Path
) -> None:
    [f] = _files(server, [5000])
    plan = write_plan(tmp_path / "plan.json", [f])
    document = json.loads(plan.read_text())
    document["artifacts"][0]["hashes"] = {}
    document["artifacts"][0]["hash_source"] = None
    plan.write_text(json.dumps(document))
    with pytest.raises(FileFormatError, match=r"artifacts\[0\]\.hashes\.sha256"):
        execute_plan(plan, _options(tmp_path))
    assert server.requests == []
    result = execute_plan(plan, _options(tmp_path, allow_unhashed=True))
    assert result.ok
    [entry] = load_manifest(tmp_path / "wheels" / "manifest.json").artifacts
    assert entry.sha256 == hashlib.sha256(f.content).hexdigest()


def test_satisfied_by_is_only_a_hint(server: FaultServer, tmp_path: Path) -> None:
    [f] = _files(server, [5000])
    plan = write_plan(tmp_path / "plan.yaml", [f])
    text = plan.read_text().replace("satisfied_by: null", "satisfied_by:\n    source: destination")
    sha = hashlib.sha256(f.content).hexdigest()
    plan.write_text(text.replace("source: destination", f"source: destination\n    sha256: {sha}"))
    (tmp_path / "wheels").mkdir()
    (tmp_path / "wheels" / "f0.whl").write_bytes(b"not the file")
    result = execute_plan(plan, _options(tmp_path))
    assert result.ok and result.sources()["downloaded"] == 1
    assert (tmp_path / "wheels" / "f0.whl").read_bytes() == f.content
    # The YAML plan's copy beside the manifest is canonical JSON with the same digest.
    _, document = load_plan(tmp_path / "wheels" / "plan.json")
    manifest = load_manifest(tmp_path / "wheels" / "manifest.json")
    from fetchplan.schemas import plan_digest

    assert plan_digest(document) == manifest.plan.sha256 == result.plan_sha256


def test_lock_refuses_or_waits(tmp_path: Path) -> None:
    notes: list[str] = []
    with destination_lock(tmp_path, wait=False):
        with (
            pytest.raises(DestinationBusy, match=f"pid {os.getpid()}"),
            destination_lock(tmp_path, wait=False),
        ):
            pass
        release = threading.Event()

        def second() -> None:
            with destination_lock(tmp_path, wait=True, on_wait=notes.append):
                release.set()

        thread = threading.Thread(target=second)
        thread.start()
        time.sleep(0.2)
        assert not release.is_set()
    thread.join(timeout=10)
    assert release.is_set()
    assert notes and "waiting for another fetchplan" in notes[0]


def test_shards_are_disjoint_balanced_and_deterministic(tmp_path: Path) -> None:
    files = [
        PlanFile(f"http://127.0.0.1:1/f{i}.whl", b"x" * (1000 * (i % 7 + 1)), f"f{i}.whl")
        for i in range(40)
    ]
    plan, _ = load_plan(write_plan(tmp_path / "plan.json", files))
    shards = [shard_members(plan.artifacts, i, 3) for i in (1, 2, 3)]
    assert sorted(i for s in shards for i in s) == list(range(40))
    loads = [sum(plan.artifacts[i].size or 0 for i in s) for s in shards]
    assert max(loads) - min(loads) <= 7000
    assert assign_shards(plan.artifacts, 3) == assign_shards(plan.artifacts, 3)
    assert parse_shard(" 2/3 ") == (2, 3)
    for bad in ("0/3", "4/3", "1/0", "a/b", "1"):
        with pytest.raises(InputError):
            parse_shard(bad)


def test_merge_refuses_mixed_plans_and_missing_files(server: FaultServer, tmp_path: Path) -> None:
    files = _files(server, [3000, 4000])
    plan = write_plan(tmp_path / "plan.json", files)
    for i in (1, 2):
        opts = _options(tmp_path, destination=tmp_path / f"d{i}", shard=(i, 2))
        assert execute_plan(plan, opts).ok
    other_plan = write_plan(tmp_path / "other.json", files[:1], destination="o")
    assert execute_plan(other_plan, _options(tmp_path)).ok
    out = tmp_path / "merged" / "manifest.json"
    with pytest.raises(FileFormatError, match=r"plan\.sha256: differs"):
        merge_manifests([tmp_path / "d1" / "manifest.json", tmp_path / "o" / "manifest.json"], out)
    with pytest.raises(FileFormatError, match="shard 1 repeated"):
        merge_manifests([tmp_path / "d1" / "manifest.json"] * 2, out, allow_incomplete=True)
    one = load_manifest(tmp_path / "d1" / "manifest.json")
    (tmp_path / "d1" / one.artifacts[0].path).unlink()
    with pytest.raises(FileFormatError, match="is missing"):
        merge_manifests([tmp_path / "d1" / "manifest.json", tmp_path / "d2" / "manifest.json"], out)
    assert not out.exists()


def _snapshot() -> Snapshot:
    return Snapshot(
        elapsed=3.0,
        files_total=10,
        files_done=4,
        files_failed=1,
        bytes_total=10_000_000,
        bytes_done=4_000_000,
        network_bytes=3_000_000,
        rate=1_000_000.0,
        retries=2,
        in_flight=(InFlight("big-1.0-py3-none-any.whl", 5_000_000, 1_000_000),),
    )


def test_bar_reporter_draws_overall_and_largest_files() -> None:
    out = io.StringIO()
    reporter = BarReporter(Console(file=out, force_terminal=True, width=140))
    reporter.start(10, 10_000_000)
    reporter.update(_snapshot())
    reporter._progress.refresh()
    reporter.note("waiting for another fetchplan")
    text = out.getvalue()
    reporter._progress.stop()
    assert "total" in text and "4/10 files, 1 failed" in text
    assert "big-1.0-py3-none-any.whl" in text
    assert "ETA 00:06" in text and "1.0 MB/s" in text
    assert "waiting for another fetchplan" in text


def test_line_reporter_prints_periodic_plain_lines() -> None:
    out = io.StringIO()
    reporter = LineReporter(out, interval=0.0)
    reporter.start(10, 10_000_000)
    reporter.update(_snapshot())
    lines = out.getvalue().splitlines()
    assert lines[0] == "fetchplan: fetching 10 files, 10.0 MB"
    assert lines[1] == ("fetchplan: 4/10 files, 1 failed, 4.0 MB of 10.0 MB, 1.0 MB/s, ETA 00:06")


def test_plan_inside_its_destination_is_not_rewritten(server: FaultServer, tmp_path: Path) -> None:
    [f] = _files(server, [2000])
    dest = tmp_path / "wheels"
    dest.mkdir()
    plan = write_plan(dest / "plan.json", [f], destination=".")
    plan.write_text(plan.read_text() + "\n\n")  # not canonical: a rewrite would show
    before = plan.read_bytes()
    result = execute_plan(plan, _options(tmp_path))
    assert result.ok
    assert plan.read_bytes() == before
    assert (dest / "f0.whl").read_bytes() == f.content
    assert load_manifest(dest / "manifest.json").plan.path == "plan.json"


def test_the_set_up_of_a_run_is_decided_before_anything_opens(tmp_path: Path) -> None:
    files = [
        PlanFile(f"https://h{i % 2}.example.test/f{i}.whl", b"x" * i, f"f{i}.whl")
        for i in range(1, 7)
    ]
    files.append(PlanFile((tmp_path / "local.whl").as_uri(), b"local", "local.whl"))
    plan = write_plan(tmp_path / "plan.json", files)
    loaded = read_plan(plan, allow_unhashed=False, trusted_hosts=(), destination_given=False)
    mirror = MirrorLocation(
        url="https://mirror.example.test/", given="https://u:p@mirror.example.test/"
    )
    setup = set_up_run(
        loaded,
        plan,
        FetchOptions(per_host=2, shard=(1, 2)),
        trusted_hosts=frozenset(),
        pip_urls=("https://pip.example.test/simple/",),
        mirror=mirror,
    )
    members = shard_members(list(loaded.plan.artifacts), 1, 2)
    assert [a.destination for a in setup.artifacts] == [
        loaded.plan.artifacts[i].destination for i in members
    ]
    assert setup.skipped == 7 - len(members)
    assert setup.destination == tmp_path / "wheels"
    assert setup.credential_urls == ("https://pip.example.test/simple/", mirror.given)
    remote = [a.url for a in setup.artifacts if not a.url.startswith("file:")]
    assert setup.preload == (*remote, mirror.url)
    assert setup.jobs == min(len(setup.artifacts), setup.hosts * 2)
    assert not (tmp_path / "wheels").exists()  # nothing made, locked or opened
    offline = set_up_run(
        loaded, plan, FetchOptions(offline=True, jobs=3), trusted_hosts=frozenset()
    )
    assert (offline.preload, offline.jobs, offline.skipped) == ((), 3, 0)
    with pytest.raises(InputError, match="--offline forbids it"):
        set_up_run(
            loaded, plan, FetchOptions(offline=True), trusted_hosts=frozenset(), mirror=mirror
        )


def test_merge_problems_carry_their_files(server: FaultServer, tmp_path: Path) -> None:
    files = _files(server, [3000, 4000])
    plan = write_plan(tmp_path / "plan.json", files)
    opts = _options(tmp_path, destination=tmp_path / "d1", shard=(1, 2))
    assert execute_plan(plan, opts).ok
    first = tmp_path / "d1" / "manifest.json"
    (tmp_path / "d1" / load_manifest(first).artifacts[0].path).unlink()
    out = tmp_path / "merged" / "manifest.json"
    with pytest.raises(FileFormatError) as caught:
        merge_manifests([first], out)
    assert caught.value.filename == str(first)
    assert [(p.path, p.file) for p in caught.value.problems] == [
        ("artifacts[0].path", str(first)),
        ("artifacts", str(out)),
    ]
    assert caught.value.problems[1].message.endswith(f"not in any manifest: f0.whl, f1.whl ({out})")
    assert not out.exists()
