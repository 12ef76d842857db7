"""Regenerate the example plans in this directory, hermetically.

Run from the repository root::

    python3 plans/regenerate.py            # rewrite plans/*/plan.json|yaml
    python3 plans/regenerate.py --check    # exit 1 if a committed plan differs from a fresh one

It builds a small package index from ``tests/support`` (real wheels and sdists, deterministic
content), serves it with the in-process test server on a free loopback port, plans every
example against it with ``make_plan`` for a fixed target environment and without any cache,
then replaces the server's address with ``PLACEHOLDER`` and the creation time with
``CREATED``, so the committed plans name no real host, no machine path and no date.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from fetchplan.planner.api import PlanOptions, make_plan  # noqa: E402
from fetchplan.schemas import dumps_document  # noqa: E402
from tests.support.index import IndexOptions, write_index  # noqa: E402
from tests.support.servers import IndexServer  # noqa: E402
from tests.support.wheels import Dist, build_sdist, build_wheel  # noqa: E402

PLACEHOLDER = "http://127.0.0.1:8000"
CREATED = "2000-01-01T00:00:00Z"
HERE = Path(__file__).resolve().parent

LINUX = {"python_version": "3.12", "platforms": ("manylinux_2_28_x86_64",)}
WINDOWS = {"python_version": "3.11", "platforms": ("win_amd64",)}


def _dists() -> list[tuple[Dist, bool, bool]]:
    """(dist, build a wheel, build an sdist) for every file of the example index."""
    win = "colorterm; sys_platform == 'win32'"
    return [
        (
            Dist(
                "webapp",
                "2.1",
                requires=["router>=1.2", "templates~=3.0", win],
                extras={"speedups": ["fastjson>=2"]},
                padding=40_000,
            ),
            True,
            True,
        ),
        (Dist("webapp", "2.0", requires=["router>=1.0", "templates~=3.0"]), True, False),
        (Dist("router", "1.2", requires=["urlparse-ng>=0.9"], padding=20_000), True, False),
        (Dist("router", "1.3", requires=["urlparse-ng>=0.9"], padding=20_000), True, False),
        (Dist("urlparse-ng", "0.9", padding=5_000), True, False),
        (Dist("templates", "3.0.1", padding=60_000), True, False),
        (
            Dist("templates", "3.1.0", requires=["markupsafe-lite>=2"], padding=60_000),
            True,
            True,
        ),
        (Dist("templates", "4.0.0", requires=["markupsafe-lite>=3"], padding=60_000), True, False),
        (
            Dist(
                "markupsafe-lite",
                "2.1",
                tag="cp312-cp312-manylinux_2_17_x86_64",
                padding=30_000,
            ),
            True,
            False,
        ),
        (
            Dist("markupsafe-lite", "2.1", tag="cp311-cp311-win_amd64", padding=30_000),
            True,
            False,
        ),
        (
            Dist("markupsafe-lite", "2.1", metadata_version="2.2", padding=30_000),
            False,
            True,
        ),
        (
            Dist("fastjson", "2.0", tag="cp312-abi3-manylinux_2_17_x86_64", padding=150_000),
            True,
            False,
        ),
        (Dist("fastjson", "2.0", tag="cp311-abi3-win_amd64", padding=150_000), True, False),
        (
            Dist("fastjson", "2.1b1", tag="cp312-abi3-manylinux_2_17_x86_64", padding=150_000),
            True,
            False,
        ),
        (Dist("colorterm", "0.4.6", padding=10_000), True, False),
    ]


@dataclass(frozen=True)
class Example:
    name: str
    output: str
    requirements: str
    constraints: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


EXAMPLES = (
    Example(
        "basic",
        "plan.json",
        "# A web application with an optional extra.\nwebapp[speedups]>=2\n",
        options=LINUX,
    ),
    Example(
        "constrained",
        "plan.json",
        "webapp\n",
        constraints="# Stay on the templates 3.0 line.\ntemplates==3.0.1\n",
        options=LINUX,
    ),
    Example(
        "windows",
        "plan.yaml",
        "webapp[speedups]\n",
        options=WINDOWS,
    ),
    Example(
        "prereleases",
        "plan.json",
        "webapp[speedups]\n",
        options={**LINUX, "pre": True},
    ),
)


def build_index(root: Path) -> Path:
    """Write the example index under ``root`` (files and simple pages); return ``root``."""
    built: list[Path] = []
    for dist, wheel, sdist in _dists():
        if wheel:
            built.append(build_wheel(root / "dists", dist))
        if sdist:
            built.append(build_sdist(root / "dists", dist))
    yanked = {"router-1.3-py3-none-any.whl": "breaks URL quoting"}
    write_index(root / "index", built, IndexOptions(yanked=yanked))
    return root / "index"


def generate(target_dir: Path, work: Path) -> dict[Path, bytes]:
    """Plan every example against a fresh local index; return rendered plans by path."""
    out: dict[Path, bytes] = {}
    index_root = build_index(work)
    with IndexServer(index_root) as server:
        for example in EXAMPLES:
            directory = target_dir / example.name
            directory.mkdir(parents=True, exist_ok=True)
            requirements = directory / "requirements.txt"
            requirements.write_text(example.requirements)
            constraint_files: tuple[Path, ...] = ()
            if example.constraints is not None:
                constraints = directory / "constraints.txt"
                constraints.write_text(example.constraints)
                constraint_files = (constraints,)
            options = PlanOptions(
                requirement_files=(requirements,),
                constraint_files=constraint_files,
                index_url=server.index_url,
                output=directory / example.output,
                dest=directory / "wheels",
                no_cache=True,
                isolated=True,
                use_netrc=False,
                **example.options,
            )
            plan = make_plan(options).plan
            document = json.loads(json.dumps(plan.to_dict()).replace(server.url, PLACEHOLDER))
            document["created"] = CREATED
            path = directory / example.output
            out[path] = dumps_document(document, "plan", str(path))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        if args.check:
            fresh = generate(Path(tmp) / "plans", Path(tmp) / "work")
            stale = [
                name
                for path, data in fresh.items()
                if (HERE / path.relative_to(Path(tmp) / "plans")).read_bytes() != data
                for name in [path.relative_to(Path(tmp) / "plans").as_posix()]
            ]
            for name in stale:
                print(f"plans/{name} is out of date")  # noqa: T201
            return 1 if stale else 0
        for path, data in generate(HERE, Path(tmp) / "work").items():
            path.write_bytes(data)
            print(f"wrote {path.relative_to(REPO)}")  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
