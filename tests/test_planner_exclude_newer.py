"""``plan --exclude-newer`` (uv's; pip's ``--uploaded-prior-to``): files uploaded after the
cut-off, or of unknown upload time, are no candidates; the cut-off is recorded and shown."""

from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path

import pytest

from fetchplan.planner.candidates import Rejection, select_candidates
from fetchplan.planner.index import Link, link_from_filename
from fetchplan.planner.target import make_target
from fetchplan.schemas.plan import load_plan
from tests.conftest import MakeIndex, RunCli
from tests.support.index import IndexOptions
from tests.support.wheels import Dist

OLD = "2025-06-01T12:00:00Z"
NEW = "2026-03-01T12:00:00Z"


@pytest.fixture
def dated(make_index: MakeIndex) -> str:
    """lib 1.0 uploaded long ago, lib 2.0 recently (relative to the real clock, so that a
    duration cut-off falls between them), app depending on lib."""
    recent = (_dt.datetime.now(_dt.UTC) - _dt.timedelta(hours=1)).isoformat()
    root = make_index(
        [Dist("app", "1.0", requires=["lib"]), Dist("lib", "1.0"), Dist("lib", "2.0")],
        IndexOptions(
            upload_times={
                "app-1.0-py3-none-any.whl": OLD,
                "lib-1.0-py3-none-any.whl": OLD,
                "lib-2.0-py3-none-any.whl": recent,
            }
        ),
    )
    return (root / "simple").as_uri()


def test_without_a_cut_off_the_newest_is_planned(
    dated: str, run_cli: RunCli, tmp_path: Path
) -> None:
    out = run_cli("plan", "app", "-i", dated, "--isolated", "--no-cache")
    assert out.returncode == 0, out.stderr
    plan, document = load_plan(tmp_path / "plan.json")
    assert {a.name: a.version for a in plan.artifacts} == {"app": "1.0", "lib": "2.0"}
    assert "exclude_newer" not in document["inputs"]["options"]


@pytest.mark.parametrize(
    "case",
    [
        ("--exclude-newer", "2026-01-01", "2026-01-01T00:00:00Z"),
        ("--exclude-newer", "2026-01-01T06:30:00+02:00", "2026-01-01T04:30:00Z"),
        ("--uploaded-prior-to", "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z"),
    ],
    ids=["date", "rfc3339-offset", "pip-alias"],
)
def test_a_time_skips_the_newer_release_and_is_recorded(
    dated: str, run_cli: RunCli, tmp_path: Path, case: tuple[str, str, str]
) -> None:
    option, value, recorded = case
    out = run_cli("plan", "app", "-i", dated, "--isolated", "--no-cache", option, value)
    assert out.returncode == 0, out.stderr
    plan, document = load_plan(tmp_path / "plan.json")
    assert {a.name: a.version for a in plan.artifacts} == {"app": "1.0", "lib": "1.0"}
    assert document["inputs"]["options"]["exclude_newer"] == recorded

    shown = run_cli("show", "plan.json")
    assert shown.returncode == 0, shown.stderr
    assert f"files uploaded after {recorded} excluded (--exclude-newer)" in shown.stdout


def test_pips_configured_uploaded_prior_to_applies_under_the_command_lines(
    dated: str, run_cli: RunCli, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    """pip's ``uploaded-prior-to`` (here ``PIP_UPLOADED_PRIOR_TO``) is a cut-off as pip's own
    resolver takes it, recorded in the plan; ``--exclude-newer`` overrides it; ``--isolated``
    ignores it."""
    env = {**cli_env, "PIP_CONFIG_FILE": os.devnull, "PIP_UPLOADED_PRIOR_TO": "2026-01-01"}
    out = run_cli("plan", "app", "-i", dated, "--no-cache", env=env)
    assert out.returncode == 0, out.stderr
    plan, document = load_plan(tmp_path / "plan.json")
    assert {a.name: a.version for a in plan.artifacts} == {"app": "1.0", "lib": "1.0"}
    assert document["inputs"]["options"]["exclude_newer"] == "2026-01-01T00:00:00Z"

    later = run_cli(
        "plan", "app", "-i", dated, "--no-cache", "--exclude-newer", "1 minute",
        "-o", "later.json", env=env,
    )  # fmt: skip
    assert later.returncode == 0, later.stderr
    plan = load_plan(tmp_path / "later.json")[0]
    assert {a.name: a.version for a in plan.artifacts} == {"app": "1.0", "lib": "2.0"}

    isolated = run_cli(
        "plan", "app", "-i", dated, "--no-cache", "--isolated", "-o", "isolated.json", env=env
    )
    assert isolated.returncode == 0, isolated.stderr
    assert "exclude_newer" not in load_plan(tmp_path / "isolated.json")[1]["inputs"]["options"]

    bad = run_cli(
        "plan", "app", "-i", dated, "--no-cache", "-o", "bad.json",
        env={**env, "PIP_UPLOADED_PRIOR_TO": "soon"},
    )  # fmt: skip
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "fetchplan: error: pip's configuration: uploaded-prior-to: neither a time nor a "
        "duration: 'soon' (use e.g. 2026-01-31T12:00:00Z, 2026-01-31 or '7 days')"
    ]


@pytest.mark.parametrize("duration", ["7 days", "24h", "P7D"])
def test_a_duration_is_that_long_before_now(
    dated: str, run_cli: RunCli, tmp_path: Path, duration: str
) -> None:
    before = _dt.datetime.now(_dt.UTC).replace(microsecond=0)
    out = run_cli(
        "plan", "app", "-i", dated, "--isolated", "--no-cache", "--exclude-newer", duration
    )
    after = _dt.datetime.now(_dt.UTC)
    assert out.returncode == 0, out.stderr
    plan, document = load_plan(tmp_path / "plan.json")
    assert {a.name: a.version for a in plan.artifacts} == {"app": "1.0", "lib": "1.0"}
    cut_off = _dt.datetime.fromisoformat(document["inputs"]["options"]["exclude_newer"])
    length = {"7 days": _dt.timedelta(days=7), "24h": _dt.timedelta(hours=24)}.get(
        duration, _dt.timedelta(days=7)
    )
    assert before - length <= cut_off <= after - length


def test_the_recorded_cut_off_replans_the_same(dated: str, run_cli: RunCli, tmp_path: Path) -> None:
    first = run_cli(
        "plan", "app", "-i", dated, "--isolated", "--no-cache", "--exclude-newer", "P1D"
    )
    assert first.returncode == 0, first.stderr
    _plan1, document = load_plan(tmp_path / "plan.json")
    recorded = document["inputs"]["options"]["exclude_newer"]
    again = run_cli(
        "plan", "app", "-i", dated, "--isolated", "--no-cache", "-o", "again.json",
        "--exclude-newer", recorded,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    plan2, document2 = load_plan(tmp_path / "again.json")
    assert document2["inputs"]["options"]["exclude_newer"] == recorded
    assert [a.url for a in plan2.artifacts] == [a.url for a in _plan1.artifacts]


def test_files_without_upload_time_are_excluded_with_the_reasons(
    make_index: MakeIndex, run_cli: RunCli, tmp_path: Path
) -> None:
    root = make_index(
        [Dist("lib", "1.0"), Dist("lib", "2.0")],
        IndexOptions(upload_times={"lib-2.0-py3-none-any.whl": NEW}),
    )
    index = (root / "simple").as_uri()
    out = run_cli(
        "plan", "lib", "-i", index, "--isolated", "--no-cache",
        "--exclude-newer", "2026-01-01T00:00:00Z",
    )  # fmt: skip
    assert out.returncode != 0
    assert out.stderr.count("\n") == 1, out.stderr
    assert out.stderr.startswith("fetchplan: error: ")
    assert "2.0 (uploaded after 2026-01-01T00:00:00Z)" in out.stderr
    assert "1.0 (no upload time)" in out.stderr
    assert not (tmp_path / "plan.json").exists()

    allowed = run_cli("plan", "lib", "-i", index, "--isolated", "--no-cache")
    assert allowed.returncode == 0, allowed.stderr


@pytest.mark.parametrize("value", ["yesterday", "7 months", "2026-13-01"])
def test_a_bad_value_is_one_line_naming_the_option(
    dated: str, run_cli: RunCli, tmp_path: Path, value: str
) -> None:
    out = run_cli("plan", "app", "-i", dated, "--isolated", "--no-cache", "--exclude-newer", value)
    assert out.returncode != 0
    assert out.stderr.count("\n") == 1, out.stderr
    assert out.stderr.startswith("fetchplan: error: --exclude-newer: ")
    assert repr(value) in out.stderr
    assert not (tmp_path / "plan.json").exists()


def test_run_takes_the_option(run_cli: RunCli) -> None:
    out = run_cli("run", "--help")
    assert out.returncode == 0, out.stderr
    assert "--exclude-newer" in out.stdout and "--uploaded-prior-to" in out.stdout
    assert "--exclude-newer-package" in out.stdout


def _link(filename: str, upload_time: str | None) -> Link:
    link = link_from_filename(
        filename, f"https://files.example/{filename}", "https://index.example/simple/",
        upload_time=upload_time,
    )  # fmt: skip
    assert link is not None
    return link


def test_the_cut_off_is_per_file_not_per_version() -> None:
    """A version whose wheel came after the cut-off but whose sdist came before keeps the sdist;
    a time without a zone is UTC; an unreadable time counts as none."""
    cut_off = _dt.datetime(2026, 1, 1, tzinfo=_dt.UTC)
    links = [
        _link("lib-3.0-py3-none-any.whl", "2026-01-01T00:00:01Z"),
        _link("lib-3.0.tar.gz", "2025-12-31T23:59:59Z"),
        _link("lib-2.0-py3-none-any.whl", "2026-01-01T00:30:00"),
        _link("lib-1.0-py3-none-any.whl", "last tuesday"),
        _link("lib-0.9-py3-none-any.whl", "2026-01-01T00:00:00Z"),
    ]
    found = select_candidates(
        links[0].name, links, make_target(python_version="3.12"), exclude_newer=cut_off
    )
    chosen = {str(c.version): c.link.filename for c in found.candidates if c.link is not None}
    assert chosen == {"3.0": "lib-3.0.tar.gz", "0.9": "lib-0.9-py3-none-any.whl"}
    assert [str(r) for r in found.rejected] == [
        "2.0 (uploaded after 2026-01-01T00:00:00Z)",
        "1.0 (no upload time)",
    ]
    assert all(isinstance(r, Rejection) for r in found.rejected)


@pytest.fixture
def two_dated(make_index: MakeIndex) -> str:
    """lib and other, each with a 1.0 from 2025 and a 2.0 from 2026-03; app needs both."""
    root = make_index(
        [
            Dist("app", "1.0", requires=["lib", "other"]),
            Dist("lib", "1.0"),
            Dist("lib", "2.0"),
            Dist("other", "1.0"),
            Dist("other", "2.0"),
        ],
        IndexOptions(
            upload_times={
                "app-1.0-py3-none-any.whl": OLD,
                "lib-1.0-py3-none-any.whl": OLD,
                "lib-2.0-py3-none-any.whl": NEW,
                "other-1.0-py3-none-any.whl": OLD,
                "other-2.0-py3-none-any.whl": NEW,
            }
        ),
    )
    return (root / "simple").as_uri()


def _versions(tmp_path: Path, name: str = "plan.json") -> dict[str, str]:
    plan, _document = load_plan(tmp_path / name)
    return {a.name: a.version for a in plan.artifacts}


def test_a_project_cut_off_later_than_the_global_one(
    two_dated: str, run_cli: RunCli, tmp_path: Path
) -> None:
    """uv's --exclude-newer-package: one project may take newer files than the rest."""
    out = run_cli(
        "plan", "app", "-i", two_dated, "--isolated", "--no-cache",
        "--exclude-newer", "2026-01-01", "--exclude-newer-package", "Lib=2026-06-01T00:00:00Z",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert _versions(tmp_path) == {"app": "1.0", "lib": "2.0", "other": "1.0"}
    _plan, document = load_plan(tmp_path / "plan.json")
    assert document["inputs"]["options"]["exclude_newer"] == "2026-01-01T00:00:00Z"
    assert document["inputs"]["options"]["exclude_newer_package"] == {"lib": "2026-06-01T00:00:00Z"}
    shown = run_cli("show", "plan.json")
    assert shown.returncode == 0, shown.stderr
    assert (
        "files of lib uploaded after 2026-06-01T00:00:00Z excluded (--exclude-newer-package)"
        in shown.stdout
    )


def test_a_project_cut_off_earlier_without_a_global_one(
    two_dated: str, run_cli: RunCli, tmp_path: Path
) -> None:
    """The other way: only the named project is held back; a duration is resolved and
    recorded as an absolute time."""
    before = _dt.datetime.now(_dt.UTC).replace(microsecond=0)
    out = run_cli(
        "plan", "app", "-i", two_dated, "--isolated", "--no-cache",
        "--exclude-newer-package", "other=2026-01-01",
        "--exclude-newer-package", "app=P1D",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert _versions(tmp_path) == {"app": "1.0", "lib": "2.0", "other": "1.0"}
    _plan, document = load_plan(tmp_path / "plan.json")
    options = document["inputs"]["options"]
    assert "exclude_newer" not in options
    assert options["exclude_newer_package"]["other"] == "2026-01-01T00:00:00Z"
    app_cut = _dt.datetime.fromisoformat(options["exclude_newer_package"]["app"])
    assert before - _dt.timedelta(days=1) <= app_cut <= _dt.datetime.now(_dt.UTC)

    # Re-planning with the recorded values gives the same plan.
    again = run_cli(
        "plan", "app", "-i", two_dated, "--isolated", "--no-cache", "-o", "again.json",
        *(f"--exclude-newer-package={n}={t}" for n, t in options["exclude_newer_package"].items()),
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    _plan2, document2 = load_plan(tmp_path / "again.json")
    assert document2["inputs"]["options"] == options


def test_false_lifts_the_cut_off_for_one_project(
    make_index: MakeIndex, run_cli: RunCli, tmp_path: Path
) -> None:
    """NAME=false: no cut-off for that project, so even its undated files are candidates."""
    root = make_index(
        [Dist("app", "1.0", requires=["lib"]), Dist("lib", "1.0")],
        IndexOptions(upload_times={"app-1.0-py3-none-any.whl": OLD}),
    )
    index = (root / "simple").as_uri()
    held = run_cli(
        "plan", "app", "-i", index, "--isolated", "--no-cache", "--exclude-newer", "2026-01-01"
    )
    assert held.returncode != 0
    assert "1.0 (no upload time)" in held.stderr
    out = run_cli(
        "plan", "app", "-i", index, "--isolated", "--no-cache",
        "--exclude-newer", "2026-01-01", "--exclude-newer-package", "lib=false",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert _versions(tmp_path) == {"app": "1.0", "lib": "1.0"}
    _plan, document = load_plan(tmp_path / "plan.json")
    assert document["inputs"]["options"]["exclude_newer_package"] == {"lib": False}
    shown = run_cli("show", "plan.json")
    assert "no upload-time cut-off for lib (--exclude-newer-package)" in shown.stdout


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("lib", "--exclude-newer-package: 'lib' is not NAME=TIME or NAME=false"),
        ("=2026-01-01", "--exclude-newer-package: '=2026-01-01' is not NAME=TIME"),
        ("bad name!=2026-01-01", "--exclude-newer-package: 'bad name!=2026-01-01' is not"),
        ("lib=", "--exclude-newer-package: 'lib=' is not NAME=TIME"),
        ("lib=soon", "--exclude-newer-package: lib: neither a time nor a duration: 'soon'"),
    ],
)
def test_a_bad_project_cut_off_is_one_line(
    two_dated: str, run_cli: RunCli, tmp_path: Path, value: str, message: str
) -> None:
    out = run_cli(
        "plan", "app", "-i", two_dated, "--isolated", "--no-cache",
        "--exclude-newer-package", value,
    )  # fmt: skip
    assert out.returncode != 0
    assert out.stderr.count("\n") == 1, out.stderr
    assert out.stderr.startswith(f"fetchplan: error: {message}"), out.stderr
    assert not (tmp_path / "plan.json").exists()
