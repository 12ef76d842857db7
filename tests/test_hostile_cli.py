"""Mistakes and hostile inputs met through the command line only (issue 18's last bullets)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import MakeIndexServer, RunCli
from tests.support.wheels import Dist, build_sdist, build_wheel

NOISY_SETUP_PY = """\
import sys
from setuptools import setup

print("NOISY-STDOUT from setup.py")
print("NOISY-STDERR from setup.py", file=sys.stderr)
if "FAIL" in open("fail-flag").read():
    for n in range(200):
        print(f"NOISY-LINE-{n}")
    sys.exit("NOISY-CAUSE: this sdist refuses today")
setup(name="noisy", version="1.0", packages=["noisy"], install_requires=["dep" + ">=1"])
"""


def _noisy_index(
    tmp_path: Path, index_server: MakeIndexServer, tools: list[Path], flag: str
) -> str:
    dists = tmp_path / "dists"
    sdist = build_sdist(
        dists,
        Dist("noisy", "1.0", metadata_version="2.2"),
        dynamic=["Requires-Dist"],
        setup_py=NOISY_SETUP_PY,
        extra_files={"fail-flag": flag},
    )
    return index_server([sdist, build_wheel(dists, Dist("dep", "1.0")), *tools]).index_url


def test_sdist_backend_output_only_with_verbose(
    tmp_path: Path,
    index_server: MakeIndexServer,
    run_cli: RunCli,
    build_tools: list[Path],
) -> None:
    index = _noisy_index(tmp_path, index_server, build_tools, "ok")
    base = ("plan", "noisy", "-i", index, "--isolated", "--no-cache", "-o")
    out = run_cli(*base, "plan.json")
    assert out.returncode == 0, out.stderr
    assert "NOISY" not in out.stdout + out.stderr
    out = run_cli(*base, "plan2.json", "-v")
    assert out.returncode == 0, out.stderr
    assert "NOISY-STDOUT" in out.stderr and "NOISY-STDERR" in out.stderr


def test_failing_sdist_backend_quotes_its_last_lines_on_one_line(
    tmp_path: Path,
    index_server: MakeIndexServer,
    run_cli: RunCli,
    build_tools: list[Path],
) -> None:
    index = _noisy_index(tmp_path, index_server, build_tools, "FAIL")
    base = ("plan", "noisy", "-i", index, "--isolated", "--no-cache", "-o", "plan.json")
    out = run_cli(*base)
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert "noisy-1.0.tar.gz" in lines[0] and "NOISY-CAUSE" in lines[0]
    # Tail-limited: the last lines only, not the 200 the backend printed.
    assert "NOISY-LINE-199" in lines[0] and "NOISY-LINE-100" not in lines[0]
    assert len(lines[0]) < 800
    assert not (tmp_path / "plan.json").exists()
    out = run_cli(*base, "-v")
    assert out.returncode != 0
    assert "NOISY-LINE-0\n" in out.stderr and "NOISY-LINE-150" in out.stderr


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (("pln", "lib"), "invalid choice: 'pln'"),
        (("pln", "lib"), "; did you mean plan?"),
        (("cache", "prnue"), "; did you mean prune?"),
        (
            ("plan", "lib", "--inex-url=x"),
            "unrecognized arguments: --inex-url=x; did you mean --index-url?",
        ),
        (("--verbse", "plan", "lib"), "did you mean --verbose?"),
        (("fetch", "p.json", "--stall-timout", "3"), "did you mean --stall-timeout?"),
        (("plan", "lib", "--index-strategy", "first"), "did you mean first-index?"),
        (("plan", "lib", "-i"), "argument -i/--index-url: expected one argument"),
        (("plan", "lib", "--timeout", "soon"), "argument --timeout: expected a number, not 'soon'"),
        (("plan", "lib", "--timeout", "nan"), "must be a finite number more than 0, not 'nan'"),
        (("fetch", "p.json", "--file-timeout", "inf"), "finite number more than 0, not 'inf'"),
        (("plan", "lib", "--retries", "-1"), "argument --retries: must be at least 0, not -1"),
        (("plan", "lib", "-j", "1e3"), "argument -j/--jobs: expected a whole number, not '1e3'"),
        (("cache", "prune", "--unused-days", "-1"), "finite number 0 or more, not '-1'"),
    ],
)
def test_every_usage_mistake_is_one_line_with_exit_2(
    argv: tuple[str, ...], said: str, run_cli: RunCli
) -> None:
    out = run_cli(*argv)
    assert out.returncode == 2
    lines = out.stderr.splitlines()
    assert len(lines) == 1, out.stderr
    assert said in lines[0]
    assert lines[0].startswith("fetchplan") and lines[0].endswith("--help)")
    assert out.stdout == ""


# An in-tree backend (no build requirements: quick) whose prepared metadata asks for dep>=2,
# which the index does not have: each version it prepares is a dead end to backtrack from.
DEAD_END_BACKEND = """\
import os


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    with open("PKG-INFO") as f:
        fields = dict(line.split(": ", 1) for line in f.read().splitlines() if ": " in line)
    name, version = fields["Name"], fields["Version"]
    info = f"{name}-{version}.dist-info"
    os.makedirs(os.path.join(metadata_directory, info))
    with open(os.path.join(metadata_directory, info, "METADATA"), "w") as f:
        f.write(f"Metadata-Version: 2.1\\nName: {name}\\nVersion: {version}\\n")
        f.write("Requires-Dist: dep>=2\\n\\n")
    return info
"""
DEAD_END_PYPROJECT = (
    '[build-system]\nrequires = []\nbuild-backend = "dead_end"\nbackend-path = ["."]\n'
)


def test_sdist_builds_per_project_are_capped_while_backtracking(
    tmp_path: Path, index_server: MakeIndexServer, run_cli: RunCli
) -> None:
    dists = tmp_path / "dists"
    files = [
        build_sdist(
            dists,
            Dist("lib", version, metadata_version="2.2"),
            dynamic=["Requires-Dist"],
            pyproject=DEAD_END_PYPROJECT,
            extra_files={"dead_end.py": DEAD_END_BACKEND},
        )
        for version in ("5.0", "4.0", "3.0", "2.0")
    ]
    files += [build_wheel(dists, Dist("lib", "1.0")), build_wheel(dists, Dist("dep", "1.0"))]
    index = index_server(files).index_url
    base = ("plan", "lib", "-i", index, "--isolated", "--no-cache", "-v", "-o")

    # Unbounded enough: every sdist is prepared, each is a dead end, lib 1.0 is planned.
    out = run_cli(*base, "all.json")
    assert out.returncode == 0, out.stderr
    assert out.stderr.count("preparing the metadata of") == 4, out.stderr
    assert "lib-1.0-py3-none-any.whl" in (tmp_path / "all.json").read_text()

    # Two builds, then lib 3.0 and 2.0 are unusable (said at -v) and the resolver goes on.
    out = run_cli(*base, "capped.json", "--max-sdist-builds", "2")
    assert out.returncode == 0, out.stderr
    assert out.stderr.count("preparing the metadata of") == 2, out.stderr
    for version in ("3.0", "2.0"):
        assert (
            f"lib {version} is unusable, trying another version: cannot prepare the metadata"
            in out.stderr
        )
    assert "the most --max-sdist-builds allows" in out.stderr
    assert "lib-1.0-py3-none-any.whl" in (tmp_path / "capped.json").read_text()

    # Metadata prepared before and kept in the cache costs no build and is not counted.
    cached = ("plan", "lib", "-i", index, "--isolated", "--cache-dir", "cache", "-v", "-o")
    assert run_cli(*cached, "warm.json").returncode == 0
    out = run_cli(*cached, "again.json", "--max-sdist-builds", "0")
    assert out.returncode == 0, out.stderr
    assert "preparing the metadata of" not in out.stderr and "unusable" not in out.stderr

    # No build at all: a pin on an sdist-only version says why in one line.
    out = run_cli("plan", "lib==4.0", "-i", index, "--isolated", "--no-cache", "-o", "p.json",
                  "--max-sdist-builds", "0")  # fmt: skip
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert "lib 4.0" in lines[0] and "--max-sdist-builds" in lines[0]
    assert not (tmp_path / "p.json").exists()


def test_a_find_links_file_past_the_page_limit_is_refused_in_one_line(
    tmp_path: Path, run_cli: RunCli
) -> None:
    from fetchplan._limits import MAX_PAGE_BYTES

    page = tmp_path / "links.html"
    with page.open("wb") as f:
        f.truncate(MAX_PAGE_BYTES + 1)  # sparse: no disk used
    out = run_cli("plan", "lib", "--isolated", "--no-index", "-f", str(page), "-o", "plan.json")
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert "links.html" in lines[0] and "larger than the 128 MiB" in lines[0]
    assert not (tmp_path / "plan.json").exists()
