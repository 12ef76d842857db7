"""``fetchplan install``: install the wheels of a verified manifest into an environment."""

from __future__ import annotations

import argparse
from pathlib import Path

from fetchplan.errors import InputError

__all__ = ["register", "run"]


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    p = subparsers.add_parser(
        "install",
        parents=[common],
        help="install the wheels of a verified manifest",
        description=(
            "Install the wheels a verified manifest (written by `fetchplan fetch`) vouches for "
            "into a virtual environment or an interpreter. Every wheel is checked against the "
            "manifest and the plan, and for unsafe contents, before anything is written."
        ),
    )
    p.add_argument("manifest", type=Path, metavar="MANIFEST", help="the manifest.json to install")
    p.add_argument(
        "--venv",
        type=Path,
        metavar="DIR",
        help="install into this virtual environment, created (without pip) if it does not exist",
    )
    p.add_argument(
        "--python",
        type=Path,
        metavar="PY",
        help="install into this interpreter's environment (with --venv: create the venv with it)",
    )
    p.add_argument(
        "--plan",
        type=Path,
        metavar="FILE",
        help="the plan the manifest was made from (default: the manifest's plan.path)",
    )
    p.add_argument(
        "--reinstall",
        action="store_true",
        help="reinstall projects already installed at the planned version",
    )
    p.add_argument(
        "--no-compile",
        dest="compile",
        action="store_false",
        help="do not byte-compile the installed modules",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fetchplan.install import TargetInterpreter, ensure_venv, install_manifest

    if args.venv is None and args.python is None:
        raise InputError("install: give the environment with --venv DIR or --python PY")
    python: Path = args.python if args.venv is None else ensure_venv(args.venv, python=args.python)
    target = TargetInterpreter.query(python)
    report = install_manifest(
        args.manifest,
        target,
        plan_path=args.plan,
        reinstall=args.reinstall,
        compile=args.compile,
    )
    for project in report.projects:
        if project.action == "unchanged":
            continue
        before = f" (was {', '.join(project.previous)})" if project.previous else ""
        print(f"  {project.action} {project.name} {project.version}{before}")  # noqa: T201
    print(  # noqa: T201
        f"installed {report.count('installed')}, replaced {report.count('replaced')}, "
        f"reinstalled {report.count('reinstalled')}, unchanged {report.count('unchanged')} "
        f"into {report.prefix}"
    )
    return 0
