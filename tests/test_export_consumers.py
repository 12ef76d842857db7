"""Each export format against its real consumer, over a static index served on loopback.

pip's own ``--report`` for the same requirements must name the same projects, versions, URLs
and hashes as ours; pip (26.1 or newer) and uv must install our pylock.toml; pip must accept
our requirements file with ``--require-hashes`` (and refuse it once a hash is wrong).

The plan is built here from the index's files (the planner is not involved): it is a format
test. The newest pip comes from a wheel in ``$FETCHPLAN_TEST_TOOLS`` (``.ci/run`` downloads
it); no test reaches a registry.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version

from fetchplan.formats import current_target, export_plan, import_plan
from fetchplan.schemas.plan import Artifact, Dependency, IndexRef, Inputs, Plan, write_plan
from tests.support.index import write_index
from tests.support.processes import Processes
from tests.support.tools import uv_command
from tests.support.wheels import Dist, build_wheel

TIMEOUT = float(os.environ.get("FETCHPLAN_TEST_TIMEOUT", "120"))

# alpha[fast] needs beta and (through the extra) delta; gamma only on Python 2 or through the
# docs extra, never taken. Alpha's metadata is version 2.3, which pip's report shows as is.
DISTS = [
    Dist(
        "Alpha",
        "1.0",
        requires=["beta>=2", "gamma; python_version < '3'"],
        extras={"fast": ["delta>=0.5"], "docs": ["gamma>=1"]},
        requires_python=">=3.8",
        metadata_version="2.3",
    ),
    Dist("beta", "2.1"),
    Dist("beta", "1.0"),
    Dist("delta", "0.5"),
    Dist("gamma", "1.0"),
]
# What resolving alpha[fast] must give, with the dependency edges pip's metadata states.
RESOLVED = {
    "alpha": ("1.0", [("beta", "beta>=2"), ("delta", 'delta>=0.5; extra == "fast"')]),
    "beta": ("2.1", []),
    "delta": ("0.5", []),
}


@dataclass(frozen=True)
class Served:
    root: Path
    base: str
    wheels: dict[str, Path]

    @property
    def index_url(self) -> str:
        return f"{self.base}/simple/"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("index")
    wheels = [build_wheel(root / "build", d) for d in DISTS]
    write_index(root / "www", wheels)
    # The module's processes (the ``processes`` fixture's owner, kept as long as the index).
    owned = Processes()
    proc = owned.start(
        [sys.executable, "-u", "-m", "http.server", "--bind", "127.0.0.1", "0"],
        cwd=root / "www",
        stderr=subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"port (\d+)", line)
        if match is None:
            pytest.fail(f"http.server did not start: {line!r}")
        yield Served(
            root=root / "www",
            base=f"http://127.0.0.1:{match.group(1)}",
            wheels={p.name: root / "www" / "files" / p.name for p in wheels},
        )
    finally:
        owned.close()


def _plan(served: Served) -> Plan:
    artifacts = []
    for filename, path in sorted(served.wheels.items()):
        name, version, _, _ = parse_wheel_filename(filename)
        wanted = RESOLVED.get(name)
        if wanted is None or Version(wanted[0]) != version:
            continue
        data = path.read_bytes()
        artifacts.append(
            Artifact(
                name=canonicalize_name(name),
                version=str(version),
                kind="wheel",
                filename=filename,
                url=f"{served.base}/files/{filename}",
                index=served.index_url,
                hashes={"sha256": hashlib.sha256(data).hexdigest()},
                hash_source="index",
                size=len(data),
                requires_python=">=3.8" if name == "alpha" else None,
                dependencies=tuple(
                    Dependency(name=canonicalize_name(n), requirement=r) for n, r in wanted[1]
                ),
                requested=name == "alpha",
                extras=("fast",) if name == "alpha" else (),
                destination=filename,
            )
        )
    return Plan(
        created="2026-01-01T00:00:00Z",
        inputs=Inputs(requirements=("alpha[fast]",)),
        targets=(current_target(),),
        indexes=(IndexRef(url=served.index_url),),
        destination="wheels",
        artifacts=tuple(artifacts),
    )


def _run(cmd: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )


def _ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, f"{result.args}\n{result.stdout}\n{result.stderr}"
    return result


def _venv(path: Path) -> Path:
    _ok(_run([sys.executable, "-m", "venv", "--without-pip", str(path)]))
    return path / "bin" / "python"


def _installed(python: Path) -> dict[str, str]:
    out = _ok(
        _run(
            [
                str(python),
                "-c",
                "import importlib.metadata as m, json;"
                "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))",
            ]
        )
    )
    return {canonicalize_name(k): v for k, v in json.loads(out.stdout).items()}


def _pip() -> list[str]:
    return [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]


def _identity(item: dict[str, object]) -> tuple[str, str, str, str]:
    metadata = item["metadata"]
    info = item["download_info"]
    assert isinstance(metadata, dict) and isinstance(info, dict)
    return (
        canonicalize_name(str(metadata["name"])),
        str(metadata["version"]),
        str(info["url"]),
        str(info["archive_info"]["hashes"]["sha256"]),
    )


@pytest.fixture(scope="module")
def pips_report(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pip's own ``--dry-run --report`` for ``alpha[fast]`` against the served index."""
    report = tmp_path_factory.mktemp("pip-report") / "pip-report.json"
    _ok(
        _run(
            [
                *_pip(),
                "install",
                "--dry-run",
                "--ignore-installed",
                "--no-cache-dir",
                "--quiet",
                "--report",
                str(report),
                "--index-url",
                served.index_url,
                "alpha[fast]",
            ]
        )
    )
    return report


def test_pip_report_matches_pips_own(served: Served, pips_report: Path) -> None:
    # The hand-built plan records no core metadata: the export falls back to what the plan
    # knows (see test_planned_metadata_is_pips_metadata for the planner's own plans).
    ours = json.loads(export_plan(_plan(served), "pip-report"))
    report = pips_report
    theirs = json.loads(report.read_text())
    assert ours["version"] == theirs["version"] == "1"
    assert {_identity(i) for i in ours["install"]} == {_identity(i) for i in theirs["install"]}
    assert len(ours["install"]) == len(theirs["install"]) == 3

    def flags(report: dict[str, list[dict[str, object]]]) -> dict[str, tuple[object, ...]]:
        return {
            _identity(i)[0]: (
                i["requested"],
                i.get("requested_extras"),
                i["is_direct"],
                i.get("is_yanked", False),  # older pips do not write it
                i["download_info"]["archive_info"]["hash"],  # type: ignore[index]
                i["metadata"].get("requires_python"),  # type: ignore[attr-defined]
            )
            for i in report["install"]
        }

    assert flags(ours) == flags(theirs)
    assert ours["environment"] == theirs["environment"]
    # Every dependency we record is one pip's metadata declares.
    for item in ours["install"]:
        mine = {r.replace(" ", "") for r in item["metadata"].get("requires_dist", [])}
        match = next(t for t in theirs["install"] if _identity(t) == _identity(item))
        declared = {r.replace(" ", "") for r in match["metadata"].get("requires_dist", [])}
        assert mine <= declared

    # pip's own report imports into the same artifacts.
    imported = import_plan(report.read_text(), str(report), index_url=served.index_url)
    plan = _plan(served)
    key = {a.filename: (a.url, a.hashes, a.requested, a.extras, a.index) for a in plan.artifacts}
    assert {
        a.filename: (a.url, a.hashes, a.requested, a.extras, a.index) for a in imported.artifacts
    } == key
    assert {a.name: {d.name for d in a.dependencies} for a in imported.artifacts} == {
        "alpha": {"beta", "delta"},
        "beta": set(),
        "delta": set(),
    }
    # ... and keeps pip's metadata, which a second export gives back unchanged.
    again = json.loads(export_plan(imported, "pip-report"))
    assert _by_name(again) == _by_name(theirs)


def _comparable(item: dict[str, Any]) -> dict[str, Any]:
    """A report item without what pip's report has and a plan does not keep: fetchplan's
    extension data, the description."""
    kept = {k: v for k, v in item.items() if k != "fetchplan"}
    kept["metadata"] = {k: v for k, v in item["metadata"].items() if k != "description"}
    return kept


def _by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        canonicalize_name(item["metadata"]["name"]): _comparable(item) for item in report["install"]
    }


def test_planned_metadata_is_pips_metadata(
    served: Served,
    pips_report: Path,
    tmp_path: Path,
    cli_env: dict[str, str],
    fetchplan_cmd: list[str],
) -> None:
    """A plan the planner made exports the report pip writes: the full core metadata (a 2.3
    version, a requirement whose marker is false here, an extra nobody selected), the flags,
    the URLs and hashes; only fetchplan's extension key and the description differ."""
    plan_path = tmp_path / "plan.json"
    exported = tmp_path / "ours.json"
    for cmd in (
        [
            "plan",
            "--index-url",
            served.index_url,
            "--no-cache",
            "-o",
            str(plan_path),
            "alpha[fast]",
        ],
        ["export", str(plan_path), "--format", "pip-report", "-o", str(exported)],
    ):
        _ok(
            subprocess.run(
                [*fetchplan_cmd, *cmd],
                capture_output=True,
                text=True,
                env=cli_env,
                timeout=TIMEOUT,
                check=False,
            )
        )
    ours = json.loads(exported.read_text())
    theirs = json.loads(pips_report.read_text())
    assert _by_name(ours) == _by_name(theirs)
    assert ours["environment"] == theirs["environment"]

    alpha = _by_name(ours)["alpha"]["metadata"]
    assert alpha["metadata_version"] == "2.3" and alpha["name"] == "Alpha"
    assert alpha["summary"] == "test distribution Alpha"
    declared = [r.replace(" ", "") for r in alpha["requires_dist"]]
    assert "gamma;python_version<'3'" in declared  # marker false here: declared all the same
    assert 'gamma>=1;extra=="docs"' in declared  # unselected extra
    assert alpha["provides_extra"] == ["fast", "docs"]
    plan = json.loads(plan_path.read_text())
    recorded = {a["name"]: a["metadata"] for a in plan["artifacts"]}
    assert recorded["alpha"] == alpha
    assert {a["name"]: [d["name"] for d in a["dependencies"]] for a in plan["artifacts"]} == {
        "alpha": ["beta", "delta"],
        "beta": [],
        "delta": [],
    }


def _uv() -> str:
    return uv_command()[0]


def _write_pylock(served: Served, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "pylock.toml"
    path.write_text(export_plan(_plan(served), "pylock"))
    return path


def test_pylock_installs_with_uv(served: Served, tmp_path: Path) -> None:
    lock = _write_pylock(served, tmp_path / "lock")
    python = _venv(tmp_path / "venv")
    env = {**os.environ, "UV_CACHE_DIR": str(tmp_path / "uv-cache"), "UV_NO_CONFIG": "1"}
    result = subprocess.run(
        [_uv(), "pip", "install", "--no-index", "--python", str(python), "-r", str(lock)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=env,
        check=False,
    )
    _ok(result)
    installed = _installed(python)
    assert {k: installed.get(k) for k in RESOLVED} == {k: v[0] for k, v in RESOLVED.items()}
    assert "gamma" not in installed


def test_pylock_installs_with_newest_pip(served: Served, newest_pip: Path, tmp_path: Path) -> None:
    lock = _write_pylock(served, tmp_path / "lock")
    python = _venv(tmp_path / "venv")
    _ok(
        _run(
            [
                str(newest_pip),
                "-m",
                "pip",
                "--python",
                str(python),
                "install",
                "--no-index",
                "--no-cache-dir",
                "--disable-pip-version-check",
                "-r",
                str(lock),
            ]
        )
    )
    installed = _installed(python)
    assert {k: installed.get(k) for k in RESOLVED} == {k: v[0] for k, v in RESOLVED.items()}


def test_requirements_accepted_by_pip_require_hashes(served: Served, tmp_path: Path) -> None:
    text = export_plan(_plan(served), "requirements")
    good = tmp_path / "requirements.txt"
    good.write_text(text)
    python = _venv(tmp_path / "venv")
    install = [*_pip(), "--python", str(python), "install", "--no-cache-dir", "--require-hashes"]
    _ok(_run([*install, "-r", str(good)]))
    installed = _installed(python)
    assert {k: installed.get(k) for k in RESOLVED} == {k: v[0] for k, v in RESOLVED.items()}

    # The hashes are real: one wrong digit and pip refuses.
    digest = re.search(r"--hash=sha256:([0-9a-f]{64})", text)
    assert digest is not None
    wrong = digest.group(1)[:-1] + ("0" if digest.group(1)[-1] != "0" else "1")
    bad = tmp_path / "bad.txt"
    bad.write_text(text.replace(digest.group(1), wrong))
    refused = _run([*install, "--force-reinstall", "-r", str(bad)])
    assert refused.returncode != 0
    assert "HASHES" in refused.stderr.upper()


@pytest.mark.parametrize("fmt", ["pip-report", "pylock", "requirements"])
def test_cli_round_trip_keeps_urls_hashes_sizes(
    served: Served,
    tmp_path: Path,
    fmt: str,
    cli_env: dict[str, str],
    fetchplan_cmd: list[str],
) -> None:
    plan = _plan(served)
    plan_path = tmp_path / "plan.json"
    write_plan(plan_path, plan)
    exported = tmp_path / {"pylock": "pylock.toml", "pip-report": "r.json"}.get(fmt, "req.txt")
    for cmd in (
        ["export", str(plan_path), "--format", fmt, "-o", str(exported)],
        ["import", str(exported), "-o", str(tmp_path / "back.json")],
    ):
        result = subprocess.run(
            [*fetchplan_cmd, *cmd],
            capture_output=True,
            text=True,
            env=cli_env,
            timeout=TIMEOUT,
            check=False,
        )
        _ok(result)
    back = json.loads((tmp_path / "back.json").read_text())
    assert [(a["url"], a["hashes"], a["size"]) for a in back["artifacts"]] == [
        (a.url, a.hashes, a.size) for a in plan.artifacts
    ]


def test_import_pylocks_written_by_pip_and_uv(
    served: Served, newest_pip: Path, tmp_path: Path
) -> None:
    (tmp_path / "in.txt").write_text("alpha[fast]\n")
    by_pip = tmp_path / "pip" / "pylock.toml"
    by_pip.parent.mkdir()
    _ok(
        _run(
            [
                str(newest_pip),
                "-m",
                "pip",
                "lock",
                "--no-cache-dir",
                "--disable-pip-version-check",
                "--index-url",
                served.index_url,
                "-r",
                str(tmp_path / "in.txt"),
                "-o",
                str(by_pip),
            ]
        )
    )
    by_uv = tmp_path / "uv" / "pylock.toml"
    env = {**os.environ, "UV_CACHE_DIR": str(tmp_path / "uv-cache"), "UV_NO_CONFIG": "1"}
    _ok(
        subprocess.run(
            [
                _uv(),
                "pip",
                "compile",
                "--index-url",
                served.index_url,
                str(tmp_path / "in.txt"),
                "-o",
                str(by_uv),
            ],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            env=env,
            check=False,
        )
    )
    want = {(a.url, a.hashes["sha256"]) for a in _plan(served).artifacts}
    for lock in (by_pip, by_uv):
        plan = import_plan(lock.read_text(), str(lock))
        assert {(a.url, a.hashes["sha256"]) for a in plan.artifacts} == want, lock
