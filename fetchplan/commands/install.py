"""``fetchplan install``: install the wheels of a verified manifest (or a bundle) into an
environment.

sdists in it are built into wheels first (:mod:`fetchplan.install.build`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fetchplan.commands._args import add_link_mode_argument
from fetchplan.errors import InputError

__all__ = ["register", "run"]


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    p = subparsers.add_parser(
        "install",
        parents=[common],
        help="install the wheels of a verified manifest or bundle",
        description=(
            "Install the wheels a verified manifest (written by `fetchplan fetch`) vouches for "
            "into a virtual environment or an interpreter. Every wheel is checked against the "
            "manifest and the plan, and for unsafe contents, before anything is written. A "
            "bundle (directory or tar, from `fetchplan bundle`) is verified whole first, as "
            "`fetchplan verify` does, and refused on any problem. With a "
            "plan for several targets, the artifacts of the target that best fits the "
            "interpreter are installed. An sdist (a project without a fitting wheel) is built "
            "first, offline, in an isolated environment of the plan's build dependencies; "
            "nothing is installed unless every build succeeds. Never uses the network. One "
            "install at a time per environment: another waits for it (or, with --no-wait, "
            "exits with status 75), and an install that was killed is finished or undone by "
            "the next one."
        ),
    )
    p.add_argument(
        "manifest",
        type=Path,
        metavar="SOURCE",
        help="a manifest.json, a fetch destination, or a bundle directory or tar",
    )
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
    add_link_mode_argument(p)
    p.add_argument(
        "--cache-dir",
        type=Path,
        metavar="DIR",
        help="the cache whose wheel store is filled and linked from (default: the user's)",
    )
    p.add_argument(
        "--no-cache",
        action="store_true",
        help="keep no unpacked wheels: unpack into a store that lasts for this install only",
    )
    p.add_argument(
        "--no-wait",
        action="store_true",
        help="fail at once (exit status 75) if another fetchplan is installing into the "
        "environment, rather than waiting for it",
    )
    p.add_argument(
        "--offline",
        action="store_true",
        help="accepted for symmetry with the other commands: installing never uses the network",
    )
    p.set_defaults(func=run)


def note(message: str) -> None:
    """A line the user must see while the command waits (for the environment's lock)."""
    sys.stderr.write(f"fetchplan: {message}\n")
    sys.stderr.flush()


def run(args: argparse.Namespace) -> int:
    from fetchplan.bundle import BundleInvalid, check_bundle, open_bundle
    from fetchplan.install import TargetInterpreter, ensure_venv, install_manifest
    from fetchplan.install.core import load_checked
    from fetchplan.install.store import WheelStore, default_store_dir

    if args.venv is None and args.python is None:
        raise InputError("install: give the environment with --venv DIR or --python PY")
    with open_bundle(args.manifest) as source:
        if source.is_bundle:
            whole = check_bundle(source)
            if whole.problems:
                raise BundleInvalid(whole.where, whole.problems)
        # A manifest that cannot be installed must not leave a new, empty venv behind.
        checked = load_checked(source.manifest_path, plan_path=args.plan)
        python: Path = (
            args.python if args.venv is None else ensure_venv(args.venv, python=args.python)
        )
        target = TargetInterpreter.query(python)
        report = install_manifest(
            source.manifest_path,
            target,
            plan_path=args.plan,
            reinstall=args.reinstall,
            compile=args.compile,
            checked=checked,
            wait=not args.no_wait,
            on_wait=note,
            store=None if args.no_cache else WheelStore(default_store_dir(args.cache_dir)),
            link_mode=args.link_mode,
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
