"""fetchplan's benchmark: plan, fetch and run against pip and uv over a shaped network.

One command (see bench/README.md)::

    python3 bench/run.py --sets small,medium --runs 3

Installs the newest pip and uv into ``bench/work/venv``, downloads each set's pinned wheels
once, builds a static index over them, serves it with nginx behind a shaped network, measures
every tool with a cold cache per run, and writes a markdown table to ``bench/results/``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import fcntl
import json
import multiprocessing
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

import realindex  # noqa: E402
import report as report_mod  # noqa: E402
import sets as sets_mod  # noqa: E402
import staticindex  # noqa: E402
from measure import AccessLog, CpuGate, Sample, Scratch, disk_bytes, run_measured  # noqa: E402
from netshape import MODES, Network, NetworkError  # noqa: E402
from server import nginx_argv, stop_stale, write_nginx_conf  # noqa: E402
from tools import Fetchplan, Job, pip_uv_commands, target_commands  # noqa: E402

WORK = HERE / "work"
RESULTS = HERE / "results"
STAGES = ("plan", "warm", "targets", "fetch", "run", "run-loopback", "run-warm", "install-warm")
INDEXES = ("real", "minimal", "public")
INDEX_NOTES = {
    "real": "real pages (the machine's index's JSON pages, snapshotted once, every file "
    "listed; only the set's own files and their metadata served), plus a minimal-index plan row",
    "minimal": "minimal (one version per project: the set's wheels only)",
    "public": "pip's default index itself, unshaped (this machine's own network)",
}
# What each index measures; the others need the bench's own server.
PUBLIC_STAGES = ("plan", "warm", "targets")
TIMEOUT = 1800.0
PROBE_BYTES = 64 << 20


def _probe_blob() -> None:
    """A file of random bytes for the shaping check (random: nothing on the path compresses)."""
    blob = WORK / "index" / "_probe" / "blob.bin"
    if blob.exists() and blob.stat().st_size == PROBE_BYTES:
        return
    blob.parent.mkdir(parents=True, exist_ok=True)
    tmp = blob.with_suffix(".tmp")
    with tmp.open("wb") as fh:
        for _ in range(PROBE_BYTES >> 20):
            fh.write(os.urandom(1 << 20))
    tmp.replace(blob)


@dataclass
class Row:
    """All runs of one tool in one stage of one set."""

    stage: str
    variant: str
    tool: str
    label: str
    samples: list[Sample | None] = field(default_factory=list)
    status: str = ""
    waterfall: str = ""

    def put(self, run: int, sample: Sample | None, why: str = "") -> None:
        """Record run ``run`` (0-based): a successful sample, or None and why it failed."""
        while len(self.samples) <= run:
            self.samples.append(None)
        self.samples[run] = sample
        if sample is None and why:
            self.status = f"run {run + 1}: {why}"


RowFactory = Callable[[str, str, str, str], Row]


@dataclass
class SetResult:
    name: str
    dists: int
    wheel_bytes: int
    meta_bytes: int
    depth: int
    rows: list[Row] = field(default_factory=list)
    resume: dict[str, Any] = field(default_factory=dict)
    biggest_wheel: tuple[str, int] = ("", 0)
    minimal_meta_bytes: int = 0
    """index pages and metadata of the minimal (one-version) index"""
    index: str = "real"
    targets: int = 0
    targets_note: str = ""


def _clean_env(tmp: Path) -> dict[str, str]:
    """The environment of every measured command: no pip or uv configuration of this machine."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PIP_", "UV_")) and k.lower() not in {"http_proxy", "https_proxy"}
    }
    env.update(
        PIP_CONFIG_FILE=os.devnull,
        UV_NO_CONFIG="1",
        NO_PROXY="*",
        XDG_CACHE_HOME=str(tmp / "xdg-cache"),
        XDG_CONFIG_HOME=str(tmp / "xdg-config"),
        NETRC=str(tmp / "netrc"),
        PYTHONDONTWRITEBYTECODE="1",
        # uv must not try to download an interpreter (it cannot here, and retries for seconds).
        UV_PYTHON_DOWNLOADS="never",
    )
    return env


def _machine_pip_env() -> dict[str, str]:
    return dict(os.environ)


def _runtime_dependencies(src: Path) -> list[str]:
    """The ``[project] dependencies`` of the fetchplan checkout at ``src``."""
    with (src / "pyproject.toml").open("rb") as f:
        deps: list[str] = tomllib.load(f)["project"].get("dependencies", [])
    return deps


def ensure_bench_venv(upgrade: bool, fetchplan_src: Path) -> dict[str, str]:
    """The bench's own venv with the newest pip and uv (by the machine's pip configuration),
    and the runtime dependencies of the fetchplan checkout measured, which runs from there."""
    venv = WORK / "venv"
    py = venv / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        upgrade = True
    if upgrade:
        print("installing the newest pip and uv into bench/work/venv", flush=True)
        subprocess.run(
            [str(py), "-m", "pip", "install", "--quiet", "--upgrade", "pip", "uv"],
            check=True,
            env=_machine_pip_env(),
        )
    subprocess.run(
        [
            str(py),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            *_runtime_dependencies(fetchplan_src),
        ],
        check=True,
        env=_machine_pip_env(),
    )
    # The measured commands run with PYTHONDONTWRITEBYTECODE=1, so a checkout without
    # bytecode compiled every fetchplan module from source in every command (about 0.07 s
    # of CPU at start-up); an installed fetchplan has its bytecode, as pip and uv have
    # theirs in this venv. compileall writes it regardless of the variable.
    subprocess.run(
        [str(py), "-m", "compileall", "-q", str(fetchplan_src / "fetchplan")],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    pip_v = subprocess.run(
        [str(py), "-m", "pip", "--version"], capture_output=True, text=True, check=True
    ).stdout.split()[1]
    uv_v = subprocess.run(
        [str(venv / "bin" / "uv"), "--version"], capture_output=True, text=True, check=True
    ).stdout.split()[1]
    return {"pip": pip_v, "uv": uv_v}


def _hash_cache() -> dict[str, str]:
    path = WORK / "hashes.json"
    if path.exists():
        data: dict[str, str] = json.loads(path.read_text())
        return data
    return {}


def prepare_set(
    rs: sets_mod.ReqSet, snapshot: tuple[Path, str, str | None]
) -> tuple[SetResult, realindex.RealIndex]:
    """The set's wheels, minimal index and real-pages index (``snapshot``: the arguments of
    ``realindex.Snapshot``)."""
    paths = sets_mod.download_wheels(rs, WORK / "wheels")
    cache = _hash_cache()
    infos = {p: staticindex.wheel_info(path, cache) for p, path in paths.items()}
    (WORK / "hashes.json").write_text(json.dumps(cache, indent=0))
    stamp = WORK / "index" / rs.name / "stamp.json"
    want = sorted(f"{i.filename}:{i.sha256}" for i in infos.values())
    if not stamp.exists() or json.loads(stamp.read_text()) != want:
        staticindex.build_index(
            WORK / "index" / rs.name,
            {i.filename: paths[p] for p, i in infos.items()},
            list(infos.values()),
        )
        stamp.write_text(json.dumps(want))
    simple = WORK / "index" / rs.name / "pep658" / "simple"
    minimal_bytes = sum(
        (simple / p / "index.json").stat().st_size + len(i.metadata) for p, i in infos.items()
    )
    # In a process of its own: the parsed pages take a hundred MB or more, and a process
    # this one starts reports, as its peak RSS, at least this one's at the fork.
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        real = pool.submit(
            realindex.build_in_child,
            WORK / "index",
            rs.name,
            list(rs.top_level),
            dict(rs.pins),
            {i.filename: (paths[p], i.sha256, i.metadata) for p, i in infos.items()},
            snapshot_args=snapshot,
        ).result()
    for err in real.targets_errors:
        print(f"[{rs.name}] targets: {err}", flush=True)
    biggest = max(infos.values(), key=lambda i: i.size)
    res = SetResult(
        name=rs.name,
        dists=len(infos),
        wheel_bytes=sum(i.size for i in infos.values()),
        meta_bytes=real.page_bytes + sum(len(i.metadata) for i in infos.values()),
        depth=sets_mod.graph_depth(rs, infos),
        biggest_wheel=(biggest.filename, biggest.size),
        minimal_meta_bytes=minimal_bytes,
        targets=real.targets_projects,
        targets_note="; ".join(real.targets_errors),
    )
    return res, real


@contextlib.contextmanager
def _lock() -> Iterator[None]:
    WORK.mkdir(parents=True, exist_ok=True)
    with (WORK / ".lock").open("w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SystemExit("another bench run holds bench/work/.lock") from None
        yield


def _on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


class Bench:
    def __init__(
        self,
        args: argparse.Namespace,
        net: Network,
        versions: dict[str, str],
        public_url: str,
        real: dict[str, realindex.RealIndex],
    ) -> None:
        self.args = args
        self.net = net
        self.versions = versions
        self.public_url = public_url
        self.real = real
        self.access = AccessLog(WORK / "run" / "logs" / "access.log")
        self.cpu = CpuGate(max_wait=args.cpu_gate_wait)
        self.stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        self.logs = WORK / "logs" / self.stamp
        self.logs.mkdir(parents=True, exist_ok=True)
        self.waterfalls = RESULTS / "waterfalls" / self.stamp
        self.fp_src: Path = args.fetchplan_src.resolve()
        self.fp = Fetchplan(
            self.fp_src,
            self._fp_env(Path(tempfile.gettempdir())),
            python=WORK / "venv" / "bin" / "python",
        )
        self.fp.detect()
        self._last_plan: Path | None = None
        self._any_plan: Path | None = None
        self._wheel_bytes: dict[str, int] = {}
        self.scratch = Scratch()

    def _fp_env(self, tmp: Path) -> dict[str, str]:
        env = _clean_env(tmp)
        env["PYTHONPATH"] = str(self.fp_src)
        return env

    def _url(self, rs: str, variant: str) -> str:
        """The index of a row's variant: ``pep658``/``nometa`` (the ``--index`` chosen, over
        the shaped link), ``minimal`` (the one-version index), ``loopback`` (the real-pages
        index with PEP 658, unshaped), ``public`` (pip's default index itself)."""
        if variant == "public":
            return self.public_url
        if variant == "loopback":
            return f"http://{self.net.server_listen}/{rs}/real-pep658/simple/"
        if variant == "minimal":
            return f"{self.net.base_url}/{rs}/pep658/simple/"
        kind = variant if self.args.index == "minimal" else f"real-{variant}"
        return f"{self.net.base_url}/{rs}/{kind}/simple/"

    def _prefix(self, variant: str) -> list[str]:
        """Where a row's commands run: the client side of the shaped link, the server's side
        (loopback, unshaped), or this machine's own network (the public index)."""
        if variant == "public":
            return []
        if variant == "loopback":
            return self.net.server_prefix
        return self.net.client_prefix

    def _job(self, rs: sets_mod.ReqSet, variant: str, tmp: Path) -> Job:
        return Job(
            tmp=tmp,
            index_url=self._url(rs.name, variant),
            reqs_in=rs.reqs_in,
            constraints=rs.pins_path,
            top_level=rs.top_level,
            venv=tmp / "venv",
            python=WORK / "venv" / "bin" / "python",
        )

    def measure(
        self,
        argv: list[str],
        env: dict[str, str],
        log: Path,
        *,
        kill_after: float | None = None,
        kill_when: Callable[[], bool] | None = None,
        prefix: list[str] | None = None,
    ) -> Sample:
        time.sleep(0.2)
        probe, steady = self.cpu.wait()
        self.access.take()
        proxy_cpu = self.net.proxy_cpu_s()
        sample = run_measured(
            [*(self.net.client_prefix if prefix is None else prefix), *argv],
            env=env,
            cwd=WORK,
            log=log,
            timeout=TIMEOUT,
            kill_after=kill_after,
            kill_when=kill_when,
        )
        # nginx logs a request when its response is done; give the last one a moment.
        time.sleep(0.3)
        sample.server_bytes, sample.requests, _paths = self.access.take()
        sample.extra["proxy_cpu_s"] = self.net.proxy_cpu_s() - proxy_cpu
        sample.extra["cpu_probe_s"] = round(probe, 4)
        sample.extra["cpu_steady"] = steady
        return sample

    def _report(self, timings: Path, name: str, row: Row) -> None:
        """Draw the waterfall of a fetchplan run with ``fetchplan report``, when it exists."""
        if not (self.fp.available("report") and timings.exists()):
            return
        self.waterfalls.mkdir(parents=True, exist_ok=True)
        out = self.waterfalls / f"{name}.html"
        proc = subprocess.run(
            self.fp.report(timings, out),
            env=self.fp.env,
            cwd=WORK,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode == 0 and out.exists():
            row.waterfall = str(out.relative_to(RESULTS))
        else:
            row.waterfall = f"`fetchplan report` failed: {proc.stderr.strip()[-120:]}"

    def run_set(self, rs: sets_mod.ReqSet, res: SetResult) -> None:
        self._any_plan = None
        self._last_plan = None
        self._wheel_bytes[rs.name] = res.wheel_bytes
        only = set(self.args.only)
        rows: dict[tuple[str, str, str], Row] = {}

        def row(stage: str, variant: str, tool: str, label: str) -> Row:
            key = (stage, variant, tool)
            if key not in rows:
                rows[key] = Row(stage, variant, tool, label)
                res.rows.append(rows[key])
            return rows[key]

        fetch_walls: list[float] = []
        public = self.args.index == "public"
        plan_variants: tuple[str, ...] = ("public",) if public else staticindex.VARIANTS
        if self.args.index == "real":
            plan_variants = (*plan_variants, "minimal")
        here = "public" if public else "pep658"
        for i in range(self.args.runs):
            print(f"[{rs.name}] run {i + 1}/{self.args.runs}", flush=True)
            plans: dict[str, Path] = {}
            if "plan" in only:
                for variant in plan_variants:
                    self._stage_pip_uv(rs, row, "plan", variant, i)
                    plan = self._fp_plan(rs, row, variant, i)
                    if plan is not None and variant != "minimal":
                        plans[variant] = plan
                        self._any_plan = plan
            if "warm" in only:
                for tool in ("pip", "uv", "fetchplan"):
                    self._warm(rs, row, "warm", here, tool=tool, i=i)
            if "targets" in only:
                for tool in ("pip", "uv", "fetchplan"):
                    self._targets(rs, row, here, tool, i)
            if public:
                continue
            if "fetch" in only:
                self._stage_pip_uv(rs, row, "fetch", "pep658", i)
                # A plan that failed this run must not hide fetch: take another good one.
                plan = plans.get("pep658") or plans.get("nometa") or self._any_plan
                if plan is None and "plan" not in only:
                    plan = self._any_plan = self._unmeasured_plan(rs)
                wall = self._fp_fetch(rs, row, plan, i)
                if wall is not None:
                    fetch_walls.append(wall)
            if "run" in only:
                self._stage_pip_uv(rs, row, "run", "pep658", i)
                self._fp_run(rs, row, i)
            if "run-loopback" in only:
                self._stage_pip_uv(rs, row, "run", "loopback", i, tools=("uv",))
                self._fp_run(rs, row, i, variant="loopback")
            if "run-warm" in only:
                for variant in ("loopback", "pep658"):
                    for tool in ("uv", "fetchplan"):
                        self._warm(rs, row, "run-warm", variant, tool=tool, i=i)
            if "install-warm" in only:
                self._warm(rs, row, "install-warm", "loopback", tool="uv", i=i)
                self._install_warm(rs, row, plans.get("pep658") or self._any_plan, i)
        for r in res.rows:
            # A row measured at all has one entry per run, so ratios pair run i with run i.
            while r.samples and len(r.samples) < self.args.runs:
                r.samples.append(None)
        if "fetch" in only and fetch_walls and self.fp.available("fetch"):
            res.resume = self._resume(rs, sorted(fetch_walls)[len(fetch_walls) // 2])

    def _stage_pip_uv(
        self,
        rs: sets_mod.ReqSet,
        row: RowFactory,
        stage: str,
        variant: str,
        i: int,
        *,
        tools: tuple[str, ...] = ("pip", "uv"),
    ) -> None:
        labels = {
            ("plan", "pip"): "pip install --dry-run --report",
            ("plan", "uv"): "uv pip compile",
            ("fetch", "pip"): "pip download",
            ("run", "pip"): "pip install --no-compile",
            ("run", "uv"): "uv pip install",
        }
        for tool in tools:
            if (stage, tool) not in labels:
                continue
            r = row(stage, variant, tool, labels[(stage, tool)])
            tmp = self.scratch.new()
            job = self._job(rs, variant, tmp)
            if stage == "run":
                self._make_venv(job.venv)
            argv = pip_uv_commands(stage, tool, job, WORK / "venv")
            log = self.logs / f"{rs.name}-{stage}-{variant}-{tool}-{i + 1}.log"
            s = self.measure(argv, _clean_env(tmp), log, prefix=self._prefix(variant))
            if stage == "run" and s.returncode == 0:
                s.extra["import_ok"] = self._check_import(job.venv, rs)
            r.put(i, s if s.returncode == 0 else None, f"exit {s.returncode}, see {log.name}")

    def _make_venv(self, venv: Path) -> None:
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)

    def _check_import(self, venv: Path, rs: sets_mod.ReqSet) -> bool:
        """The installed venv holds every pinned distribution, at its pinned version."""
        proc = subprocess.run(
            [
                str(venv / "bin" / "python"),
                "-c",
                "import importlib.metadata as m, json;"
                "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            return False
        from packaging.utils import canonicalize_name

        got = {str(canonicalize_name(k)): v for k, v in json.loads(proc.stdout).items()}
        return all(got.get(n) == v for n, v in rs.pins.items())

    def _unavailable(self, row: RowFactory, stage: str, variant: str, cmd: str, label: str) -> bool:
        if self.fp.available(cmd):
            return False
        r = row(stage, variant, "fetchplan", label)
        r.status = f"not available (no `fetchplan {cmd}` in this checkout)"
        return True

    def _fp_plan(self, rs: sets_mod.ReqSet, row: RowFactory, variant: str, i: int) -> Path | None:
        if self._unavailable(row, "plan", variant, "plan", "fetchplan plan"):
            return None
        r = row("plan", variant, "fetchplan", "fetchplan plan")
        tmp = self.scratch.new()
        job = self._job(rs, variant, tmp)
        plan = tmp / "plan.json"
        timings = tmp / "timings.json"
        argv = self.fp.plan(job, plan, timings)
        log = self.logs / f"{rs.name}-plan-{variant}-fetchplan-{i + 1}.log"
        s = self.measure(argv, self._fp_env(tmp), log, prefix=self._prefix(variant))
        ok = s.returncode == 0 and plan.exists()
        r.put(i, s if ok else None, f"exit {s.returncode}, see {log.name}")
        if not ok:
            return None
        # A waterfall names every URL requested: none of the public index's goes into the repo.
        if not r.waterfall and variant != "public":
            self._report(timings, f"{rs.name}-plan-{variant}", r)
        keep = self.logs / f"{rs.name}-plan-{variant}-{i + 1}.json"
        shutil.copy2(plan, keep)
        return keep

    def _unmeasured_plan(self, rs: sets_mod.ReqSet) -> Path | None:
        """A plan for ``--only fetch`` (no plan stage measured): made once, not timed."""
        if not self.fp.available("plan"):
            return None
        tmp = self.scratch.new()
        plan = tmp / "plan.json"
        argv = self.fp.plan(self._job(rs, "pep658", tmp), plan, None)
        log = self.logs / f"{rs.name}-plan-for-fetch.log"
        s = run_measured(
            [*self.net.client_prefix, *argv],
            env=self._fp_env(tmp),
            cwd=WORK,
            log=log,
            timeout=TIMEOUT,
        )
        if s.returncode != 0 or not plan.exists():
            print(f"[{rs.name}] fetchplan plan failed (exit {s.returncode}), see {log}")
            return None
        keep = self.logs / f"{rs.name}-plan-for-fetch.json"
        shutil.copy2(plan, keep)
        return keep

    def _fp_fetch(
        self, rs: sets_mod.ReqSet, row: RowFactory, plan: Path | None, i: int
    ) -> float | None:
        if self._unavailable(row, "fetch", "pep658", "fetch", "fetchplan fetch"):
            return None
        r = row("fetch", "pep658", "fetchplan", "fetchplan fetch")
        if plan is None:
            r.put(i, None, "no plan to fetch (fetchplan plan failed or not run)")
            return None
        tmp = self.scratch.new()
        job = self._job(rs, "pep658", tmp)
        timings = tmp / "timings.json"
        dest = tmp / "wheels"
        argv = self.fp.fetch(job, plan, dest, timings)
        log = self.logs / f"{rs.name}-fetch-fetchplan-{i + 1}.log"
        s = self.measure(argv, self._fp_env(tmp), log)
        r.put(i, s if s.returncode == 0 else None, f"exit {s.returncode}, see {log.name}")
        if s.returncode != 0:
            return None
        if not r.waterfall:
            self._report(timings, f"{rs.name}-fetch", r)
        self._last_plan = plan
        if self.fp.available("install"):
            self._fp_install(rs, row, job, dest / "manifest.json", i)
        return s.wall_s

    def _fp_install(
        self, rs: sets_mod.ReqSet, row: RowFactory, job: Job, manifest: Path, i: int
    ) -> None:
        """``fetchplan install`` of the manifest the fetch just wrote, into a fresh venv."""
        r = row("install", "pep658", "fetchplan", "fetchplan install --no-compile (of the fetch)")
        self._make_venv(job.venv)
        log = self.logs / f"{rs.name}-install-fetchplan-{i + 1}.log"
        s = self.measure(self.fp.install(job, manifest), self._fp_env(job.tmp), log)
        if s.returncode == 0:
            s.extra["import_ok"] = self._check_import(job.venv, rs)
        r.put(i, s if s.returncode == 0 else None, f"exit {s.returncode}, see {log.name}")

    def _fp_run(
        self, rs: sets_mod.ReqSet, row: RowFactory, i: int, variant: str = "pep658"
    ) -> None:
        if self._unavailable(row, "run", variant, "run", "fetchplan run --no-compile"):
            return
        r = row("run", variant, "fetchplan", "fetchplan run --no-compile")
        tmp = self.scratch.new()
        job = self._job(rs, variant, tmp)
        self._make_venv(job.venv)
        timings = tmp / "timings.json"
        log = self.logs / f"{rs.name}-run-{variant}-fetchplan-{i + 1}.log"
        s = self.measure(
            self.fp.run(job, timings), self._fp_env(tmp), log, prefix=self._prefix(variant)
        )
        if s.returncode == 0:
            s.extra["import_ok"] = self._check_import(job.venv, rs)
            if not r.waterfall:
                self._report(timings, f"{rs.name}-run-{variant}", r)
        r.put(i, s if s.returncode == 0 else None, f"exit {s.returncode}, see {log.name}")

    def _tool_argv(self, stage: str, tool: str, job: Job) -> list[str]:
        """A plan (``warm``) or an install into ``job.venv`` (``run-warm``, ``install-warm``)."""
        if tool == "fetchplan":
            if stage == "warm":
                return self.fp.plan(job, job.outdir / "plan.json", None)
            return self.fp.run(job, None)
        return pip_uv_commands("plan" if stage == "warm" else "run", tool, job, WORK / "venv")

    def _warm(
        self, rs: sets_mod.ReqSet, row: RowFactory, stage: str, variant: str, *, tool: str, i: int
    ) -> None:
        """The same command twice with one cache: the second is measured.

        Outputs (plan, downloads, venv) are fresh for the second; only the cache is shared.
        """
        cmd = "plan" if stage == "warm" else "run"
        labels = {
            ("warm", "pip"): "pip install --dry-run --report, second",
            ("warm", "uv"): "uv pip compile, second",
            ("warm", "fetchplan"): "fetchplan plan, second",
            ("run-warm", "uv"): "uv pip install, warm cache",
            ("run-warm", "fetchplan"): "fetchplan run --no-compile, warm cache",
            ("install-warm", "uv"): "uv pip install, warm cache",
        }
        if tool == "fetchplan" and self._unavailable(row, stage, variant, cmd, labels[stage, tool]):
            return
        r = row(stage, variant, tool, labels[stage, tool])
        tmp = self.scratch.new()
        base = self._job(rs, variant, tmp)
        env = self._fp_env(tmp) if tool == "fetchplan" else _clean_env(tmp)
        first_wall = 0.0
        sample: Sample | None = None
        for n in (1, 2):
            job = replace(base, out=tmp / f"out{n}", venv=tmp / f"venv{n}")
            job.outdir.mkdir()
            if stage != "warm":
                self._make_venv(job.venv)
            log = self.logs / f"{rs.name}-{stage}-{variant}-{tool}-{i + 1}-{n}.log"
            s = self.measure(
                self._tool_argv(stage, tool, job), env, log, prefix=self._prefix(variant)
            )
            if s.returncode != 0:
                r.put(
                    i,
                    None,
                    f"exit {s.returncode} ({'first' if n == 1 else 'second'}), see {log.name}",
                )
                return
            if n == 1:
                first_wall = s.wall_s
                continue
            s.extra["first_wall_s"] = first_wall
            if stage != "warm":
                s.extra["import_ok"] = self._check_import(job.venv, rs)
            sample = s
        r.put(i, sample)

    def _targets(
        self, rs: sets_mod.ReqSet, row: RowFactory, variant: str, tool: str, i: int
    ) -> None:
        """One plan for the 12 targets, or 12 plans of pip or uv in a row (one cache)."""
        n = len(realindex.TARGETS)
        labels = {
            "pip": f"{n} x pip install --dry-run --report --platform --python-version",
            "uv": f"{n} x uv pip compile --python-version --python-platform",
            "fetchplan": f"fetchplan plan, {n} --target",
        }
        if tool == "fetchplan" and self._unavailable(row, "targets", variant, "plan", labels[tool]):
            return
        r = row("targets", variant, tool, labels[tool])
        tmp = self.scratch.new()
        job = replace(
            self._job(rs, variant, tmp), constraints=self.real[rs.name].targets_constraints
        )
        if tool == "fetchplan":
            specs = [t.fetchplan_spec for t in realindex.TARGETS]
            try:
                argv = self.fp.plan(job, tmp / "plan.json", None, specs)
            except ValueError as exc:
                r.status = f"not available ({exc})"
                return
            env = self._fp_env(tmp)
        else:
            argv = target_commands(tool, job, WORK / "venv", realindex.TARGETS)
            env = {**_clean_env(tmp), **(realindex.UV_TARGET_ENV if tool == "uv" else {})}
        log = self.logs / f"{rs.name}-targets-{variant}-{tool}-{i + 1}.log"
        s = self.measure(argv, env, log, prefix=self._prefix(variant))
        r.put(i, s if s.returncode == 0 else None, f"exit {s.returncode}, see {log.name}")

    def _install_warm(
        self, rs: sets_mod.ReqSet, row: RowFactory, plan: Path | None, i: int
    ) -> None:
        """``fetchplan install`` of a fetched manifest into a fresh venv, after a first install
        of it (which fills the store of unpacked wheels, once fetchplan has one)."""
        label = "fetchplan install --no-compile, second (of a fetched manifest)"
        if self._unavailable(row, "install-warm", "loopback", "install", label):
            return
        r = row("install-warm", "loopback", "fetchplan", label)
        if plan is None:
            plan = self._any_plan = self._any_plan or self._unmeasured_plan(rs)
        if plan is None:
            r.put(i, None, "no plan (fetchplan plan failed)")
            return
        tmp = self.scratch.new()
        job = self._job(rs, "pep658", tmp)
        env = self._fp_env(tmp)
        dest = tmp / "wheels"
        log = self.logs / f"{rs.name}-install-warm-fetch-{i + 1}.log"
        # The plan's URLs are the shaped link's: the (untimed) fetch goes over it.
        s = self.measure(self.fp.fetch(job, plan, dest, None), env, log)
        if s.returncode != 0:
            r.put(i, None, f"fetch: exit {s.returncode}, see {log.name}")
            return
        for n in (1, 2):
            each = replace(job, venv=tmp / f"venv{n}")
            self._make_venv(each.venv)
            log = self.logs / f"{rs.name}-install-warm-fetchplan-{i + 1}-{n}.log"
            s = self.measure(self.fp.install(each, dest / "manifest.json"), env, log, prefix=[])
            if s.returncode != 0:
                r.put(i, None, f"install {n}: exit {s.returncode}, see {log.name}")
                return
        s.extra["import_ok"] = self._check_import(each.venv, rs)
        r.put(i, s)

    def _resume(self, rs: sets_mod.ReqSet, fetch_wall: float) -> dict[str, Any]:
        """Kill a fetch once half the plan's bytes are on disk, rerun it; bytes served in all.

        Half is judged by the bytes under the destination (each file once); if that never
        shows, the fetch is killed after 90% of its median time instead.
        """
        plan = self._last_plan
        if plan is None:
            return {}
        half = self._wheel_bytes[rs.name] // 2
        tmp = self.scratch.new()
        job = self._job(rs, "pep658", tmp)
        env = self._fp_env(tmp)
        argv = self.fp.fetch(job, plan, tmp / "wheels", None)
        first = self.measure(
            argv,
            env,
            self.logs / f"{rs.name}-resume-1.log",
            kill_after=fetch_wall * 0.9,
            kill_when=lambda: disk_bytes(tmp / "wheels") >= half,
        )
        on_disk = disk_bytes(tmp / "wheels")
        second = self.measure(argv, env, self.logs / f"{rs.name}-resume-2.log")
        return {
            "killed_after_s": first.wall_s,
            "on_disk_when_killed": on_disk,
            "first_bytes": first.server_bytes,
            "first_killed": first.killed,
            "second_bytes": second.server_bytes,
            "second_ok": second.returncode == 0,
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default="small", help="comma-separated: small,medium,large")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--delay-ms", type=float, default=25.0, help="one-way delay")
    parser.add_argument("--rate-mbit", type=float, default=200.0, help="bandwidth each way")
    parser.add_argument("--only", default=",".join(STAGES), help=f"stages: {','.join(STAGES)}")
    parser.add_argument(
        "--index",
        default="real",
        choices=INDEXES,
        help="real: the real-pages index (and a minimal-index plan row); minimal: the "
        "one-version index only; public: pip's default index itself, unshaped (plan rows)",
    )
    parser.add_argument("--network", default="auto", choices=MODES)
    parser.add_argument("--repin", action="store_true", help="re-resolve the pins with pip")
    parser.add_argument("--no-upgrade", action="store_true", help="keep the venv's pip and uv")
    parser.add_argument("--no-probe", action="store_true", help="skip the shaping check")
    parser.add_argument(
        "--page-validators",
        action="store_true",
        help="send ETag and Last-Modified with the real-pages index's pages (this machine's "
        "index sends neither, nor Cache-Control)",
    )
    parser.add_argument(
        "--cpu-gate-wait",
        type=float,
        default=180.0,
        help="at most this many seconds before each command waiting for the machine to be "
        "at speed (lower it on a machine shared with other work)",
    )
    parser.add_argument(
        "--fetchplan-src",
        type=Path,
        default=REPO,
        help="the fetchplan checkout to measure (default: this one)",
    )
    parser.add_argument(
        "--probe-only", action="store_true", help="only set up the network and check its shaping"
    )
    parser.add_argument("--output", type=Path, help="markdown file (default: bench/results/...)")
    args = parser.parse_args(argv)
    args.sets = [s for s in args.sets.split(",") if s]
    args.only = [s for s in args.only.split(",") if s]
    bad = set(args.only) - set(STAGES)
    if bad:
        parser.error(f"unknown stage(s): {', '.join(sorted(bad))}")
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if args.index == "public":
        dropped = [s for s in args.only if s not in PUBLIC_STAGES]
        if dropped:
            print(f"--index public measures plans only; not run: {', '.join(dropped)}")
        args.only = [s for s in args.only if s in PUBLIC_STAGES]
    signal.signal(signal.SIGTERM, _on_signal)
    started = time.perf_counter()
    with _lock():
        if args.repin:
            for name in args.sets:
                sets_mod.repin(name)
        versions = ensure_bench_venv(
            upgrade=not args.no_upgrade, fetchplan_src=args.fetchplan_src.resolve()
        )
        index_url, cafile = realindex.machine_index(WORK / "venv" / "bin" / "python", REPO)
        snapshot = (WORK / "pages", index_url, cafile)
        prepared = []
        real: dict[str, realindex.RealIndex] = {}
        for name in args.sets:
            rs = sets_mod.load_set(name)
            res, real[name] = prepare_set(rs, snapshot)
            res.index = args.index
            prepared.append((rs, res))
        _probe_blob()
        rundir = WORK / "run"
        stop_stale(rundir)
        shutil.rmtree(rundir, ignore_errors=True)
        rundir.mkdir(parents=True)
        try:
            net = Network.prepare(args.network, args.delay_ms, args.rate_mbit, rundir)
        except NetworkError as exc:
            raise SystemExit(f"network: {exc}") from None
        try:
            write_nginx_conf(
                rundir, WORK / "index", net.server_listen, page_validators=args.page_validators
            )
            net.spawn_server(nginx_argv(rundir), rundir / "logs" / "nginx.out")
            net.after_server_started()
            print(f"network: {net.describe()}", flush=True)
            probe = None if args.no_probe else _probe(net)
            if probe is not None:
                print(f"shaping check: {report_mod.describe_probe(probe, args)}", flush=True)
            if args.probe_only:
                return 0
            bench = Bench(args, net, versions, index_url, real)
            try:
                for rs, res in prepared:
                    bench.run_set(rs, res)
            finally:
                bench.scratch.close()
        finally:
            net.close()
    meta = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "versions": versions,
        "fetchplan": _git_describe(args.fetchplan_src),
        "network": net.describe(),
        "mode": net.mode,
        "probe": probe,
        # Paths of the machine stay out of the results: the checkout is named by its commit.
        "args": {
            k: (v.name if isinstance(v, Path) else v)
            for k, v in vars(args).items()
            if k != "output"
        },
        "machine": (
            f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
        ),
        "index": INDEX_NOTES[args.index],
        "fetchplan_missing": bench.fp.missing,
        "cpu_gate": {"fastest_s": bench.cpu.fastest, "waited_s": bench.cpu.waited_s},
        "elapsed_s": time.perf_counter() - started,
    }
    results = [res for _rs, res in prepared]
    text = report_mod.render(results, meta, args)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = args.output or RESULTS / f"{bench.stamp}-{'-'.join(args.sets)}.md"
    out.write_text(text)
    (out.with_suffix(".json")).write_text(report_mod.to_json(results, meta))
    print(text)
    print(f"written: {out.relative_to(REPO) if out.is_relative_to(REPO) else out}")
    return 0


def _probe(net: Network) -> dict[str, float]:
    """Measure what the shaped path gives: new-connection and kept-alive request times, Mbit/s."""
    url = f"{net.base_url}/_probe/blob.bin"
    proc = subprocess.run(
        [*net.client_prefix, sys.executable, str(HERE / "delayproxy.py"), "probe", url],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    if proc.returncode != 0:
        print(f"shaping check failed: {proc.stderr.strip()[-300:]}", flush=True)
        return {}
    data: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    data["probe_bytes"] = float(PROBE_BYTES)
    return data


def _git_describe(src: Path) -> str:
    proc = subprocess.run(
        ["git", "-C", str(src), "log", "-1", "--format=%h %s"],
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.stdout.strip()[:100]


if __name__ == "__main__":
    sys.exit(main())
