"""What the manifest and plan must vouch for before the installer writes anything."""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fetchplan.errors import HashMismatch
from fetchplan.install import (
    InstallError,
    ManifestMismatch,
    TargetInterpreter,
    install_manifest,
    wheels_for_interpreter,
)
from fetchplan.install.environment import installed_distributions, uninstall
from fetchplan.install.selection import target_matches
from fetchplan.install.store import WheelStore
from fetchplan.install.wheel import open_wheel
from fetchplan.pipeline import install_from
from fetchplan.schemas.plan import Target, load_plan, write_plan
from tests.support.hostile import default_target, make_fetched_dest, new_venv, snapshot
from tests.support.wheels import Dist, build_sdist, build_wheel


@pytest.fixture(scope="module")
def shared_venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TargetInterpreter]:
    # Read-only for the tests that use it: each asserts nothing was written.
    yield TargetInterpreter.query(new_venv(tmp_path_factory.mktemp("manifest") / "venv"))


def _refused(
    manifest: Path, target: TargetInterpreter, error: type[Exception], **kw: object
) -> str:
    before = snapshot(Path(target.prefix))
    with pytest.raises(error) as info:
        install_from(manifest, target, **kw)  # type: ignore[arg-type]
    assert snapshot(Path(target.prefix)) == before
    message = str(info.value)
    assert "\n" not in message
    return message


def test_file_modified_after_fetch(tmp_path: Path, shared_venv: TargetInterpreter) -> None:
    manifest = make_fetched_dest(tmp_path, [Dist("app", "1.0"), Dist("lib", "1.0")])
    wheel = tmp_path / "dest" / "lib-1.0-py3-none-any.whl"
    size = wheel.stat().st_size
    build_wheel(tmp_path / "other", Dist("lib", "1.0", files={"lib/__init__.py": b"EVIL=1\n"}))
    replacement = (tmp_path / "other" / wheel.name).read_bytes()
    wheel.write_bytes(replacement[:size].ljust(size, b"\0"))
    message = _refused(manifest, shared_venv, HashMismatch)
    assert message.startswith(f"{wheel}: sha256 mismatch")

    wheel.write_bytes(replacement + b"\0" * 7)
    message = _refused(manifest, shared_venv, InstallError)
    assert message.startswith(f"{wheel}: size")


def test_manifest_of_another_plan(tmp_path: Path, shared_venv: TargetInterpreter) -> None:
    manifest = make_fetched_dest(tmp_path, [Dist("app", "1.0")])
    plan_path = manifest.parent / "plan.json"
    plan, _ = load_plan(plan_path)
    write_plan(plan_path, dataclasses.replace(plan, created="2027-01-01T00:00:00Z"))
    message = _refused(manifest, shared_venv, ManifestMismatch)
    assert message.startswith(f"{manifest}: plan.sha256: ")
    assert str(plan_path) in message

    elsewhere = tmp_path / "elsewhere.yaml"
    write_plan(elsewhere, plan)
    report = install_manifest(manifest, shared_venv, plan_path=elsewhere, compile=False)
    assert [p.action for p in report.projects] == ["installed"]
    for dists in installed_distributions(shared_venv).values():
        for dist in dists:
            uninstall(dist, shared_venv)


def test_manifest_missing_or_differing_artifact(
    tmp_path: Path, shared_venv: TargetInterpreter
) -> None:
    manifest = make_fetched_dest(tmp_path, [Dist("app", "1.0"), Dist("lib", "1.0")])
    document = json.loads(manifest.read_text())
    entries = document["artifacts"]
    document["artifacts"] = entries[:1]
    manifest.write_text(json.dumps(document))
    message = _refused(manifest, shared_venv, ManifestMismatch)
    assert message == (
        f"{manifest}: artifacts: not verified by this manifest: lib-1.0-py3-none-any.whl"
    )

    entries[1]["sha256"] = "0" * 64
    document["artifacts"] = entries
    manifest.write_text(json.dumps(document))
    message = _refused(manifest, shared_venv, ManifestMismatch)
    assert message.startswith(f"{manifest}: artifacts: differ from the plan: lib-1.0-py3-none")
    assert "sha256 0000" in message


def test_sdist_without_build_dependencies_is_named(
    tmp_path: Path, shared_venv: TargetInterpreter
) -> None:
    sdist = build_sdist(tmp_path / "dest", Dist("legacy", "1.0"))
    manifest = make_fetched_dest(tmp_path, [Dist("app", "1.0"), sdist])
    message = _refused(manifest, shared_venv, InstallError)
    assert message.startswith(str(manifest.parent / "plan.json"))
    assert "cannot build legacy-1.0.tar.gz: its build requirement setuptools>=61 has no wheel" in (
        message
    )


def test_incompatible_wheel_is_named(tmp_path: Path, shared_venv: TargetInterpreter) -> None:
    manifest = make_fetched_dest(tmp_path, [Dist("native", "1.0", tag="cp27-cp27m-win32")])
    message = _refused(manifest, shared_venv, InstallError)
    assert message.endswith(
        "wheels not supported by the interpreter: native-1.0-cp27-cp27m-win32.whl"
    )


def test_only_the_matching_targets_artifacts(
    tmp_path: Path, shared_venv: TargetInterpreter
) -> None:
    here = default_target("here")
    windows = Target(
        name="windows",
        markers={**here.markers, "sys_platform": "win32", "os_name": "nt"},
        tags=("cp311-cp311-win_amd64", "py3-none-any"),
    )
    dists = [Dist("common", "1.0"), Dist("posixonly", "1.0"), Dist("winonly", "1.0")]
    manifest = make_fetched_dest(
        tmp_path,
        dists,
        targets=[windows, here],
        artifact_targets={
            "posixonly-1.0-py3-none-any.whl": ("here",),
            "winonly-1.0-py3-none-any.whl": ("windows",),
        },
    )
    wheels = wheels_for_interpreter(manifest, shared_venv)
    assert [w.name for w in wheels] == ["common", "posixonly"]

    only_windows = make_fetched_dest(tmp_path, dists, targets=[windows, windows], name="win")
    plan = only_windows.parent / "plan.json"
    with pytest.raises(InstallError) as info:
        wheels_for_interpreter(only_windows, shared_venv)
    assert str(info.value).startswith(f"{plan}: targets: none of windows, windows matches")


def test_target_matching_ignores_volatile_markers() -> None:
    here = default_target()
    markers = {**here.markers, "platform_release": "other-kernel", "python_full_version": "9"}
    assert target_matches(here, markers, {"py3-none-any"} | set(here.tags))
    assert not target_matches(here, {**markers, "python_version": "2.7"}, set(here.tags))
    assert not target_matches(here, markers, {"cp27-cp27m-win32"})


def test_swapped_file_is_not_what_gets_installed(
    tmp_path: Path, shared_venv: TargetInterpreter
) -> None:
    manifest = make_fetched_dest(tmp_path, [Dist("lib", "1.0")])
    (spec,) = wheels_for_interpreter(manifest, shared_venv)
    opened = open_wheel(spec)
    try:
        evil = build_wheel(tmp_path / "evil", Dist("lib", "1.0", files={"lib/__init__.py": b"X"}))
        os.replace(evil, spec.path)
        entry = WheelStore(tmp_path / "store").fill(opened)
    finally:
        opened.close()
    module = entry.files_dir / "lib" / "__init__.py"
    assert module.read_text().startswith('__version__ = "1.0"')


def test_file_written_in_place_after_hashing_is_refused(
    tmp_path: Path, shared_venv: TargetInterpreter
) -> None:
    manifest = make_fetched_dest(tmp_path, [Dist("lib", "1.0")])
    (spec,) = wheels_for_interpreter(manifest, shared_venv)
    opened = open_wheel(spec)
    try:
        time.sleep(0.05)  # past the file system's timestamp granularity
        with spec.path.open("r+b") as fh:
            fh.write(b"P")
        store = WheelStore(tmp_path / "store")
        with pytest.raises(InstallError, match="modified while being installed"):
            store.fill(opened)
    finally:
        opened.close()
    # Nothing entered the store, and its temporary directory is gone.
    assert store.get(spec.sha256) is None
    assert list(store.digests()) == []
    assert list((tmp_path / "store" / "tmp").iterdir()) == []
