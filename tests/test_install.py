"""Installing a verified manifest into real virtual environments."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fetchplan.install import (
    InstallError,
    TargetInterpreter,
    install_manifest,
    install_wheels,
    wheels_for_interpreter,
)
from tests.support.hostile import (
    Member,
    assert_no_leftovers,
    make_fetched_dest,
    new_venv,
    raw_wheel,
    snapshot,
    standard_members,
)
from tests.support.wheels import Dist


def _pip(python: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "--disable-pip-version-check",
            *args,
        ],
        capture_output=True,
        text=True,
        check=False,
    )


def _mtimes(root: Path) -> dict[str, int]:
    # The environment's lock directory changes with every install (who holds it).
    return {
        str(p.relative_to(root)): p.lstat().st_mtime_ns
        for p in root.rglob("*")
        if p.relative_to(root).parts[0] != ".fetchplan"
    }


def _demo(version: str, **kw: object) -> Dist:
    return Dist(
        "demo-app",
        version,
        requires=["helper>=1.0"],
        console_scripts={"demo-app": "demo_app:main"},
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture
def venv(tmp_path: Path) -> TargetInterpreter:
    return TargetInterpreter.query(new_venv(tmp_path / "venv"))


def test_fresh_install_scripts_imports_metadata(tmp_path: Path, venv: TargetInterpreter) -> None:
    manifest = make_fetched_dest(tmp_path, [_demo("1.0"), Dist("helper", "1.5")])
    report = install_manifest(manifest, venv)

    assert [(p.name, p.version, p.action) for p in report.projects] == [
        ("demo-app", "1.0", "installed"),
        ("helper", "1.5", "installed"),
    ]
    assert report.compiled == 2
    python = Path(venv.executable)
    script = Path(venv.paths["scripts"]) / "demo-app"
    assert script.read_text().splitlines()[0] == f"#!{venv.executable}"
    assert subprocess.run([script], capture_output=True, text=True, check=True).stdout == (
        "demo-app 1.0\n"
    )
    out = subprocess.run(
        [python, "-c", "import demo_app, helper; print(demo_app.__version__, helper.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.split() == ["1.0", "1.5"]

    site = Path(venv.paths["purelib"])
    dist_info = site / "demo_app-1.0.dist-info"
    assert (dist_info / "INSTALLER").read_text() == "fetchplan\n"
    assert (dist_info / "REQUESTED").exists()
    assert not (site / "helper-1.5.dist-info" / "REQUESTED").exists()
    assert not (dist_info / "direct_url.json").exists()
    record = (dist_info / "RECORD").read_text().splitlines()
    assert "demo_app/__init__.py,sha256=" in "\n".join(record)
    assert f"demo_app/__pycache__/__init__.{venv.cache_tag}.pyc,," in record
    assert any(r.startswith("../../../bin/demo-app,sha256=") for r in record)
    assert (site / "demo_app" / "__pycache__" / f"__init__.{venv.cache_tag}.pyc").is_file()
    assert_no_leftovers(Path(venv.prefix))

    listed = _pip(python, "list", "--format=json")
    assert listed.returncode == 0, listed.stderr
    assert {(d["name"], d["version"]) for d in json.loads(listed.stdout)} == {
        ("demo-app", "1.0"),
        ("helper", "1.5"),
    }
    checked = _pip(python, "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_second_install_rewrites_nothing(tmp_path: Path, venv: TargetInterpreter) -> None:
    manifest = make_fetched_dest(tmp_path, [_demo("1.0"), Dist("helper", "1.0")])
    install_manifest(manifest, venv)
    before = _mtimes(Path(venv.prefix))
    report = install_manifest(manifest, venv)
    assert [p.action for p in report.projects] == ["unchanged", "unchanged"]
    assert report.compiled == 0
    assert _mtimes(Path(venv.prefix)) == before


def test_upgrade_removes_the_old_version(tmp_path: Path, venv: TargetInterpreter) -> None:
    old_files = {
        "demo_app/__init__.py": b'__version__ = "1.0"\ndef main():\n    print("demo-app 1.0")\n',
        "demo_app/legacy.py": b"OLD = True\n",
    }
    v1 = make_fetched_dest(
        tmp_path, [_demo("1.0", files=old_files), Dist("helper", "1.0")], name="v1"
    )
    v2 = make_fetched_dest(tmp_path, [_demo("2.0"), Dist("helper", "1.0")], name="v2")
    install_manifest(v1, venv)
    site = Path(venv.paths["purelib"])
    assert (site / "demo_app" / "legacy.py").is_file()
    assert (site / "demo_app" / "__pycache__" / f"legacy.{venv.cache_tag}.pyc").is_file()

    report = install_manifest(v2, venv)
    assert [(p.name, p.action, p.previous) for p in report.projects] == [
        ("demo-app", "replaced", ("1.0",)),
        ("helper", "unchanged", ()),
    ]
    assert not (site / "demo_app" / "legacy.py").exists()
    assert not list((site / "demo_app" / "__pycache__").glob("legacy.*"))
    assert not (site / "demo_app-1.0.dist-info").exists()
    assert (site / "demo_app-2.0.dist-info" / "RECORD").is_file()
    script = Path(venv.paths["scripts"]) / "demo-app"
    assert subprocess.run([script], capture_output=True, text=True, check=True).stdout == (
        "demo-app 2.0\n"
    )
    listed = _pip(Path(venv.executable), "list", "--format=json")
    assert {(d["name"], d["version"]) for d in json.loads(listed.stdout)} == {
        ("demo-app", "2.0"),
        ("helper", "1.0"),
    }
    assert _pip(Path(venv.executable), "check").returncode == 0


def test_removal_never_follows_record_outside_the_environment(
    tmp_path: Path, venv: TargetInterpreter
) -> None:
    outside = tmp_path / "precious.txt"
    outside.write_text("keep me")
    v1 = make_fetched_dest(tmp_path, [Dist("helper", "1.0")], name="v1")
    v2 = make_fetched_dest(tmp_path, [Dist("helper", "2.0")], name="v2")
    install_manifest(v1, venv)
    record = Path(venv.paths["purelib"]) / "helper-1.0.dist-info" / "RECORD"
    depth = len(Path(venv.paths["purelib"]).relative_to(tmp_path).parts)
    escaping = "/".join([".."] * depth) + "/precious.txt"
    with record.open("a") as fh:
        fh.write(f"{escaping},,\n{outside},,\n")

    install_manifest(v2, venv)
    assert outside.read_text() == "keep me"
    assert not (Path(venv.paths["purelib"]) / "helper-1.0.dist-info").exists()


def test_reinstall_and_no_compile(tmp_path: Path, venv: TargetInterpreter) -> None:
    manifest = make_fetched_dest(tmp_path, [Dist("helper", "1.0")])
    install_manifest(manifest, venv, compile=False)
    site = Path(venv.paths["purelib"])
    assert not (site / "helper" / "__pycache__").exists()
    assert "__pycache__" not in (site / "helper-1.0.dist-info" / "RECORD").read_text()
    (site / "helper" / "__init__.py").write_text("broken = True\n")

    report = install_manifest(manifest, venv, reinstall=True)
    assert [(p.action, p.previous) for p in report.projects] == [("reinstalled", ("1.0",))]
    assert "__version__" in (site / "helper" / "__init__.py").read_text()
    assert (site / "helper" / "__pycache__").is_dir()


def test_data_scheme_members_land_in_their_scheme(tmp_path: Path, venv: TargetInterpreter) -> None:
    data = "tool-1.0.data"
    files = {
        "tool/__init__.py": b"",
        f"{data}/scripts/tool-run": b"#!python\nprint('ran tool')\n",
        f"{data}/data/share/tool/readme.txt": b"shared\n",
        f"{data}/headers/tool.h": b"int tool;\n",
        f"{data}/platlib/tool_native.py": b"NATIVE = 1\n",
    }
    manifest = make_fetched_dest(tmp_path, [Dist("tool", "1.0", files=files)])
    install_manifest(manifest, venv)
    prefix = Path(venv.prefix)
    script = Path(venv.paths["scripts"]) / "tool-run"
    assert script.read_bytes().startswith(f"#!{venv.executable}\n".encode())
    assert (prefix / "share" / "tool" / "readme.txt").read_text() == "shared\n"
    headers = prefix / "include" / "site" / f"python{venv.python_version}" / "tool" / "tool.h"
    assert headers.read_text() == "int tool;\n"
    assert (Path(venv.paths["platlib"]) / "tool_native.py").is_file()


def test_incremental_install_of_verified_wheels(tmp_path: Path, venv: TargetInterpreter) -> None:
    manifest = make_fetched_dest(tmp_path, [_demo("1.0"), Dist("helper", "1.0")])
    wheels = wheels_for_interpreter(manifest, venv)
    first = install_wheels(wheels[1:], venv)
    second = install_wheels(wheels, venv)
    assert [p.action for p in first.projects] == ["installed"]
    assert [p.action for p in second.projects] == ["installed", "unchanged"]
    with pytest.raises(InstallError, match="a second wheel for helper"):
        install_wheels([wheels[1], wheels[1]], venv)


def test_cli_creates_the_venv_and_reports(
    tmp_path: Path, cli_env: dict[str, str], fetchplan_cmd: list[str]
) -> None:
    manifest = make_fetched_dest(tmp_path, [_demo("1.0"), Dist("helper", "1.0")])
    venv_dir = tmp_path / "made"
    argv = [*fetchplan_cmd, "install", str(manifest), "--venv", str(venv_dir)]
    done = subprocess.run(argv, capture_output=True, text=True, env=cli_env, check=False)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("Installed 2 packages in ")
    assert lines[1:] == [" + demo-app==1.0", " + helper==1.0"]
    again = subprocess.run(argv, capture_output=True, text=True, env=cli_env, check=False)
    assert again.stdout.startswith("Audited 2 packages in ")
    assert len(again.stdout.splitlines()) == 1
    (tmp_path / "dest" / "helper-1.0-py3-none-any.whl").write_bytes(b"tampered")
    # The wheel store holds the wheel the manifest vouches for (by its sha256): that is what
    # is installed, and the file is not read.
    stored = subprocess.run(
        [*argv, "--reinstall"], capture_output=True, text=True, env=cli_env, check=False
    )
    assert stored.returncode == 0, stored.stderr
    assert stored.stdout.splitlines()[2:] == [" ~ demo-app==1.0", " ~ helper==1.0"]
    helper = next((venv_dir / "lib").glob("python*/site-packages/helper/__init__.py"))
    assert helper.read_text().startswith('__version__ = "1.0"')
    # Without the store the file is read, and refused.
    bad = subprocess.run(
        [*argv, "--reinstall", "--no-cache"],
        capture_output=True,
        text=True,
        env=cli_env,
        check=False,
    )
    assert bad.returncode != 0
    assert "helper-1.0-py3-none-any.whl" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def _other_python() -> str:
    """An interpreter of another Python version (``FETCHPLAN_TEST_OTHER_PYTHON``, else the first
    ``python3.X`` on PATH that runs), or this one when the machine has no other."""
    candidates = [os.environ.get("FETCHPLAN_TEST_OTHER_PYTHON", "")]
    candidates += [f"python3.{minor}" for minor in range(8, 16) if minor != sys.version_info[1]]
    for candidate in candidates:
        found = shutil.which(candidate) if candidate else None
        if found is None:
            continue
        probe = subprocess.run(
            [found, "-c", "import sys; print(sys.version_info[1])"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.returncode == 0 and probe.stdout.strip() != str(sys.version_info[1]):
            return found
    return sys.executable


def test_venv_of_another_interpreter(tmp_path: Path) -> None:
    other = _other_python()
    made = subprocess.run(
        [other, "-m", "venv", "--without-pip", str(tmp_path / "other")], check=False
    )
    assert made.returncode == 0
    target = TargetInterpreter.query(tmp_path / "other" / "bin" / "python")
    version = subprocess.run(
        [other, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert target.python_version == version
    assert target.paths["purelib"].endswith(f"python{version}/site-packages")
    manifest = make_fetched_dest(tmp_path, [_demo("1.0"), Dist("helper", "1.0")])
    install_manifest(manifest, target)
    pyc = Path(target.paths["purelib"]) / "helper" / "__pycache__"
    assert [p.name for p in pyc.iterdir()] == [f"__init__.{target.cache_tag}.pyc"]
    out = subprocess.run(
        [target.executable, "-c", "import demo_app; print(demo_app.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout == "1.0\n"


def test_nothing_written_when_one_wheel_is_not_verified(
    tmp_path: Path, venv: TargetInterpreter
) -> None:
    manifest = make_fetched_dest(tmp_path, [_demo("1.0"), Dist("helper", "1.0")])
    (tmp_path / "dest" / "helper-1.0-py3-none-any.whl").unlink()
    before = snapshot(Path(venv.prefix))
    with pytest.raises(InstallError, match=r"helper-1\.0-py3-none-any\.whl: cannot open"):
        install_manifest(manifest, venv)
    assert snapshot(Path(venv.prefix)) == before


def test_cli_python_option_and_refusals(
    tmp_path: Path, cli_env: dict[str, str], fetchplan_cmd: list[str]
) -> None:
    manifest = make_fetched_dest(tmp_path, [Dist("helper", "1.0")])
    python = new_venv(tmp_path / "venv")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [*fetchplan_cmd, "install", str(manifest), *args]
        # In tmp_path: from a checkout, the checkout's own .venv would be found and used.
        return subprocess.run(
            argv, capture_output=True, text=True, env=cli_env, cwd=tmp_path, check=False
        )

    done = cli("--python", str(python), "--no-compile")
    assert done.returncode == 0, done.stderr
    assert " + helper==1.0" in done.stdout.splitlines()
    site = Path(TargetInterpreter.query(python).paths["purelib"])
    assert (site / "helper" / "__init__.py").is_file()
    assert not (site / "helper" / "__pycache__").exists()

    neither = cli()
    assert neither.returncode == 2
    assert "--venv DIR or --python PY" in neither.stderr
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "keep.txt").write_text("mine")
    refused = cli("--venv", str(occupied))
    assert refused.returncode == 1
    assert f"{occupied}: exists and is not a virtual environment" in refused.stderr
    assert [p.name for p in occupied.iterdir()] == ["keep.txt"]


def test_replaces_a_version_pip_installed(tmp_path: Path, venv: TargetInterpreter) -> None:
    make_fetched_dest(tmp_path, [_demo("1.0"), Dist("helper", "1.0")], name="v1")
    v2 = make_fetched_dest(tmp_path, [_demo("2.0"), Dist("helper", "1.0")], name="v2")
    python = Path(venv.executable)
    wheels = sorted(str(p) for p in (tmp_path / "v1").glob("*.whl"))
    pip_install = _pip(python, "install", "--no-index", "--no-deps", *wheels)
    assert pip_install.returncode == 0, pip_install.stderr
    site = Path(venv.paths["purelib"])
    assert (site / "demo_app-1.0.dist-info" / "INSTALLER").read_text() == "pip\n"

    report = install_manifest(v2, venv)
    assert [(p.name, p.action) for p in report.projects] == [
        ("demo-app", "replaced"),
        ("helper", "unchanged"),
    ]
    assert not (site / "demo_app-1.0.dist-info").exists()
    assert (site / "helper-1.0.dist-info" / "INSTALLER").read_text() == "pip\n"
    listed = _pip(python, "list", "--format=json")
    assert {(d["name"], d["version"]) for d in json.loads(listed.stdout)} == {
        ("demo-app", "2.0"),
        ("helper", "1.0"),
    }
    assert _pip(python, "check").returncode == 0
    script = Path(venv.paths["scripts"]) / "demo-app"
    assert subprocess.run([script], capture_output=True, text=True, check=True).stdout == (
        "demo-app 2.0\n"
    )


def test_install_metadata_in_the_wheel_is_ours_to_write(
    tmp_path: Path, venv: TargetInterpreter
) -> None:
    dist_info = "odd-1.0.dist-info"
    members = [
        *standard_members("odd", "1.0"),
        Member(f"{dist_info}/INSTALLER", b"someone-else\n"),
        Member(f"{dist_info}/direct_url.json", b'{"url": "file:///elsewhere"}'),
    ]
    wheel = raw_wheel(tmp_path / "dest", "odd-1.0-py3-none-any.whl", members, dist_info=dist_info)
    install_manifest(make_fetched_dest(tmp_path, [wheel]), venv)
    installed = Path(venv.paths["purelib"]) / dist_info
    assert (installed / "INSTALLER").read_text() == "fetchplan\n"
    assert not (installed / "direct_url.json").exists()
    assert (installed / "REQUESTED").exists()


def test_symlinked_directory_out_of_the_environment_is_refused(
    tmp_path: Path, venv: TargetInterpreter
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (Path(venv.paths["purelib"]) / "helper").symlink_to(outside)
    manifest = make_fetched_dest(tmp_path, [Dist("aaa", "1.0"), Dist("helper", "1.0")])
    before = snapshot(Path(venv.prefix))
    with pytest.raises(InstallError) as info:
        install_manifest(manifest, venv)
    assert "helper/__init__.py: its directory leads outside the environment" in str(info.value)
    assert list(outside.iterdir()) == []
    assert snapshot(Path(venv.prefix)) == before


def test_new_directories_move_whole_and_shared_ones_file_by_file(
    tmp_path: Path, venv: TargetInterpreter
) -> None:
    # Two wheels share the namespace directory ``nspkg`` (new to the environment), and one
    # adds a file to the existing site-packages directly: every file lands, nothing else does.
    first = {"nspkg/alpha/__init__.py": b"A = 1\n", "nspkg/alpha/deep/x.py": b"X = 1\n"}
    second = {"nspkg/beta/__init__.py": b"B = 2\n", "top_level_mod.py": b"T = 3\n"}
    manifest = make_fetched_dest(
        tmp_path, [Dist("alpha", "1.0", files=first), Dist("beta", "1.0", files=second)]
    )
    install_manifest(manifest, venv, compile=False)
    site = Path(venv.paths["purelib"])
    found = {
        p.relative_to(site).as_posix()
        for p in site.rglob("*")
        if p.is_file() and ".dist-info" not in p.as_posix() and not p.name.startswith("_virtualenv")
    }
    assert {*first, *second} <= found
    assert not [p for p in Path(venv.prefix).iterdir() if p.name.startswith(".fetchplan-staging")]
    out = subprocess.run(
        [venv.executable, "-c", "import nspkg.alpha.deep.x as x, nspkg.beta as b; print(x.X+b.B)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "3"


def test_a_directory_where_a_file_goes_is_refused(tmp_path: Path, venv: TargetInterpreter) -> None:
    # The environment has a directory at the path of one of the wheel's files (in an existing
    # package directory): nothing moves.
    (Path(venv.paths["purelib"]) / "helper" / "__init__.py").mkdir(parents=True)
    manifest = make_fetched_dest(tmp_path, [Dist("aaa", "1.0"), Dist("helper", "1.0")])
    before = snapshot(Path(venv.prefix))
    with pytest.raises(InstallError) as info:
        install_manifest(manifest, venv)
    assert "helper/__init__.py: is a directory; cannot install a file there" in str(info.value)
    assert snapshot(Path(venv.prefix)) == before


def test_sibling_directories_sharing_a_prefix_all_land(
    tmp_path: Path, venv: TargetInterpreter
) -> None:
    # A new package directory moves in one rename; the files of a sibling whose name starts
    # with the same letters must still be moved, not taken as already inside it.
    files = {
        "pkg/__init__.py": b"A = 1\n",
        "pkg/sub/mod.py": b"B = 2\n",
        "pkg_extra/__init__.py": b"C = 3\n",
        "pkgx.py": b"D = 4\n",
    }
    manifest = make_fetched_dest(tmp_path, [Dist("siblings", "1.0", files=files)])
    install_manifest(manifest, venv, compile=False)
    site = Path(venv.paths["purelib"])
    for name, content in files.items():
        assert (site / name).read_bytes() == content
    assert_no_leftovers(Path(venv.prefix))
