"""Plans for several targets: one resolution per target, one artifact list, installs that pick.

The index (served over loopback by the in-process server) has a project whose dependencies
differ by marker (``python_version`` and ``platform_machine``) and one with per-platform wheels.
The two targets are this interpreter's (on the CI machine: CPython 3.11, manylinux x86_64; the
wheel carries this interpreter's best tag) and another machine (CPython 3.12 on manylinux
aarch64; x86_64 when this one is aarch64). The plan must resolve each target on its own, list
each file once with the targets it serves, fetch every index page once, and install on this
interpreter exactly the artifacts of the target that fits it.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.tags import sys_tags

from fetchplan.errors import InputError
from fetchplan.install import InstallError, TargetInterpreter
from fetchplan.install.environment import installed_distributions
from fetchplan.install.selection import build_closure, select_target
from fetchplan.planner.api import PlanOptions, make_plan
from fetchplan.planner.targets import TargetSpec, parse_target_spec
from fetchplan.schemas import dumps_document
from fetchplan.schemas.plan import Inputs, Plan, Target, load_plan
from tests.conftest import MakeIndexServer
from tests.support.hostile import new_venv
from tests.support.wheels import Dist, build_sdist, build_wheel

_BEST = next(iter(sys_tags()))
HERE_PY = f"{sys.version_info[0]}.{sys.version_info[1]}"
HERE_TAG = str(_BEST)
HERE_ARCH = platform.machine()
OTHER_PY = "3.13" if HERE_PY == "3.12" else "3.12"
OTHER_ARCH = "x86_64" if HERE_ARCH == "aarch64" else "aarch64"
OTHER_TAG = (
    f"cp{OTHER_PY.replace('.', '')}-cp{OTHER_PY.replace('.', '')}-manylinux_2_17_{OTHER_ARCH}"
)
X86 = f"{_BEST.interpreter}-{_BEST.platform}"  # this interpreter's target
ARM = f"cp{OTHER_PY.replace('.', '')}-manylinux_2_17_{OTHER_ARCH}"  # the other machine's
SPECS = (
    f"py={HERE_PY},platform={_BEST.platform}",
    f"py={OTHER_PY},platform=manylinux_2_17_{OTHER_ARCH}",
)
TIMEOUT = 120


def _native(tag: str, arch: str) -> Dist:
    return Dist(
        "native", "1.0", tag=tag, files={"native/__init__.py": f"ARCH = {arch!r}\n".encode()}
    )


def _dists(directory: Path) -> list[Path]:
    return [
        build_wheel(
            directory,
            Dist(
                "app",
                "1.0",
                requires=[
                    f'dep; python_version == "{HERE_PY}"',
                    "native",
                    f'armonly; platform_machine == "{OTHER_ARCH}"',
                ],
            ),
        ),
        build_wheel(directory, Dist("dep", "1.0")),
        build_wheel(directory, Dist("armonly", "1.0")),
        build_wheel(directory, _native(HERE_TAG, HERE_ARCH)),
        build_wheel(directory, _native(OTHER_TAG, OTHER_ARCH)),
    ]


def _options(tmp_path: Path, index_url: str, **kw: object) -> PlanOptions:
    return PlanOptions(
        requirements=("app",),
        index_url=index_url,
        isolated=True,
        cache_dir=tmp_path / "cache",
        output=tmp_path / "plan.json",
        jobs=4,
        **kw,  # type: ignore[arg-type]
    )


def _by_file(plan: Plan) -> dict[str, tuple[tuple[str, ...] | None, bool]]:
    return {a.filename: (a.targets, a.build_dependency) for a in plan.artifacts}


def test_two_targets_resolve_apart_and_merge(tmp_path: Path, index_server: MakeIndexServer) -> None:
    server = index_server(_dists(tmp_path / "dists"))
    plan = make_plan(_options(tmp_path, server.index_url, targets=SPECS)).plan
    dumps_document(plan.to_dict(), "plan", "plan.json")

    assert [t.name for t in plan.targets] == [X86, ARM]
    assert plan.targets[1].markers["platform_machine"] == OTHER_ARCH
    assert plan.targets[1].markers["python_version"] == OTHER_PY
    assert _by_file(plan) == {
        "app-1.0-py3-none-any.whl": ((X86, ARM), False),
        "armonly-1.0-py3-none-any.whl": ((ARM,), False),
        "dep-1.0-py3-none-any.whl": ((X86,), False),
        f"native-1.0-{HERE_TAG}.whl": ((X86,), False),
        f"native-1.0-{OTHER_TAG}.whl": ((ARM,), False),
    }
    app = plan.artifacts[0]
    assert app.requested and app.name == "app"
    # The edges of a shared file are those of every target it serves.
    assert sorted(d.name for d in app.dependencies) == ["armonly", "dep", "native"]
    assert all(not a.requested for a in plan.artifacts[1:])
    # Index pages (and metadata) are fetched once for both resolutions.
    for project in ("app", "dep", "native", "armonly"):
        pages = [r for r in server.requests(f"/simple/{project}/") if r.method == "GET"]
        assert len(pages) == 1, (project, pages)
    assert len(server.requests("app-1.0-py3-none-any.whl.metadata")) == 1


def test_one_target_spec_is_the_single_target_plan(
    tmp_path: Path, index_server: MakeIndexServer
) -> None:
    server = index_server(_dists(tmp_path / "dists"))
    by_spec = make_plan(_options(tmp_path, server.index_url, targets=SPECS[:1])).plan
    by_options = make_plan(
        _options(
            tmp_path,
            server.index_url,
            python_version=HERE_PY,
            platforms=(_BEST.platform,),
        )
    ).plan
    first, second = by_spec.to_dict(), by_options.to_dict()
    first.pop("created"), second.pop("created")
    assert first == second
    assert all("targets" not in a and "build_targets" not in a for a in first["artifacts"])
    assert [a["name"] for a in first["artifacts"]] == ["app", "dep", "native"]


def test_target_specs() -> None:
    assert parse_target_spec("host") == TargetSpec()
    assert parse_target_spec(
        "py=3.12, platform=manylinux_2_28_aarch64,platform=linux_aarch64,impl=cp,abi=cp312,name=arm"
    ) == TargetSpec(
        python_version="3.12",
        platforms=("manylinux_2_28_aarch64", "linux_aarch64"),
        implementation="cp",
        abis=("cp312",),
        name="arm",
    )
    for bad, why in [
        ("", "empty"),
        ("py=3.12,py=3.11", "py given twice"),
        ("python", "'python' is not KEY=VALUE"),
        ("os=linux", "unknown key 'os'"),
        ("py=3.12,name=a b", "name 'a b'"),
    ]:
        with pytest.raises(InputError) as caught:
            parse_target_spec(bad)
        assert why in str(caught.value)
        assert str(caught.value).startswith("--target")


def test_target_options_conflict(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot be combined"):
        make_plan(_options(tmp_path, "http://127.0.0.1:1/simple/", targets=SPECS, pre=True,
                           python_version="3.11"))  # fmt: skip
    with pytest.raises(InputError, match="two targets are named 'same'"):
        make_plan(
            _options(
                tmp_path,
                "http://127.0.0.1:1/simple/",
                targets=(SPECS[0] + ",name=same", SPECS[1] + ",name=same"),
            )
        )


def test_best_matching_target_is_chosen() -> None:
    here = Target(
        name="here",
        markers={"python_version": "3.11", "platform_machine": "x86_64", "sys_platform": "linux"},
        tags=("cp311-cp311-manylinux_2_36_x86_64", "py3-none-any"),
    )
    older = Target(
        name="older",
        markers={**here.markers, "platform_release": "other"},
        tags=("cp311-cp311-manylinux_2_17_x86_64", "py3-none-any"),
    )
    arm = Target(
        name="arm", markers={**here.markers, "platform_machine": "aarch64"}, tags=here.tags
    )
    interpreter_tags = [
        "cp311-cp311-manylinux_2_36_x86_64",
        "cp311-cp311-manylinux_2_17_x86_64",
        "py3-none-any",
    ]
    markers = {**here.markers, "platform_release": "6.1"}

    def plan(*targets: Target) -> Plan:
        return Plan(
            created="2026-01-01T00:00:00Z",
            inputs=Inputs(requirements=()),
            targets=targets,
            indexes=(),
            destination=".",
            artifacts=(),
        )

    # The first matching target used to win; the most specific fit wins now, in any order.
    assert select_target(plan(older, here, arm), Path("p"), markers, interpreter_tags) is here
    assert select_target(plan(arm, older), Path("p"), markers, interpreter_tags) is older
    # Equal tags: more marker values alike wins.
    same_tags = Target(name="same", markers=markers, tags=older.tags)
    assert select_target(plan(older, same_tags), Path("p"), markers, interpreter_tags) is (
        same_tags
    )


def test_sdist_for_one_target_brings_build_dependencies_for_it(
    tmp_path: Path, index_server: MakeIndexServer
) -> None:
    dists = tmp_path / "dists"
    pyproject = (
        "[build-system]\n"
        'requires = ["setuptools>=61", "helper>=1"]\n'
        'build-backend = "setuptools.build_meta"\n'
    )
    files = [
        build_wheel(dists, Dist("app", "1.0", requires=["native", "helper"])),
        build_wheel(dists, Dist("helper", "1.0")),
        # Stand-in: a static sdist is planned without running its backend.
        build_wheel(dists, Dist("setuptools", "70.0")),
        build_wheel(dists, _native(HERE_TAG, HERE_ARCH)),
        build_sdist(dists, Dist("native", "1.0", metadata_version="2.2"), pyproject=pyproject),
    ]
    server = index_server(files)
    plan = make_plan(_options(tmp_path, server.index_url, targets=SPECS)).plan
    dumps_document(plan.to_dict(), "plan", "plan.json")
    assert {
        a.filename: (a.targets, a.build_dependency, a.build_targets) for a in plan.artifacts
    } == {
        "app-1.0-py3-none-any.whl": ((X86, ARM), False, None),
        # Installed on both, and used by the build of native on aarch64.
        "helper-1.0-py3-none-any.whl": ((X86, ARM), False, (ARM,)),
        f"native-1.0-{HERE_TAG}.whl": ((X86,), False, None),
        "native-1.0.tar.gz": ((ARM,), False, None),
        "setuptools-70.0-py3-none-any.whl": ((ARM,), True, None),
    }

    # What `install` would build native with on aarch64: both build requirements, nothing else.
    arm = plan.targets[1]
    closure = build_closure(
        plan,
        Path("plan.json"),
        arm,
        [Requirement("setuptools>=61"), Requirement("helper>=1")],
        markers=arm.markers,
        tags=arm.tags,
        sdist="native-1.0.tar.gz",
    )
    assert {n: a.filename for n, a in closure.items()} == {
        "setuptools": "setuptools-70.0-py3-none-any.whl",
        "helper": "helper-1.0-py3-none-any.whl",
    }
    # The x86_64 target builds nothing: no build dependency serves it.
    with pytest.raises(InstallError, match="has no wheel among the plan's build dependencies"):
        build_closure(
            plan, Path("plan.json"), plan.targets[0], [Requirement("setuptools")],
            markers=arm.markers, tags=arm.tags, sdist="x",
        )  # fmt: skip


def test_two_target_plan_fetch_and_install_offline(
    tmp_path: Path,
    index_server: MakeIndexServer,
    cli_env: dict[str, str],
    fetchplan_cmd: list[str],
) -> None:
    server = index_server(_dists(tmp_path / "dists"))
    plan_path = tmp_path / "out" / "plan.json"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [*fetchplan_cmd, *args],
            env=cli_env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done

    targets = [f"--target={spec}" for spec in SPECS]
    planned = run("plan", "app", "-i", server.index_url, "--isolated", "-o", str(plan_path),
                  *targets)  # fmt: skip
    assert "for 2 targets" in planned.stdout
    shown = run("show", str(plan_path)).stdout
    assert "TARGETS" in shown and f"targets: {X86}, {ARM}" in shown
    assert any(
        line.startswith("armonly") and line.rstrip().endswith(ARM) for line in shown.splitlines()
    )
    run("fetch", str(plan_path))
    server.close()

    venv = new_venv(tmp_path / "venv")
    run(
        "install",
        str(plan_path.parent / "wheels" / "manifest.json"),
        "--venv",
        str(venv.parent.parent),
    )
    interpreter = TargetInterpreter.query(venv)
    assert sorted(installed_distributions(interpreter)) == ["app", "dep", "native"]
    arch = subprocess.run(
        [str(venv), "-c", "import native, dep; print(native.ARCH)"],
        capture_output=True, text=True, timeout=TIMEOUT, check=True,
    ).stdout.strip()  # fmt: skip
    assert arch == HERE_ARCH
    plan, _ = load_plan(plan_path)
    assert json.loads(plan_path.read_text())["artifacts"][0]["targets"] == [X86, ARM]
    assert len(plan.artifacts) == 5
