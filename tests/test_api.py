"""The public API of ``fetchplan/__init__.py``: the README's example, run as written, and
``fetchplan.run``, against a real index server on loopback."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import fetchplan
from fetchplan.install import TargetInterpreter
from fetchplan.schemas.manifest import load_manifest
from fetchplan.schemas.plan import load_plan
from tests.conftest import CLI_TIMEOUT, MakeIndexServer
from tests.support.hostile import new_venv
from tests.support.wheels import Dist

REPO_ROOT = Path(__file__).resolve().parent.parent
MARKER = "<!-- the block below is run by tests/test_api.py -->"
INDEX = [Dist("attrs", "23.1.0", requires=["six>=1"]), Dist("six", "1.16.0")]


def _readme_example() -> str:
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(re.escape(MARKER) + r"\n```python\n(.*?)```", text, re.DOTALL)
    assert found is not None, f"README.md: no python block after {MARKER!r}"
    return found.group(1)


def _python(
    python: str | Path, code: str, *, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -c code``, its output captured as text."""
    return subprocess.run(
        [str(python), "-c", code],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=False,
    )


def test_readme_example_runs_the_whole_pipeline(
    index_server: MakeIndexServer, cli_env: dict[str, str], tmp_path: Path
) -> None:
    code = _readme_example()
    assert len([line for line in code.splitlines() if line.strip()]) == 5, code  # five lines
    server = index_server(INDEX)
    env = {**cli_env, "PIP_INDEX_URL": server.index_url}
    done = _python(sys.executable, code, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""  # the library never prints

    plan, _ = load_plan(tmp_path / "plan.json")
    assert {a.name: a.version for a in plan.artifacts} == {"attrs": "23.1.0", "six": "1.16.0"}
    manifest = load_manifest(tmp_path / "wheels" / "manifest.json")
    assert sorted(a.name for a in manifest.artifacts) == ["attrs", "six"]
    python = tmp_path / "env" / "bin" / "python"
    imported = _python(python, "import attrs, six; print(attrs.__version__, six.__version__)")
    assert imported.stdout.strip() == "23.1.0 1.16.0", imported.stderr


def test_run_plans_fetches_and_installs_in_one_call(
    index_server: MakeIndexServer, tmp_path: Path
) -> None:
    server = index_server(INDEX)
    target = TargetInterpreter.query(new_venv(tmp_path / "venv"))
    options = fetchplan.PlanOptions(
        requirements=["attrs"], index_url=server.index_url, output=tmp_path / "out" / "plan.json"
    )
    result = fetchplan.run(options, target, install_options=fetchplan.InstallOptions(compile=False))
    assert result.ok and result.fetched.ok
    assert result.installed is not None
    assert sorted((p.name, p.version, p.action) for p in result.installed.projects) == [
        ("attrs", "23.1.0", "installed"),
        ("six", "1.16.0", "installed"),
    ]
    manifest = load_manifest(tmp_path / "out" / "wheels" / "manifest.json")
    assert sorted(a.name for a in manifest.artifacts) == ["attrs", "six"]

    # Run again: nothing to change, and the fetch finds every file in place.
    again = fetchplan.run(options, target)
    assert again.installed is not None
    assert {p.action for p in again.installed.projects} == {"unchanged"}
    assert again.fetched.summary()["files"]["existing"] == 2


def test_importing_fetchplan_imports_no_stage(cli_env: dict[str, str]) -> None:
    code = (
        "import sys, fetchplan\n"
        "print(sorted(m for m in sys.modules if m.startswith('fetchplan.')))\n"
        "import fetchplan.pipeline, fetchplan.planner.api\n"
        "print(fetchplan.install_from is fetchplan.pipeline.install_from,\n"
        "      fetchplan.PlanOptions is fetchplan.planner.api.PlanOptions)\n"
    )
    done = _python(sys.executable, code, env=cli_env)
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.splitlines()
    assert first == "[]"
    assert second == "True True"


def test_installing_from_a_manifest_imports_no_planner(cli_env: dict[str, str]) -> None:
    # An offline machine installs through the pipeline with the planner's dependencies absent.
    code = (
        "import sys, fetchplan.pipeline, fetchplan.build.sdists, fetchplan.commands.install\n"
        "print(sorted(m for m in sys.modules if m.startswith('fetchplan.planner')))\n"
    )
    done = _python(sys.executable, code, env=cli_env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
