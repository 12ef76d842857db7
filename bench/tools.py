"""The command lines the bench measures, for pip, uv and fetchplan.

pip and uv are the newest releases, installed into the bench's own venv. fetchplan runs from
the checkout (``python -m fetchplan`` with the bench venv's interpreter, which holds its
dependencies, and the checkout on ``PYTHONPATH``); each of its sub-commands counts as available
when ``fetchplan <cmd> --help`` succeeds, and its options are read from that help text, so the
bench follows the command line as it lands.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

__all__ = ["Fetchplan", "Job", "pip_uv_commands", "target_commands"]


@dataclass(frozen=True)
class Job:
    """The inputs of one measured command: where to write, what to resolve, against what."""

    tmp: Path
    index_url: str
    reqs_in: Path
    constraints: Path
    top_level: tuple[str, ...]
    venv: Path
    python: Path
    out: Path | None = None
    """where the command's outputs go (default ``tmp``); its cache is always under ``tmp``,
    so a second command with the same ``tmp`` and another ``out`` runs with a warm cache"""

    @property
    def outdir(self) -> Path:
        return self.tmp if self.out is None else self.out


def pip_uv_commands(stage: str, tool: str, job: Job, bench_venv: Path) -> list[str]:
    """argv of ``tool`` (pip or uv) for ``stage`` (plan, fetch or run)."""
    pip = [str(bench_venv / "bin" / "python"), "-m", "pip"]
    uv = [str(bench_venv / "bin" / "uv")]
    common_pip = [
        "--disable-pip-version-check",
        "--no-input",
        "--quiet",
        "--cache-dir",
        str(job.tmp / "cache"),
        "--index-url",
        job.index_url,
        "--only-binary",
        ":all:",
        "-r",
        str(job.reqs_in),
        "-c",
        str(job.constraints),
    ]
    common_uv = [
        "--quiet",
        "--cache-dir",
        str(job.tmp / "cache"),
        "--index-url",
        job.index_url,
        "--only-binary",
        ":all:",
        "-c",
        str(job.constraints),
    ]
    if (stage, tool) == ("plan", "pip"):
        return [
            *pip,
            "install",
            "--dry-run",
            "--ignore-installed",
            "--report",
            str(job.outdir / "report.json"),
            *common_pip,
        ]
    if (stage, tool) == ("plan", "uv"):
        return [
            *uv,
            "pip",
            "compile",
            "--python",
            str(job.python),
            "--no-header",
            "-o",
            str(job.outdir / "requirements.txt"),
            *common_uv,
            str(job.reqs_in),
        ]
    if (stage, tool) == ("fetch", "pip"):
        return [*pip, "download", "-d", str(job.outdir / "wheels"), *common_pip]
    if (stage, tool) == ("run", "pip"):
        return [
            *pip,
            "--python",
            str(job.venv / "bin" / "python"),
            "install",
            "--no-compile",
            *common_pip,
        ]
    if (stage, tool) == ("run", "uv"):
        return [
            *uv,
            "pip",
            "install",
            "--python",
            str(job.venv / "bin" / "python"),
            *common_uv,
            "-r",
            str(job.reqs_in),
        ]
    raise ValueError(f"no {tool} command for {stage}")


def target_commands(tool: str, job: Job, bench_venv: Path, targets: Sequence[Any]) -> list[str]:
    """One ``sh`` command running ``tool``'s plan once per target, one after the other.

    The runs share one cache (cold at the first), as a user's compiles in a row would; each
    writes its own output. ``targets`` are ``realindex.Target``s.
    """
    lines = []
    for n, target in enumerate(targets):
        each = replace(job, out=job.outdir / f"target-{n}")
        argv = pip_uv_commands("plan", tool, each, bench_venv)
        if tool == "uv":
            argv += ["--python-version", target.python, "--python-platform", target.uv_platform]
        else:
            for platform in target.pip_platforms:
                argv += ["--platform", platform]
            argv += ["--python-version", target.python]
        lines.append(f"mkdir -p {shlex.quote(str(each.outdir))} && {shlex.join(argv)}")
    return ["sh", "-ec", "\n".join(lines)]


def _has(help_text: str, option: str) -> bool:
    return re.search(rf"(^|[\s,\[]){re.escape(option)}([\s,=\]]|$)", help_text, re.M) is not None


def _pick(help_text: str, *candidates: str) -> str | None:
    for opt in candidates:
        if _has(help_text, opt):
            return opt
    return None


@dataclass
class Fetchplan:
    """fetchplan's sub-commands as this checkout has them, found from their ``--help``."""

    src: Path
    env: dict[str, str]
    helps: dict[str, str] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)

    python: Path = field(default_factory=lambda: Path(sys.executable))
    """The interpreter fetchplan runs with (the bench venv's, holding its dependencies)."""

    @property
    def base(self) -> list[str]:
        return [str(self.python), "-m", "fetchplan"]

    def detect(self) -> None:
        for cmd in ("plan", "fetch", "install", "run", "report"):
            proc = subprocess.run(
                [*self.base, cmd, "--help"],
                env=self.env,
                cwd=self.src,
                capture_output=True,
                text=True,
                check=False,
                timeout=60,
            )
            if proc.returncode == 0:
                self.helps[cmd] = proc.stdout
            else:
                self.missing[cmd] = (proc.stderr.strip().splitlines() or ["failed"])[-1]

    def available(self, cmd: str) -> bool:
        return cmd in self.helps

    def _resolve_args(self, cmd: str, job: Job) -> list[str]:
        h = self.helps[cmd]
        args: list[str] = []
        index = _pick(h, "--index-url", "-i", "--index")
        if index is None:
            raise ValueError(f"'fetchplan {cmd}' has no --index-url")
        args += [index, job.index_url]
        req = _pick(h, "-r", "--requirement", "--requirements")
        if req is not None:
            args += [req, str(job.reqs_in)]
        else:
            args += list(job.top_level)
        con = _pick(h, "-c", "--constraint", "--constraints")
        if con is not None:
            args += [con, str(job.constraints)]
        binary = _pick(h, "--only-binary")
        if binary is not None:
            args += [binary, ":all:"]
        return [*args, *self._trusted(cmd, job)]

    def _trusted(self, cmd: str, job: Job) -> list[str]:
        # The bench serves plain http, on loopback or inside its own namespaces.
        opt = _pick(self.helps[cmd], "--trusted-host")
        if opt is None or not job.index_url.startswith("http://"):
            return []
        return [opt, urllib.parse.urlsplit(job.index_url).netloc]

    def _common(self, cmd: str, job: Job, timings: Path | None) -> list[str]:
        h = self.helps[cmd]
        args: list[str] = []
        cache = _pick(h, "--cache-dir")
        if cache is not None:
            args += [cache, str(job.tmp / "cache")]
        tim = _pick(h, "--timings", "--timings-file", "--trace")
        if tim is not None and timings is not None:
            args += [tim, str(timings)]
        return args

    def plan(
        self, job: Job, plan_path: Path, timings: Path | None, targets: Sequence[str] = ()
    ) -> list[str]:
        """``fetchplan plan``; ``targets`` are ``--target`` specs (none: this interpreter)."""
        h = self.helps["plan"]
        out = _pick(h, "-o", "--output", "--plan", "--out")
        if out is None:
            raise ValueError("'fetchplan plan' has no -o/--output")
        many: list[str] = []
        if targets:
            if not _has(h, "--target"):
                raise ValueError("'fetchplan plan' has no --target")
            for spec in targets:
                many += ["--target", spec]
        return [
            *self.base,
            "plan",
            *self._resolve_args("plan", job),
            out,
            str(plan_path),
            *many,
            *self._common("plan", job, timings),
        ]

    def fetch(self, job: Job, plan_path: Path, dest: Path, timings: Path | None) -> list[str]:
        h = self.helps["fetch"]
        args = [*self.base, "fetch", str(plan_path)]
        d = _pick(h, "--dest", "-d", "--dest-dir", "--destination")
        if d is not None:
            args += [d, str(dest)]
        m = _pick(h, "--manifest", "-m", "-o", "--output")
        if m is not None:
            args += [m, str(job.outdir / "manifest.json")]
        progress = _pick(h, "--progress")
        if progress is not None:
            args += [progress, "none"]
        return [*args, *self._trusted("fetch", job), *self._common("fetch", job, timings)]

    def install(self, job: Job, manifest: Path) -> list[str]:
        h = self.helps["install"]
        args = [*self.base, "install", str(manifest)]
        venv = _pick(h, "--venv")
        if venv is not None:
            args += [venv, str(job.venv)]
        if _has(h, "--no-compile"):
            args.append("--no-compile")
        return args

    def run(self, job: Job, timings: Path | None) -> list[str]:
        h = self.helps["run"]
        args = [*self.base, "run", *self._resolve_args("run", job)]
        for opts, value in (
            (("--venv", "--target-venv"), str(job.venv)),
            (("-o", "--output", "--plan"), str(job.outdir / "plan.json")),
            (("--dest", "-d", "--dest-dir"), str(job.outdir / "wheels")),
        ):
            o = _pick(h, *opts)
            if o is not None:
                args += [o, value]
        if _has(h, "--no-compile"):
            args.append("--no-compile")
        progress = _pick(h, "--progress")
        if progress is not None:
            args += [progress, "none"]
        return [*args, *self._common("run", job, timings)]

    def report(self, timings: Path, out: Path) -> list[str]:
        return [*self.base, "report", str(timings), "-o", str(out)]

    def wants_timings(self, cmd: str) -> bool:
        return cmd in self.helps and _pick(self.helps[cmd], "--timings", "--trace") is not None
