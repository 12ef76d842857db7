"""Export and import of each format without a network: fidelity, multi-target markers, and
clear errors for what a format cannot hold or a file that is wrong."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.pylock import Pylock
from packaging.utils import canonicalize_name

from fetchplan.errors import FileFormatError, InputError
from fetchplan.formats import ExportError, Format, Found, Pin, export_plan, import_plan
from fetchplan.schemas import validate
from fetchplan.schemas.plan import (
    Artifact,
    Dependency,
    IndexRef,
    Inputs,
    Plan,
    Target,
    write_plan,
)
from tests.conftest import RunCli

INDEX = "https://index.example.org/simple/"
FILES = "https://files.example.org/packages"
LINUX = Target(
    name="linux",
    markers={
        "implementation_name": "cpython",
        "platform_machine": "x86_64",
        "python_full_version": "3.12.1",
        "python_version": "3.12",
        "sys_platform": "linux",
    },
    tags=("cp312-cp312-manylinux_2_17_x86_64", "py3-none-any"),
)
WINDOWS = Target(
    name="windows",
    markers={**LINUX.markers, "platform_machine": "AMD64", "sys_platform": "win32"},
    tags=("cp312-cp312-win_amd64", "py3-none-any"),
)


def _artifact(filename: str, **fields: object) -> Artifact:
    name, version = filename.removesuffix(".tar.gz").split("-")[:2]
    digest = (filename.encode().hex() * 4)[:64]
    base: dict[str, object] = {
        "name": canonicalize_name(name),
        "version": version,
        "kind": "wheel" if filename.endswith(".whl") else "sdist",
        "filename": filename,
        "url": f"{FILES}/{filename}",
        "index": INDEX,
        "hashes": {"sha256": digest},
        "hash_source": "index",
        "size": len(filename) * 100,
        "destination": filename,
    }
    base.update(fields)
    return Artifact(**base)  # type: ignore[arg-type]


def _plan(*artifacts: Artifact, targets: tuple[Target, ...] = (LINUX,)) -> Plan:
    return Plan(
        created="2026-01-01T00:00:00Z",
        inputs=Inputs(requirements=("app[cli]",)),
        targets=targets,
        indexes=(IndexRef(url=INDEX),),
        destination="wheels",
        artifacts=artifacts,
    )


RICH = _plan(
    _artifact(
        "app-2.0-py3-none-any.whl",
        requested=True,
        extras=("cli",),
        requires_python=">=3.9",
        upload_time="2025-03-04T05:06:07.123456Z",
        provenance="https://index.example.org/integrity/app/2.0/app-2.0-py3-none-any.whl/provenance",
        dependencies=(
            Dependency(name=canonicalize_name("lib"), requirement="lib<2,>=1.1"),
            Dependency(name=canonicalize_name("clicky"), requirement='clicky; extra == "cli"'),
        ),
    ),
    _artifact("lib-1.4-cp312-cp312-manylinux_2_17_x86_64.whl", yanked=True, yanked_reason="bad"),
    _artifact("clicky-0.3.tar.gz", hashes={"sha256": "c" * 64, "md5": "d" * 32}, size=None),
    _artifact("setuptools-80.0-py3-none-any.whl", build_dependency=True),
)


def _import(text: str, filename: str, **kwargs: object) -> Plan:
    return import_plan(text, filename, created="2026-02-02T00:00:00Z", **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fmt", "filename"),
    [("pip-report", "r.json"), ("pylock", "pylock.toml"), ("requirements", "req.txt")],
)
def test_round_trip_keeps_every_installed_artifact(fmt: Format, filename: str) -> None:
    text = export_plan(RICH, fmt)
    back = _import(text, filename)
    validate(back.to_dict(), "plan", "back")
    expected = [a for a in RICH.artifacts if not a.build_dependency]
    assert [(a.url, a.hashes, a.size) for a in back.artifacts] == [
        (a.url, a.hashes, a.size) for a in expected
    ]
    # The fields other tools have no place for travel in fetchplan's extension data.
    for got, want in zip(back.artifacts, expected, strict=True):
        assert got.to_dict() | {"hash_source": None} == want.to_dict() | {"hash_source": None}
    assert back.targets == (LINUX,) or fmt == "requirements"
    assert back.targets[0].markers == LINUX.markers
    assert back.inputs.requirements == ("app[cli]==2.0",)


def test_pylock_is_valid_pep751_with_native_fields() -> None:
    document = tomllib.loads(export_plan(RICH, "pylock"))
    lock = Pylock.from_dict(document)
    assert [p.name for p in lock.packages] == ["app", "lib", "clicky"]
    app, lib, clicky = lock.packages
    assert app.wheels is not None and app.wheels[0].upload_time is not None
    assert str(app.requires_python) == ">=3.9"
    assert app.dependencies == [{"name": "clicky"}, {"name": "lib"}]
    assert app.index == INDEX
    assert clicky.sdist is not None and clicky.sdist.size is None
    assert dict(clicky.sdist.hashes) == {"md5": "d" * 32, "sha256": "c" * 64}
    assert lib.marker is None
    assert lock.environments is not None
    assert lock.environments[0].evaluate(dict(LINUX.markers))
    assert not lock.environments[0].evaluate(dict(WINDOWS.markers))


MULTI = _plan(
    _artifact("app-2.0-py3-none-any.whl", requested=True),
    _artifact("lib-1.4-cp312-cp312-manylinux_2_17_x86_64.whl", targets=("linux",)),
    _artifact("lib-1.4-cp312-cp312-win_amd64.whl", targets=("windows",)),
    _artifact("winonly-3.0-py3-none-any.whl", targets=("windows",)),
    _artifact("old-1.0-py3-none-any.whl", targets=("linux",)),
    _artifact("old-2.0-py3-none-any.whl", targets=("windows",)),
    targets=(LINUX, WINDOWS),
)


def test_pylock_multi_target_markers_select_each_target() -> None:
    text = export_plan(MULTI, "pylock")
    lock = Pylock.from_dict(tomllib.loads(text))
    markers: dict[tuple[str, str], Marker | None] = {
        (p.name, str(p.version)): p.marker for p in lock.packages
    }
    assert markers[("app", "2.0")] is None
    assert markers[("lib", "1.4")] is None  # both targets: one entry, two wheels
    winonly = markers[("winonly", "3.0")]
    assert winonly is not None
    assert winonly.evaluate(dict(WINDOWS.markers))
    assert not winonly.evaluate(dict(LINUX.markers))
    for target in (LINUX, WINDOWS):
        plan = _import(text, "pylock.toml", target=target.name)
        got = {a.filename for a in plan.artifacts}
        want = {a.filename for a in MULTI.artifacts if a.targets in (None, (target.name,))}
        assert got == want
        assert plan.targets == (target,)
    with pytest.raises(InputError, match="several targets"):
        _import(text, "pylock.toml")


def test_requirements_multi_target_pins_carry_markers() -> None:
    text = export_plan(MULTI, "requirements")
    pins = [line for line in text.splitlines() if "==" in line and not line.startswith("#")]
    assert 'old==1.0 ; platform_machine == "x86_64" and sys_platform == "linux" \\' in pins
    lib = text[text.index("lib==1.4") :].split("\n\n")[0]
    assert lib.count("--hash=sha256:") == 2
    windows = _import(text, "req.txt", target="windows")
    assert {a.filename for a in windows.artifacts} == {
        "app-2.0-py3-none-any.whl",
        "lib-1.4-cp312-cp312-win_amd64.whl",
        "winonly-3.0-py3-none-any.whl",
        "old-2.0-py3-none-any.whl",
    }


def test_pip_report_needs_a_target_choice_for_multi_target_plans() -> None:
    with pytest.raises(ExportError, match="several targets"):
        export_plan(MULTI, "pip-report")
    report = json.loads(export_plan(MULTI, "pip-report", target="windows"))
    assert report["environment"] == WINDOWS.markers
    urls = {i["download_info"]["url"].rsplit("/", 1)[1] for i in report["install"]}
    assert "lib-1.4-cp312-cp312-win_amd64.whl" in urls
    assert "old-2.0-py3-none-any.whl" in urls
    assert not any("manylinux" in u for u in urls)


def test_conflicting_versions_for_one_target_refused() -> None:
    plan = _plan(_artifact("a-1.0-py3-none-any.whl"), _artifact("a-2.0-py3-none-any.whl"))
    with pytest.raises(ExportError, match=r"both a 1\.0 and 2\.0"):
        export_plan(plan, "pylock")


def test_artifact_without_hash_refused_by_hashed_formats() -> None:
    plan = _plan(_artifact("a-1.0-py3-none-any.whl", hashes={}, hash_source=None))
    with pytest.raises(ExportError, match=r"^a-1\.0-py3-none-any\.whl: has no hash"):
        export_plan(plan, "pylock")
    with pytest.raises(ExportError, match=r"a-1\.0-py3-none-any\.whl: has no sha256"):
        export_plan(plan, "requirements")
    md5_only = _plan(_artifact("a-1.0-py3-none-any.whl", hashes={"md5": "a" * 32}))
    with pytest.raises(ExportError, match="no sha256, sha384 or sha512"):
        export_plan(md5_only, "requirements")


FOREIGN_LOCK = """
lock-version = "1.0"
created-by = "another-locker"
requires-python = ">=3.9"

[[packages]]
name = "top"
version = "1.0"
dependencies = [{name = "dep"}]
[[packages.wheels]]
url = "https://files.example.org/top-1.0-py3-none-any.whl"
hashes = {sha256 = "1111111111111111111111111111111111111111111111111111111111111111"}

[[packages]]
name = "dep"
version = "3.0"
marker = "sys_platform == 'linux'"
[[packages.wheels]]
name = "dep-3.0-cp312-cp312-manylinux_2_17_x86_64.whl"
url = "https://files.example.org/a/dep-3.0-cp312-cp312-manylinux_2_17_x86_64.whl"
size = 42
upload-time = 2025-01-02T03:04:05Z
hashes = {sha256 = "2222222222222222222222222222222222222222222222222222222222222222"}
[[packages.wheels]]
url = "https://files.example.org/a/dep-3.0-cp312-cp312-win_amd64.whl"
hashes = {sha256 = "3333333333333333333333333333333333333333333333333333333333333333"}

[[packages]]
name = "dep"
version = "2.0"
marker = "sys_platform == 'win32'"
[packages.sdist]
path = "vendor/dep-2.0.tar.gz"
hashes = {sha256 = "4444444444444444444444444444444444444444444444444444444444444444"}
"""


def test_foreign_pylock_selects_by_marker_and_tags(tmp_path: Path) -> None:
    base = tmp_path
    linux = _import(FOREIGN_LOCK, "pylock.toml", fallback=LINUX)
    assert [(a.name, a.version, a.filename) for a in linux.artifacts] == [
        ("top", "1.0", "top-1.0-py3-none-any.whl"),
        ("dep", "3.0", "dep-3.0-cp312-cp312-manylinux_2_17_x86_64.whl"),
    ]
    top, dep = linux.artifacts
    assert top.requested and not dep.requested
    assert top.index == "https://files.example.org/"  # no index given: the origin stands in
    assert dep.size == 42 and dep.upload_time == "2025-01-02T03:04:05Z"
    assert dep.hash_source == "requirements"
    windows = _import(FOREIGN_LOCK, "pylock.toml", fallback=WINDOWS, base_dir=base)
    sdist = windows.artifacts[1]
    assert (sdist.kind, sdist.version) == ("sdist", "2.0")
    assert sdist.url == (base.resolve() / "vendor" / "dep-2.0.tar.gz").as_uri()
    old_python = replace(LINUX, markers={**LINUX.markers, "python_full_version": "3.8.1"})
    with pytest.raises(FileFormatError, match=r"pylock.toml: packages: .*3\.8\.1"):
        _import(FOREIGN_LOCK, "pylock.toml", fallback=old_python)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("lock-version = [", "pylock.toml: (document): not valid TOML"),
        ('lock-version = "1.0"\ncreated-by = "x"', "pylock.toml: packages: Missing required"),
        (
            'lock-version = "1.0"\ncreated-by = "x"\n[[packages]]\nname = "Not_Normal"\n'
            'archive = {url = "https://h.example.org/a.whl", hashes = {sha256 = "0"}}',
            "pylock.toml: packages[0].name: Name 'Not_Normal' is not normalized",
        ),
        (
            'lock-version = "1.0"\ncreated-by = "x"\n[[packages]]\nname = "d"\nversion = "1"\n'
            'directory = {path = "src"}',
            "pylock.toml: packages[0]: a VCS checkout or local directory cannot be imported",
        ),
    ],
)
def test_bad_pylock_named_with_field(text: str, message: str) -> None:
    with pytest.raises(FileFormatError) as info:
        _import(text, "pylock.toml", fallback=LINUX)
    assert str(info.value).startswith(message)


FOREIGN_REPORT = {
    "version": "1",
    "pip_version": "26.0",
    "install": [
        {
            "download_info": {
                "url": "https://files.example.org/web-1.0-py3-none-any.whl",
                "archive_info": {"hash": "sha256=" + "a" * 64},
            },
            "is_direct": False,
            "requested": True,
            "requested_extras": ["async"],
            "metadata": {
                "metadata_version": "2.3",
                "name": "Web",
                "version": "1.0",
                "requires_dist": [
                    'h11[speedups]>=0.14; extra == "async"',
                    "colorama; sys_platform == 'win32'",
                    'docs-theme; extra == "docs"',
                ],
            },
        },
        {
            "download_info": {
                "url": "https://user:secret@files.example.org/h11-0.14.tar.gz",
                "archive_info": {"hashes": {"sha256": "b" * 64}},
            },
            "is_direct": False,
            "is_yanked": True,
            "requested": False,
            "metadata": {
                "metadata_version": "2.1",
                "name": "h11",
                "version": "0.14",
                "requires_dist": ['fastparse; extra == "speedups"'],
            },
        },
        {
            "download_info": {
                "url": "https://files.example.org/fastparse-2-py3-none-any.whl",
                "archive_info": {"hashes": {"sha256": "c" * 64}},
            },
            "requested": False,
            "metadata": {"metadata_version": "2.1", "name": "fastparse", "version": "2"},
        },
    ],
    "environment": dict(LINUX.markers),
}


def test_pips_report_imports_with_active_extras_and_no_credentials() -> None:
    plan = _import(json.dumps(FOREIGN_REPORT), "report.json", index_url=INDEX, fallback=WINDOWS)
    web, h11, fastparse = plan.artifacts
    assert fastparse.extras == () and fastparse.dependencies == ()
    assert plan.targets[0].markers == LINUX.markers  # the report's environment wins
    assert plan.targets[0].tags == WINDOWS.tags
    assert web.extras == ("async",) and h11.extras == ("speedups",)
    assert [d.name for d in web.dependencies] == ["h11"]  # colorama: win32 only; docs: not asked
    assert [d.name for d in h11.dependencies] == ["fastparse"]
    assert h11.url == "https://files.example.org/h11-0.14.tar.gz"
    assert (h11.kind, h11.yanked, h11.size) == ("sdist", True, None)
    assert web.hashes == {"sha256": "a" * 64}
    assert {a.index for a in plan.artifacts} == {INDEX}
    assert plan.inputs.requirements == ("web[async]==1.0",)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(version="2"), "r.json: version: unsupported report version '2'"),
        (
            lambda d: d["install"][0].pop("metadata"),
            "r.json: install[0].metadata: missing required field",
        ),
        (
            lambda d: d["install"][1]["download_info"].pop("archive_info"),
            "r.json: install[1].download_info: not an archive",
        ),
        (
            lambda d: d["install"][2]["download_info"].update(url="https://h.example.org/x.exe"),
            "r.json: install[2].download_info.url: not a wheel or sdist: x.exe",
        ),
    ],
)
def test_bad_pip_report_named_with_field(mutate: object, message: str) -> None:
    document = json.loads(json.dumps(FOREIGN_REPORT))
    mutate(document)  # type: ignore[operator]
    with pytest.raises(FileFormatError) as info:
        _import(json.dumps(document), "r.json", index_url=INDEX)
    assert str(info.value).startswith(message)


PLAIN_REQUIREMENTS = """\
--index-url https://index.example.org/simple/
--require-hashes
app==2.0 --hash=sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
lib==1.4 ; sys_platform == "win32" \\
    --hash=sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb
"""


def test_plain_requirements_need_a_lookup_and_use_it() -> None:
    with pytest.raises(FileFormatError) as info:
        _import(PLAIN_REQUIREMENTS, "req.txt", fallback=LINUX)
    assert str(info.value) == (
        "req.txt: line 3: app==2.0: no fetchplan-file note names its files, and finding them "
        "by hash on an index is not available here"
    )
    asked: list[tuple[list[Pin], Target]] = []

    def lookup(pins: Sequence[Pin], target: Target) -> list[Found]:
        asked.append((list(pins), target))
        return [Found(files=(_artifact("app-2.0-py3-none-any.whl", hashes={"sha256": "a" * 64}),))]

    plan = _import(PLAIN_REQUIREMENTS, "req.txt", fallback=LINUX, lookup=lookup)
    assert [([p.name for p in pins], t.name) for pins, t in asked] == [(["app"], "linux")]
    # lib's marker is false on linux: it is not looked up.
    assert [a.filename for a in plan.artifacts] == ["app-2.0-py3-none-any.whl"]
    assert plan.artifacts[0].requested
    assert plan.indexes == (IndexRef(url=INDEX),)

    def liar(pins: Sequence[Pin], target: Target) -> list[Found]:
        return [Found(files=(_artifact("app-2.0-py3-none-any.whl", hashes={"sha256": "f" * 64}),))]

    with pytest.raises(FileFormatError, match="line 3: files not matching the pin's hashes"):
        _import(PLAIN_REQUIREMENTS, "req.txt", fallback=LINUX, lookup=liar)

    def empty(pins: Sequence[Pin], target: Target) -> list[Found]:
        return [Found(problem=f"{p.name}=={p.version}: nothing here") for p in pins]

    with pytest.raises(FileFormatError) as info:
        _import(PLAIN_REQUIREMENTS, "req.txt", fallback=LINUX, lookup=empty)
    assert str(info.value) == "req.txt: line 3: app==2.0: nothing here"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("app>=2.0 --hash=sha256:aa\n", "req.txt: line 1: app is not pinned with =="),
        ("app==2.* --hash=sha256:aa\n", "req.txt: line 1: app is not pinned with =="),
        ("\n\napp==2.0\n", "req.txt: line 3: app has no --hash"),
        ("-r other.txt\n", "req.txt: line 1: -r is not supported"),
        ("app==2.0 --hash=sha256:aa --no-deps\n", "req.txt: line 1: unsupported option --no-deps"),
        ("# fetchplan-file: {nope\n", "req.txt: line 1: bad fetchplan-file note"),
    ],
)
def test_bad_requirements_named_with_line(text: str, message: str) -> None:
    with pytest.raises(FileFormatError) as info:
        _import(text, "req.txt", fallback=LINUX)
    assert str(info.value).startswith(message)


def test_targets_marker_only_uses_distinguishing_variables() -> None:
    text = export_plan(MULTI, "pylock")
    lock = Pylock.from_dict(tomllib.loads(text))
    old = [p for p in lock.packages if p.name == "old"]
    assert [str(p.marker) for p in old] == [
        'platform_machine == "x86_64" and sys_platform == "linux"',
        'platform_machine == "AMD64" and sys_platform == "win32"',
    ]
    assert Marker(str(old[0].marker)).evaluate({**LINUX.markers, "python_version": "3.9"})


def test_cli_errors_are_one_line_and_leave_no_file(tmp_path: Path, run_cli: RunCli) -> None:
    plan_path = tmp_path / "plan.json"
    write_plan(plan_path, _plan(_artifact("a-1.0-py3-none-any.whl", hashes={}, hash_source=None)))

    out = tmp_path / "pylock.toml"
    refused = run_cli("export", str(plan_path), "--format", "pylock", "-o", str(out))
    assert refused.returncode == 1
    assert refused.stderr == (
        "fetchplan: error: a-1.0-py3-none-any.whl: has no hash, and PEP 751 requires one for "
        "every file\n"
    )
    assert not out.exists()

    report = tmp_path / "report.json"
    report.write_text('{"version": "1", "install": [{"metadata": {}}]}')
    back = tmp_path / "back.json"
    bad = run_cli("import", str(report), "-o", str(back))
    assert bad.returncode == 2
    assert bad.stderr.startswith(f"fetchplan: error: {report}: 3 problems")
    assert "install[0].download_info: missing required field" in bad.stderr
    assert not back.exists()

    stdout = run_cli("export", str(_rich_path(tmp_path)), "--format", "requirements")
    assert stdout.returncode == 0, stdout.stderr
    assert stdout.stdout == export_plan(RICH, "requirements")


def _rich_path(directory: Path) -> Path:
    path = directory / "rich.json"
    write_plan(path, RICH)
    return path


def test_targets_no_marker_tells_apart_refused() -> None:
    twin = replace(LINUX, name="linux-old-glibc", tags=("py3-none-any",))
    plan = _plan(
        _artifact("a-1.0-py3-none-any.whl", targets=("linux",)),
        _artifact("a-2.0-py3-none-any.whl", targets=("linux-old-glibc",)),
        targets=(LINUX, twin),
    )
    for fmt in ("pylock", "requirements"):
        with pytest.raises(ExportError, match=r"a-1\.0-py3-none-any\.whl: serves only targets"):
            export_plan(plan, fmt)


def test_legacy_requires_python_left_out_of_lock() -> None:
    plan = _plan(_artifact("a-1.0-py3-none-any.whl", requires_python=">=2.7.*"))
    lock = Pylock.from_dict(tomllib.loads(export_plan(plan, "pylock")))
    assert lock.packages[0].requires_python is None
