"""Plan against real-sized project pages: a loopback nginx index whose pages list hundreds of
releases and thousands of files each, as a real index's do, of which only the newest exist.

    python bench/bigpages.py [--projects 40] [--versions 110] [--runs 3] [--targets 1]
                             [--delay-ms 0] [--warm] [--profile FILE]

Builds ``--projects`` small wheels (a dependency tree, each depending on up to three later
ones, every fourth on one more for Windows, aarch64 or Python < 3.12 only), pads each page
with ``--versions`` old releases of 37 files each (an sdist, a pure wheel and 35 binary wheels:
5 Pythons x 7 platforms; about 2 MB of JSON at 110), serves them with nginx (PEP 658 files
beside the real wheels) and times ``fetchplan plan`` for all of them, ``--runs`` times, with no
cache (``--warm``: with a cache that one untimed plan filled first). ``--targets N`` plans for
N targets at once (Pythons 3.10-3.13 x 3 platforms).
``--delay-ms D`` puts bench/delayproxy.py (D ms each way) between the planner and nginx.
``--profile FILE`` records one more run with py-spy (``pip install py-spy``; collapsed
stacks). Prints the planner's wall and CPU seconds and peak RSS per run, and their medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.bigpage import pad_project, padding_entries  # noqa: E402
from tests.support.index import write_index  # noqa: E402
from tests.support.nginx import NginxServer  # noqa: E402
from tests.support.servers import free_port, wait_for_http  # noqa: E402
from tests.support.wheels import Dist, build_wheel  # noqa: E402

_TARGET_PYTHONS = ("3.10", "3.11", "3.12", "3.13")
_TARGET_PLATFORMS = ("manylinux_2_17_x86_64", "manylinux_2_17_aarch64", "win_amd64")


# Every fourth project also depends on one of these, by the target's markers: targets differ.
_MARKERS = (
    ("win", "sys_platform == 'win32'"),
    ("arm", "platform_machine == 'aarch64'"),
    ("old", "python_version < '3.12'"),
)


def _dists(count: int) -> list[Dist]:
    names = [f"proj-{i:02d}" for i in range(count)]
    dists = []
    for i, name in enumerate(names):
        deps = {f"{names[j]}>=0.5" for j in (2 * i + 1, 2 * i + 2, 3 * i + 3) if j < count}
        if i % 4 == 0:
            which, marker = _MARKERS[(i // 4) % len(_MARKERS)]
            deps.add(f"{which}-{i:02d}>=0.5; {marker}")
            dists.append(Dist(f"{which}-{i:02d}", "1.0.0"))
        dists.append(Dist(name, "1.0.0", requires=sorted(deps)))
    return dists


def _build(root: Path, projects: int, versions: int) -> tuple[int, int]:
    built = [build_wheel(root / "dists", d) for d in _dists(projects)]
    write_index(root / "index", built)
    total = 0
    pages = sorted((root / "index" / "simple").glob("*/index.json"))
    for page in pages:
        pad_project(page, padding_entries(page.parent.name, versions, yanked_every=17))
        total += page.stat().st_size
    return len(pages), total


def _targets(count: int) -> list[str]:
    specs = [f"py={py},platform={plat}" for plat in _TARGET_PLATFORMS for py in _TARGET_PYTHONS]
    return specs[:count]


def _plan(
    index_url: str, work: Path, targets: int, profile: Path | None, cache: Path | None = None
) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds and peak RSS (MB) of one plan."""
    out = work / f"plan-{time.monotonic_ns()}.json"
    argv = [sys.executable]
    if profile is not None:
        # Every thread's stacks (cProfile sees only the main thread's), collapsed, one a line.
        argv = ["py-spy", "record", "-r", "250", "-f", "raw", "-o", str(profile), "--", *argv]
    argv += ["-m", "fetchplan", "plan", "-q", "-i", index_url, "-o", str(out)]
    argv += ["--no-cache"] if cache is None else ["--cache-dir", str(cache)]
    for spec in _targets(targets) if targets > 1 else ():
        argv += ["--target", spec]
    argv.append("proj-00")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    started = time.monotonic()
    process = subprocess.Popen(argv, env=env, cwd=work)
    _pid, status, usage = os.wait4(process.pid, 0)
    wall = time.monotonic() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"plan failed: exit {process.returncode}")
    plan = json.loads(out.read_text())
    assert len(plan["artifacts"]) >= 1, plan
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--projects", type=int, default=40)
    parser.add_argument("--versions", type=int, default=110)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--targets", type=int, default=1)
    parser.add_argument("--profile", type=Path)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--warm", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fetchplan-bigpages-") as scratch:
        work = Path(scratch)
        pages, size = _build(work, args.projects, args.versions)
        print(
            f"{pages} project pages, {args.versions} padded releases each: "
            f"{size / 1e6:.1f} MB of JSON ({size / pages / 1e6:.2f} MB a page)"
        )
        server = NginxServer(work / "index", work / "nginx")
        proxy = None
        index_url = server.index_url
        try:
            if args.delay_ms:
                port = free_port()
                proxy = subprocess.Popen(
                    [
                        sys.executable,
                        str(ROOT / "bench" / "delayproxy.py"),
                        "serve",
                        "--listen",
                        f"127.0.0.1:{port}",
                        "--upstream",
                        f"127.0.0.1:{server.port}",
                        "--delay-ms",
                        str(args.delay_ms),
                    ]
                )
                index_url = f"http://127.0.0.1:{port}/simple/"
                wait_for_http(index_url, process=proxy)
            cache = work / "cache" if args.warm else None
            if cache is not None:
                _plan(index_url, work, args.targets, None, cache)  # fills the cache, untimed
            walls, cpus, rss = [], [], []
            for run in range(args.runs):
                wall, cpu, peak = _plan(index_url, work, args.targets, None, cache)
                walls.append(wall)
                cpus.append(cpu)
                rss.append(peak)
                print(f"run {run + 1}: {wall:.2f} s wall, {cpu:.2f} s CPU, {peak:.0f} MB peak RSS")
            print(
                f"median of {args.runs}: {statistics.median(walls):.2f} s wall, "
                f"{statistics.median(cpus):.2f} s CPU, {statistics.median(rss):.0f} MB peak RSS "
                f"({args.targets} target(s))"
            )
            if args.profile is not None:
                _plan(index_url, work, args.targets, args.profile.absolute(), cache)
                print(f"profile written to {args.profile}")
        finally:
            if proxy is not None:
                proxy.terminate()
                proxy.wait()
            server.close()


if __name__ == "__main__":
    main()
