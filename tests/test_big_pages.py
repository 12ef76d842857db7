"""Planning against pages the size of a real index's: hundreds of releases, thousands of files.

The index serves real wheels for the few versions a resolution takes, and lists beside them
hundreds of older releases (thousands of files) that do not exist: a planner that reads only
the versions it considers never asks for them, and a malformed entry among them changes
nothing. A plan for several targets reads every page and metadata file once.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fetchplan.errors import NetworkError
from fetchplan.planner.api import PlanOptions, make_plan
from fetchplan.planner.index import IndexPageError
from fetchplan.schemas.plan import Plan
from tests.conftest import MakeIndexServer
from tests.support.bigpage import pad_project, padding_entries
from tests.support.index import write_index
from tests.support.servers import IndexServer
from tests.support.wheels import Dist, build_wheel

RELEASES = 300  # x 37 files: 11,100 listed files of "big", none of which exists
TARGETS = (
    "py=3.11,platform=manylinux_2_17_x86_64",
    "py=3.12,platform=win_amd64",
    "py=3.13,platform=macosx_11_0_arm64",
)


def _index(tmp_path: Path, *, broken: dict[str, object] | None = None) -> Path:
    """Real wheels: app 1.0 (needs big<2, and winonly on Windows), big 1.0 and 2.0, lib 0.5,
    winonly 1.0; "big" and "lib" padded with old releases that only their pages list."""
    dists = [
        Dist("app", "1.0", requires=["big<2", "winonly; sys_platform == 'win32'"]),
        Dist("big", "1.0", requires=["lib>=0.1"]),
        Dist("big", "2.0", requires=["lib>=0.1"]),
        Dist("lib", "0.5"),
        Dist("winonly", "1.0"),
    ]
    built = [build_wheel(tmp_path / "dists", dist) for dist in dists]
    root = tmp_path / "index"
    write_index(root, built)
    for project in ("big", "lib"):
        entries = padding_entries(project, RELEASES, yanked_every=7, files_base="../../files")
        if broken is not None and project == "big":
            entries.insert(len(entries) // 2, broken)
        pad_project(root / "simple" / project / "index.json", entries)
    return root


def _options(tmp_path: Path, server: IndexServer, **kw: object) -> PlanOptions:
    settings: dict[str, object] = {
        "requirements": ("app",),
        "index_url": server.index_url,
        "isolated": True,
        "cache_dir": tmp_path / "cache",
        "output": tmp_path / "plan.json",
        "jobs": 4,
    }
    settings.update(kw)
    return PlanOptions(**settings)  # type: ignore[arg-type]


def _pins(plan: Plan) -> dict[str, str]:
    return {a.name: a.version for a in plan.artifacts}


def _padding_requested(server: IndexServer) -> list[str]:
    return [r.path for r in server.requests("/files/") if "-0.0." in r.path.rsplit("/", 1)[-1]]


def test_page_of_thousands_of_files_plans_from_the_versions_it_needs(
    tmp_path: Path, index_server: MakeIndexServer
) -> None:
    root = _index(tmp_path)
    document = json.loads((root / "simple" / "big" / "index.json").read_text())
    assert len(document["files"]) > 10_000 and len(document["versions"]) > 300
    server = index_server(root)

    plan = make_plan(_options(tmp_path, server)).plan

    assert _pins(plan) == {"app": "1.0", "big": "1.0", "lib": "0.5"}
    big = next(a for a in plan.artifacts if a.name == "big")
    assert big.url == server.file_url("big-1.0-py3-none-any.whl")
    # Only the chosen files' metadata was read; nothing of the padding was asked for.
    assert _padding_requested(server) == []
    assert sorted(r.path for r in server.requests(".metadata")) == [
        "/files/app-1.0-py3-none-any.whl.metadata",
        "/files/big-1.0-py3-none-any.whl.metadata",
        "/files/lib-0.5-py3-none-any.whl.metadata",
    ]


def test_the_newest_allowed_of_hundreds_of_releases_is_the_one_considered(
    tmp_path: Path, index_server: MakeIndexServer
) -> None:
    # The newest release of lib the requirement allows is padding: 0.0.299 has only files that
    # do not exist, so the plan must fail on it, naming it, rather than skip it silently.
    server = index_server(_index(tmp_path))
    with pytest.raises(NetworkError, match=r"/files/lib-0\.0\.299-.*HTTP 404"):
        make_plan(_options(tmp_path, server, requirements=("lib<0.5",)))
    assert len(_padding_requested(server)) >= 1


@pytest.mark.parametrize(
    "broken",
    [
        {"filename": "big-0.0.11-py3-none-any.whl", "url": 7, "hashes": {}},
        {"filename": "big-0.0.11.tar.gz", "url": "x", "hashes": "no", "size": -3},
        {"filename": "big-0.0.11-py3-none-any.whl", "url": "x", "hashes": {}, "size": "big"},
        {"filename": "../../big-0.0.11-py3-none-any.whl", "url": "x", "hashes": {}},
        {"filename": "big-not.a.version-py3-none-any.whl", "url": "x", "hashes": {}},
    ],
)
def test_malformed_entry_of_a_version_never_considered_does_not_break_the_plan(
    tmp_path: Path, index_server: MakeIndexServer, broken: dict[str, object]
) -> None:
    server = index_server(_index(tmp_path, broken=broken))
    plan = make_plan(_options(tmp_path, server)).plan
    assert _pins(plan) == {"app": "1.0", "big": "1.0", "lib": "0.5"}


def test_malformed_entry_of_the_version_considered_fails_as_before(
    tmp_path: Path, index_server: MakeIndexServer
) -> None:
    broken: dict[str, object] = {
        "filename": "big-1.0-cp312-cp312-win_amd64.whl",
        "url": "x",
        "hashes": [],
    }
    server = index_server(_index(tmp_path, broken=broken))
    with pytest.raises(IndexPageError, match=r"malformed index page .*/simple/big/.*hashes"):
        make_plan(_options(tmp_path, server))


def test_hostile_file_of_the_version_considered_never_reaches_the_plan(
    tmp_path: Path, index_server: MakeIndexServer
) -> None:
    hostile: dict[str, object] = {
        "filename": "../big-1.0-py2.py3-none-any.whl",
        "url": "../../files/big-1.0-py3-none-any.whl",
        "hashes": {},
    }
    server = index_server(_index(tmp_path, broken=hostile))
    plan = make_plan(_options(tmp_path, server)).plan
    assert {a.filename for a in plan.artifacts} == {
        "app-1.0-py3-none-any.whl",
        "big-1.0-py3-none-any.whl",
        "lib-0.5-py3-none-any.whl",
    }


def test_several_targets_read_each_page_and_metadata_file_once(
    tmp_path: Path, index_server: MakeIndexServer
) -> None:
    server = index_server(_index(tmp_path))
    plan = make_plan(_options(tmp_path, server, targets=TARGETS)).plan

    names = [t.name for t in plan.targets]
    served = {a.filename: a.targets for a in plan.artifacts}
    assert served == {
        "app-1.0-py3-none-any.whl": tuple(names),
        "big-1.0-py3-none-any.whl": tuple(names),
        "lib-0.5-py3-none-any.whl": tuple(names),
        "winonly-1.0-py3-none-any.whl": (names[1],),
    }
    for project in ("app", "big", "lib", "winonly"):
        pages = [r for r in server.requests(f"/simple/{project}/") if r.method == "GET"]
        assert len(pages) == 1, (project, pages)
    metadata = [r.path for r in server.requests(".metadata")]
    assert len(metadata) == len(set(metadata)), metadata
    assert _padding_requested(server) == []


def test_malformed_entry_just_past_the_version_chosen_while_going_back_changes_nothing(
    tmp_path: Path, index_server: MakeIndexServer
) -> None:
    # app 3.0 needs a lib the user excludes: the resolver goes on to app 2.0 and fetches the
    # next versions' metadata ahead; the malformed app 1.5 after it is never the resolver's
    # business, so it must not fail the plan.
    dists = [
        Dist("app", "3.0", requires=["lib>=2"]),
        Dist("app", "2.0", requires=["lib"]),
        Dist("app", "1.0", requires=["lib"]),
        Dist("lib", "0.5"),
        Dist("lib", "2.0"),
    ]
    built = [build_wheel(tmp_path / "dists", dist) for dist in dists]
    root = tmp_path / "index"
    write_index(root, built)
    broken = {"filename": "app-1.5-py3-none-any.whl", "url": 7, "hashes": {}}
    pad_project(root / "simple" / "app" / "index.json", [broken])
    server = index_server(root)
    plan = make_plan(_options(tmp_path, server, requirements=("app", "lib<2"))).plan
    assert _pins(plan) == {"app": "2.0", "lib": "0.5"}
