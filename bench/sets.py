"""Requirement sets: top-level names (``sets/<name>.in``) and pinned closures (``<name>.txt``).

The pins are resolved once with pip as this machine has it configured (``--repin``) and then
kept, so runs stay comparable. Their wheels are downloaded once by name and version with pip
and kept under ``bench/work/wheels``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename
from staticindex import WheelInfo

__all__ = ["ReqSet", "download_wheels", "graph_depth", "load_set", "repin"]

HERE = Path(__file__).resolve().parent
SETS = HERE / "sets"


@dataclass(frozen=True)
class ReqSet:
    name: str
    reqs_in: Path
    pins_path: Path
    top_level: tuple[str, ...]
    pins: dict[str, str]
    """canonical name -> version"""


def _lines(path: Path) -> list[str]:
    out = []
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            out.append(line)
    return out


def load_set(name: str) -> ReqSet:
    reqs_in = SETS / f"{name}.in"
    pins_path = SETS / f"{name}.txt"
    if not reqs_in.exists():
        raise SystemExit(f"no requirement set {name!r}: {reqs_in.name} missing")
    if not pins_path.exists():
        raise SystemExit(f"set {name!r} has no pins yet: run with --repin --sets {name}")
    pins = {}
    for line in _lines(pins_path):
        req = Requirement(line)
        (spec,) = tuple(req.specifier)
        pins[str(canonicalize_name(req.name))] = spec.version
    return ReqSet(name, reqs_in, pins_path, tuple(_lines(reqs_in)), pins)


def repin(name: str) -> None:
    """Resolve ``<name>.in`` with pip (the machine's configuration) and write ``<name>.txt``."""
    reqs_in = SETS / f"{name}.in"
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--dry-run",
                "--ignore-installed",
                "--only-binary",
                ":all:",
                "--quiet",
                "--report",
                str(report),
                "-r",
                str(reqs_in),
            ],
            check=True,
        )
        data = json.loads(report.read_text())
    pins = sorted(
        (str(canonicalize_name(i["metadata"]["name"])), i["metadata"]["version"])
        for i in data["install"]
    )
    body = "".join(f"{n}=={v}\n" for n, v in pins)
    (SETS / f"{name}.txt").write_text(
        f"# The full closure of {name}.in, resolved once with pip by `bench/run.py --repin`.\n"
        f"# {len(pins)} distributions, all wheels.\n{body}"
    )


def _matching(wheels_dir: Path, rs: ReqSet) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(wheels_dir.glob("*.whl")):
        name, version, _b, _t = parse_wheel_filename(path.name)
        cname = str(canonicalize_name(name))
        if rs.pins.get(cname) == str(version):
            if cname in found:
                raise SystemExit(
                    f"two wheels for {cname} {version} in {wheels_dir}: "
                    f"{found[cname].name}, {path.name}; remove one"
                )
            found[cname] = path
    return found


def download_wheels(rs: ReqSet, wheels_dir: Path) -> dict[str, Path]:
    """Wheels of every pin of ``rs``; missing ones downloaded with pip (machine config)."""
    wheels_dir.mkdir(parents=True, exist_ok=True)
    found = _matching(wheels_dir, rs)
    missing = sorted(set(rs.pins) - set(found))
    if missing:
        print(f"[{rs.name}] downloading {len(missing)} wheels once with pip", flush=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--only-binary",
                ":all:",
                "-d",
                str(wheels_dir),
                *(f"{n}=={rs.pins[n]}" for n in missing),
            ],
            check=True,
        )
        found = _matching(wheels_dir, rs)
        still = sorted(set(rs.pins) - set(found))
        if still:
            raise SystemExit(f"no wheel downloaded for: {', '.join(still)}")
    return found


def graph_depth(rs: ReqSet, infos: dict[str, WheelInfo]) -> int:
    """Levels of the dependency graph a resolver walks from the top level (breadth first)."""
    env = {k: str(v) for k, v in default_environment().items()}
    reqs_of: dict[str, list[tuple[str, frozenset[str]]]] = {}

    def deps(project: str, extras: frozenset[str]) -> list[tuple[str, frozenset[str]]]:
        text = infos[project].metadata.decode("utf-8", "replace")
        header = text.split("\n\n", 1)[0]
        out = []
        for line in header.splitlines():
            if not line.lower().startswith("requires-dist:"):
                continue
            try:
                req = Requirement(line.split(":", 1)[1].strip())
            except InvalidRequirement:
                continue
            if req.marker is not None and not any(
                req.marker.evaluate({**env, "extra": e}) for e in (extras or {""})
            ):
                continue
            out.append((str(canonicalize_name(req.name)), frozenset(req.extras)))
        return out

    level: dict[str, int] = {}
    queue: deque[tuple[str, frozenset[str], int]] = deque()
    for line in rs.top_level:
        req = Requirement(line)
        queue.append((str(canonicalize_name(req.name)), frozenset(req.extras), 1))
    seen: set[tuple[str, frozenset[str]]] = set()
    while queue:
        project, extras, depth = queue.popleft()
        if (project, extras) in seen or project not in infos:
            continue
        seen.add((project, extras))
        level[project] = min(level.get(project, depth), depth)
        key = f"{project}[{','.join(sorted(extras))}]"
        if key not in reqs_of:
            reqs_of[key] = deps(project, extras)
        for dep, dep_extras in reqs_of[key]:
            queue.append((dep, dep_extras, depth + 1))
    return max(level.values(), default=0)
