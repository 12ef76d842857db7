"""``export --format cyclonedx``: a CycloneDX 1.6 SBOM valid by the library's own schema
validator, with every artifact, its purl, hashes, size and license, the dependency graph, the
targets, and build dependencies marked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from packaging.utils import canonicalize_name

from fetchplan.formats.cyclonedx import dumps_cyclonedx, purl_of
from fetchplan.schemas.plan import Artifact, Dependency, IndexRef, Inputs, Plan, Target, write_plan
from tests.conftest import REPO_ROOT, RunCli

INDEX = "https://index.example.org/simple/"
FILES = "https://files.example.org/packages"
LINUX = Target(
    name="linux",
    markers={"python_version": "3.12", "sys_platform": "linux"},
    tags=("cp312-cp312-manylinux_2_17_x86_64", "py3-none-any"),
)
WINDOWS = Target(
    name="windows",
    markers={"python_version": "3.12", "sys_platform": "win32"},
    tags=("cp312-cp312-win_amd64", "py3-none-any"),
)
MIT_TEXT = "Permission is hereby granted, free of charge,\nto any person obtaining a copy"


def _artifact(filename: str, **fields: Any) -> Artifact:
    name, version = filename.removesuffix(".tar.gz").split("-")[:2]
    base: dict[str, Any] = {
        "name": canonicalize_name(name),
        "version": version,
        "kind": "wheel" if filename.endswith(".whl") else "sdist",
        "filename": filename,
        "url": f"{FILES}/{filename}",
        "index": INDEX,
        "hashes": {"sha256": (filename.encode().hex() * 4)[:64]},
        "hash_source": "index",
        "size": 1000 + len(filename),
        "destination": filename,
    }
    base.update(fields)
    return Artifact(**base)


def _plan() -> Plan:
    return Plan(
        created="2026-02-03T04:05:06Z",
        inputs=Inputs(requirements=("app>=1",)),
        targets=(LINUX, WINDOWS),
        indexes=(IndexRef(url=INDEX),),
        destination="wheels",
        artifacts=(
            _artifact(
                "app-1.0-py3-none-any.whl",
                requested=True,
                dependencies=(
                    Dependency(name=canonicalize_name("lib"), requirement="lib>=2"),
                    Dependency(name=canonicalize_name("winonly"), requirement="winonly"),
                ),
                metadata={
                    "metadata_version": "2.4",
                    "name": "app",
                    "version": "1.0",
                    "license_expression": "MIT OR Apache-2.0",
                },
            ),
            _artifact(
                "lib-2.0-cp312-cp312-manylinux_2_17_x86_64.whl",
                targets=("linux",),
                metadata={
                    "metadata_version": "2.4",
                    "name": "lib",
                    "version": "2.0",
                    "license": "Apache-2.0",
                },
            ),
            _artifact(
                "lib-2.0-cp312-cp312-win_amd64.whl",
                targets=("windows",),
                metadata={
                    "metadata_version": "2.4",
                    "name": "lib",
                    "version": "2.0",
                    "license": MIT_TEXT,
                },
            ),
            _artifact(
                "winonly-1.0.tar.gz",
                targets=("windows",),
                dependencies=(Dependency(name=canonicalize_name("lib"), requirement="lib"),),
                metadata={
                    "metadata_version": "2.4",
                    "name": "winonly",
                    "version": "1.0",
                    "summary": "only on windows",
                },
            ),
            _artifact(
                "setuptools-80.0-py3-none-any.whl",
                build_dependency=True,
                build_targets=("windows",),
                hashes={"sha256": "ab" * 32, "sha512": "cd" * 64},
                size=None,
            ),
        ),
    )


def _valid(text: str) -> dict[str, Any]:
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    assert error is None, str(error)
    document: dict[str, Any] = json.loads(text)
    return document


def _props(node: dict[str, Any]) -> list[tuple[str, str]]:
    return [(p["name"], p["value"]) for p in node.get("properties", [])]


def test_sbom_is_valid_and_complete() -> None:
    plan = _plan()
    text = dumps_cyclonedx(plan)
    document = _valid(text)
    assert (document["bomFormat"], document["specVersion"]) == ("CycloneDX", "1.6")
    assert dumps_cyclonedx(plan) == text  # one plan, one document

    by_file = {
        dict(_props(c))["fetchplan:kind"] + ":" + c["purl"].split("file_name=")[1]: c
        for c in document["components"]
    }
    assert len(document["components"]) == len(plan.artifacts)
    app = by_file["wheel:app-1.0-py3-none-any.whl"]
    assert app["purl"] == purl_of(plan.artifacts[0])
    assert app["purl"].startswith("pkg:pypi/app@1.0?download_url=https://files.example.org/")
    assert app["bom-ref"] == app["purl"]
    assert app["hashes"] == [{"alg": "SHA-256", "content": plan.artifacts[0].sha256}]
    assert ("fetchplan:size", str(plan.artifacts[0].size)) in _props(app)
    assert app["licenses"] == [{"expression": "MIT OR Apache-2.0"}]
    assert app["scope"] == "required"
    assert app["externalReferences"][0]["type"] == "distribution"

    linux_lib = by_file["wheel:lib-2.0-cp312-cp312-manylinux_2_17_x86_64.whl"]
    assert linux_lib["licenses"] == [{"license": {"id": "Apache-2.0"}}]
    assert ("fetchplan:target", "linux") in _props(linux_lib)
    windows_lib = by_file["wheel:lib-2.0-cp312-cp312-win_amd64.whl"]
    assert windows_lib["licenses"][0]["license"]["text"]["content"] == MIT_TEXT
    assert by_file["sdist:winonly-1.0.tar.gz"]["description"] == "only on windows"

    setuptools = by_file["wheel:setuptools-80.0-py3-none-any.whl"]
    assert setuptools["scope"] == "excluded"
    assert ("fetchplan:build_dependency", "true") in _props(setuptools)
    assert ("fetchplan:build_target", "windows") in _props(setuptools)
    assert not any(name == "fetchplan:size" for name, _ in _props(setuptools))
    assert {h["alg"] for h in setuptools["hashes"]} == {"SHA-256", "SHA-512"}

    graph = {d["ref"]: set(d.get("dependsOn", [])) for d in document["dependencies"]}
    assert graph["plan"] == {app["bom-ref"]}
    # app serves both targets: both lib wheels and the windows-only project.
    assert graph[app["bom-ref"]] == {
        linux_lib["bom-ref"],
        windows_lib["bom-ref"],
        by_file["sdist:winonly-1.0.tar.gz"]["bom-ref"],
    }
    # winonly serves windows only: not the linux wheel of lib.
    assert graph[by_file["sdist:winonly-1.0.tar.gz"]["bom-ref"]] == {windows_lib["bom-ref"]}

    metadata = document["metadata"]
    assert metadata["timestamp"].startswith("2026-02-03T04:05:06")
    assert metadata["component"]["bom-ref"] == "plan"
    assert ("fetchplan:requirement", "app>=1") in _props(metadata["component"])
    assert ("fetchplan:target", "linux") in _props(metadata)
    assert (
        "fetchplan:target:windows:marker",
        'sys_platform == "win32" and python_version == "3.12"',
    ) in _props(metadata)
    assert metadata["tools"]["components"][0]["name"] == "fetchplan"


def test_cli_writes_a_valid_sbom(tmp_path: Path, run_cli: RunCli) -> None:
    plan = tmp_path / "plan.json"
    write_plan(plan, _plan())
    done = run_cli("export", plan, "--format", "cyclonedx", "-o", "sbom.cdx.json")
    assert done.returncode == 0, done.stderr
    document = _valid((tmp_path / "sbom.cdx.json").read_text())
    assert len(document["components"]) == 5
    printed = run_cli("export", plan, "--format", "cyclonedx")
    assert printed.stdout == (tmp_path / "sbom.cdx.json").read_text()


def test_other_commands_do_not_load_the_library(tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    write_plan(plan, _plan())
    probe = (
        "import sys\n"
        "from fetchplan.cli import main\n"
        f"code = main(['export', {str(plan)!r}, '--format', 'pylock', '-o', 'pylock.toml'])\n"
        "assert code == 0, code\n"
        "print(sorted(m for m in sys.modules if m.startswith(('cyclonedx', 'packageurl'))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(REPO_ROOT)},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_without_the_sbom_extra_the_export_is_one_line_naming_it(tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    write_plan(plan, _plan())
    # None in sys.modules makes every import of the package fail, as where it is not installed.
    probe = (
        "import sys\n"
        "sys.modules['cyclonedx'] = None\n"
        "from fetchplan.cli import entry_point\n"
        f"sys.argv = ['fetchplan', 'export', {str(plan)!r}, '--format', 'cyclonedx']\n"
        "entry_point()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(REPO_ROOT)},
        check=False,
    )
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert "fetchplan[sbom]" in done.stderr and "cyclonedx" in done.stderr, done.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["plan.json"]


def test_direct_kinds_have_the_purl_spec_qualifiers_and_validate() -> None:
    from fetchplan.schemas.plan import VcsInfo

    commit = "0123456789abcdef0123456789abcdef01234567"
    archive_url = "https://host.example.org/mono-main.tar.gz"
    artifacts = (
        _artifact(
            "app-1.0-py3-none-any.whl",
            requested=True,
            direct=True,
            url=f"{FILES}/app-1.0-py3-none-any.whl",
            index=f"{FILES}/app-1.0-py3-none-any.whl",
            hash_source="url",
        ),
        _artifact(
            "mono-main.tar.gz",
            name=canonicalize_name("lib"),
            version="2.0",
            direct=True,
            url=archive_url,
            index=archive_url,
            subdirectory="libs/lib",
        ),
        _artifact(
            "local-1.0.src.tar",
            version="1.0",
            kind="directory",
            direct=True,
            editable=True,
            url="file:///src/local",
            index="file:///src/local",
            path="/src/local",
            hash_source="computed",
        ),
        _artifact(
            "gitpkg-1.2.src.tar",
            version="1.2",
            kind="vcs",
            direct=True,
            url="https://git.example.org/org/gitpkg.git",
            index="https://git.example.org/org/gitpkg.git",
            hash_source="computed",
            vcs=VcsInfo(
                type="git",
                url="https://git.example.org/org/gitpkg.git",
                commit_id=commit,
                requested_revision="v1.2",
            ),
        ),
    )
    plan = Plan(
        created="2026-02-03T04:05:06Z",
        inputs=Inputs(requirements=("app",)),
        targets=(LINUX,),
        indexes=(IndexRef(url=INDEX),),
        destination="wheels",
        artifacts=artifacts,
    )
    document = _valid(dumps_cyclonedx(plan))
    by_name = {c["name"]: c for c in document["components"]}
    assert set(by_name) == {"app", "lib", "local", "gitpkg"}
    assert by_name["app"]["purl"] == (
        "pkg:pypi/app@1.0?download_url=https://files.example.org/packages/"
        "app-1.0-py3-none-any.whl&file_name=app-1.0-py3-none-any.whl"
    )
    assert by_name["lib"]["purl"] == (
        f"pkg:pypi/lib@2.0?download_url={archive_url}&file_name=mono-main.tar.gz"
    )
    assert ("fetchplan:subdirectory", "libs/lib") in _props(by_name["lib"])
    assert by_name["lib"]["externalReferences"][0]["url"] == archive_url
    # The purl spec's vcs_url: the VCS tool, the repository and the commit.
    assert by_name["gitpkg"]["purl"] == (
        f"pkg:pypi/gitpkg@1.2?vcs_url=git%2Bhttps://git.example.org/org/gitpkg.git%40{commit}"
    )
    assert by_name["gitpkg"]["externalReferences"] == [
        {"type": "vcs", "url": "https://git.example.org/org/gitpkg.git"}
    ]
    assert ("fetchplan:vcs:commit_id", commit) in _props(by_name["gitpkg"])
    # A local directory has no download URL: the bare purl, its path a property.
    assert by_name["local"]["purl"] == "pkg:pypi/local@1.0"
    assert "externalReferences" not in by_name["local"]
    assert ("fetchplan:path", "/src/local") in _props(by_name["local"])
    assert ("fetchplan:editable", "true") in _props(by_name["local"])
    for component in by_name.values():
        assert ("fetchplan:direct", "true") in _props(component)
        assert component["bom-ref"] == component["purl"]
