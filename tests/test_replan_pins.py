"""Re-planning keeps the pins that still satisfy the inputs, as ``uv pip compile -o`` does:
over the plan ``-o`` overwrites, or ``--from`` a plan, a pylock.toml or a pinned requirements
file; ``--upgrade`` and ``--upgrade-package NAME[SPEC]`` move them. Each step is compared with
uv on the same index, uv keeping its own output file's pins. A hashed lock file given with
``-c`` keeps an unpinned requirements file in hash-checking mode, as pip 26 takes it."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name
from packaging.version import Version

from fetchplan.planner.candidates import Candidate
from fetchplan.planner.index import IndexPageError
from fetchplan.planner.provider import preferred_first
from fetchplan.schemas.plan import load_plan
from tests.conftest import MakeIndexServer, RunCli
from tests.support.servers import IndexServer
from tests.support.tools import run_ok, uv_pins
from tests.support.wheels import Dist

OLD = [
    Dist("app", "1.0", requires=["lib", "util>=1"]),
    Dist("lib", "1.0"),
    Dist("util", "1.0"),
    Dist("other", "1.0"),
]
NEW = [
    *OLD,
    Dist("app", "1.1", requires=["lib", "util>=2"]),
    Dist("lib", "2.0"),
    Dist("util", "2.0"),
    Dist("other", "1.5"),
    Dist("other", "2.0"),
]
FIRST = {"app": "1.0", "lib": "1.0", "util": "1.0", "other": "1.0"}


@pytest.fixture
def indexes(index_server: MakeIndexServer) -> tuple[IndexServer, IndexServer]:
    return index_server(OLD), index_server(NEW)


def _pins(tmp_path: Path, name: str = "plan.json") -> dict[str, str]:
    plan, _document = load_plan(tmp_path / name)
    return {str(a.name): a.version for a in plan.artifacts}


def _plan(run_cli: RunCli, index: IndexServer, *args: str) -> subprocess.CompletedProcess[str]:
    out = run_cli("plan", *args, "-i", index.index_url, "--isolated", "--no-cache")
    assert out.returncode == 0, out.stderr
    return out


def _step(run_cli: RunCli, tmp_path: Path, index: IndexServer, *args: str) -> dict[str, str]:
    """One re-plan by fetchplan (over plan.json) and by uv (over its own output file), which
    must pin the same; returns the pins."""
    _plan(run_cli, index, "-r", "in.txt", "-o", "plan.json", *args)
    ours = _pins(tmp_path)
    assert ours == uv_pins(tmp_path, index.index_url, "in.txt", *args)
    return ours


def test_pins_are_kept_and_moved_as_uv_moves_them(
    indexes: tuple[IndexServer, IndexServer], run_cli: RunCli, tmp_path: Path
) -> None:
    old, new = indexes
    (tmp_path / "in.txt").write_text("app\nother\n")
    assert _step(run_cli, tmp_path, old) == FIRST
    shutil.copy(tmp_path / "plan.json", tmp_path / "first.json")

    # Newer releases appear: every pin still satisfies the inputs, so none moves.
    assert _step(run_cli, tmp_path, new) == FIRST

    # A tightened requirement moves its project only.
    (tmp_path / "in.txt").write_text("app\nother\nlib>=2\n")
    assert _step(run_cli, tmp_path, new) == {**FIRST, "lib": "2.0"}

    assert _step(run_cli, tmp_path, new, "--upgrade-package", "other") == {
        **FIRST,
        "lib": "2.0",
        "other": "2.0",
    }
    assert _step(run_cli, tmp_path, new, "-P", "other<2") == {
        **FIRST,
        "lib": "2.0",
        "other": "1.5",
    }
    diff = run_cli("diff", "first.json", "plan.json")
    assert "other" in diff.stdout and "1.5" in diff.stdout, diff.stdout

    assert _step(run_cli, tmp_path, new, "--upgrade") == {
        "app": "1.1",
        "lib": "2.0",
        "util": "2.0",
        "other": "2.0",
    }


def test_pins_are_kept_from_a_plan_a_pylock_or_a_requirements_file(
    indexes: tuple[IndexServer, IndexServer], run_cli: RunCli, tmp_path: Path
) -> None:
    old, new = indexes
    (tmp_path / "in.txt").write_text("app\nother\n")
    _plan(run_cli, old, "-r", "in.txt", "-o", "first.json")
    assert _pins(tmp_path, "first.json") == FIRST
    exported = run_cli("export", "first.json", "--format", "pylock", "-o", "pylock.toml")
    assert exported.returncode == 0, exported.stderr
    uv_pins(tmp_path, old.index_url, "in.txt")  # uv-out.txt: uv's pinned requirements file
    (tmp_path / "pins.txt").write_text((tmp_path / "uv-out.txt").read_text())

    for source in ("first.json", "pylock.toml", "pins.txt"):
        name = f"from-{source}.json"
        _plan(run_cli, new, "-r", "in.txt", "-o", name, "--from", source)
        assert _pins(tmp_path, name) == FIRST, source
        _plan(run_cli, new, "-r", "in.txt", "-o", name, "--from", source, "-P", "util")
        assert _pins(tmp_path, name) == {**FIRST, "app": "1.0", "util": "2.0"}, source

    # Without a plan to overwrite or --from, the newest versions are taken.
    _plan(run_cli, new, "-r", "in.txt", "-o", "fresh.json")
    assert _pins(tmp_path, "fresh.json") == {
        "app": "1.1",
        "lib": "2.0",
        "util": "2.0",
        "other": "2.0",
    }


def test_a_hashed_lock_as_constraints_keeps_hash_checking_mode(
    indexes: tuple[IndexServer, IndexServer], run_cli: RunCli, tmp_path: Path, newest_pip: Path
) -> None:
    old, new = indexes
    (tmp_path / "in.txt").write_text("app\nother\n")
    _plan(run_cli, old, "-r", "in.txt", "-o", "first.json")
    exported = run_cli("export", "first.json", "--format", "requirements", "-o", "old-pins.txt")
    assert exported.returncode == 0, exported.stderr

    _plan(run_cli, new, "-r", "in.txt", "-c", "old-pins.txt", "-o", "hashed.json")
    plan, document = load_plan(tmp_path / "hashed.json")
    assert _pins(tmp_path, "hashed.json") == FIRST
    assert all(a.hash_source == "index" for a in plan.artifacts)
    assert len(document["inputs"]["constraints"]) == len(FIRST)

    report = tmp_path / "report.json"
    run_ok(
        [
            str(newest_pip), "-m", "pip", "install", "--dry-run", "--ignore-installed",
            "--quiet", "--no-cache-dir", "--disable-pip-version-check",
            "--index-url", new.index_url, "-r", "in.txt", "-c", "old-pins.txt",
            "--report", str(report),
        ],
        cwd=tmp_path,
    )  # fmt: skip
    pips = {
        canonicalize_name(item["metadata"]["name"]): item["metadata"]["version"]
        for item in json.loads(report.read_text())["install"]
    }
    assert pips == FIRST

    # A requirement no constraint pins is still refused, naming its line.
    (tmp_path / "in.txt").write_text("app\nother\nunpinned-extra\n")
    out = run_cli(
        "plan", "-r", "in.txt", "-c", "old-pins.txt", "-o", "refused.json",
        "-i", new.index_url, "--isolated", "--no-cache",
    )  # fmt: skip
    assert out.returncode == 2
    assert "in.txt:3: in hash-checking mode every requirement must be pinned" in out.stderr
    assert not (tmp_path / "refused.json").exists()


@pytest.mark.parametrize(
    "case",
    [
        (("--from", "missing.json"), "missing.json: --from: cannot read"),
        (("--from", "broken.json"), "broken.json"),
        (("-P", "lib[x]"), "--upgrade-package 'lib[x]': give a project name"),
        (("-P", "lib>>1"), "--upgrade-package 'lib>>1':"),
    ],
    ids=["missing", "not-a-plan", "extras", "malformed"],
)
def test_bad_pin_sources_are_one_line_errors(
    indexes: tuple[IndexServer, IndexServer],
    run_cli: RunCli,
    tmp_path: Path,
    case: tuple[tuple[str, ...], str],
) -> None:
    args, message = case
    _old, new = indexes
    (tmp_path / "broken.json").write_text('{"format": "something else"}')
    out = run_cli("plan", "app", *args, "-i", new.index_url, "--isolated", "--no-cache")
    assert out.returncode != 0
    assert message in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert not (tmp_path / "plan.json").exists()


def test_an_unreadable_plan_to_overwrite_is_planned_afresh(
    indexes: tuple[IndexServer, IndexServer], run_cli: RunCli, tmp_path: Path
) -> None:
    _old, new = indexes
    (tmp_path / "plan.json").write_text("{not json")
    out = _plan(run_cli, new, "other")
    assert "plan.json: its pins are not kept" in out.stderr
    assert _pins(tmp_path) == {"other": "2.0"}


def test_kept_pins_are_what_is_fetched(
    indexes: tuple[IndexServer, IndexServer], run_cli: RunCli, tmp_path: Path
) -> None:
    """The metadata prefetched ahead of the resolver is that of the kept pins: a re-plan that
    moves nothing reads no metadata of the newer releases."""
    old, new = indexes
    (tmp_path / "in.txt").write_text("app\nother\n")
    _plan(run_cli, old, "-r", "in.txt")
    new.reset_counters()
    _plan(run_cli, new, "-r", "in.txt")
    assert _pins(tmp_path) == FIRST
    fetched = sorted(r.path for r in new.requests(".metadata"))
    assert fetched == sorted(
        f"/files/{name}-{version}-py3-none-any.whl.metadata" for name, version in FIRST.items()
    )


def _candidates(*versions: str, broken_after: int | None = None) -> Iterator[Candidate]:
    for index, version in enumerate(versions):
        if broken_after is not None and index == broken_after:
            raise IndexPageError("http://127.0.0.1/simple/lib/", "a malformed file")
        yield Candidate(name=canonicalize_name("lib"), version=Version(version), link=None)


def test_preferred_first_moves_the_kept_pin_to_the_front() -> None:
    found = preferred_first(_candidates("3.0", "2.0", "1.0"), {Version("2.0"), Version("1.0")})
    assert [str(c.version) for c in found] == ["2.0", "3.0", "1.0"]
    found = preferred_first(_candidates("3.0", "2.0"), {Version("0.5")})
    assert [str(c.version) for c in found] == ["3.0", "2.0"]


def test_preferred_first_raises_a_malformed_file_where_the_resolver_meets_it() -> None:
    found = preferred_first(_candidates("3.0", "2.0", "1.0", broken_after=1), {Version("1.0")})
    assert str(next(found).version) == "3.0"
    with pytest.raises(IndexPageError, match="a malformed file"):
        next(found)
