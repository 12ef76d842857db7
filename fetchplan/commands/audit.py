"""``fetchplan audit``: what a plan would contact and fetch, and whether it meets a policy."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fetchplan.errors import InputError
from fetchplan.review.audit import DEFAULT_LARGE_FILE, audit_plan, render_audit
from fetchplan.review.policy import check_policy, check_vulns, load_policy, parse_size
from fetchplan.schemas.plan import Plan, load_plan

if TYPE_CHECKING:
    from fetchplan.planner.attestations import AttestationProblem

__all__ = ["register", "run"]


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    p = subparsers.add_parser(
        "audit",
        parents=[common],
        help="report hosts, hashes, sdists, sizes of a plan; check it against a policy",
        description=(
            "Report what PLAN (a plan file, or a bundle: its plan) would contact and fetch: "
            "hosts and schemes, bytes per host, artifacts without sha256, yanked files, "
            "sdists, large files, requested versus transitive projects, upload times, "
            "provenance and verified attestations; with --attestations, each file's PEP 740 "
            "attestations fetched and verified now (a bundle's from the provenance objects it "
            "carries, offline); with --vulns, the known vulnerabilities of each artifact from "
            "an OSV database, read offline. With --policy, list every violation and exit with "
            "status 1 if there is "
            "one (or if an attestation fails to verify)."
        ),
    )
    p.add_argument(
        "plan", type=Path, metavar="PLAN", help="a plan file, or a bundle (directory or tar)"
    )
    p.add_argument("--policy", type=Path, metavar="FILE", help="policy file (YAML or JSON)")
    p.add_argument(
        "--vulns",
        type=Path,
        metavar="DB",
        help="an OSV database of the PyPI ecosystem: OSV's all.zip export, or a directory of "
        "its <ID>.json records",
    )
    p.add_argument(
        "--attestations",
        action="store_true",
        help="fetch the PEP 740 provenance of every file that has one and verify each "
        "attestation against the file's sha256 from the plan (offline trust root; needs "
        "fetchplan[attestations]); a failure is listed and makes the exit status 1",
    )
    p.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    p.add_argument(
        "--large-file",
        default=str(DEFAULT_LARGE_FILE),
        metavar="SIZE",
        help="report artifacts larger than SIZE (bytes, or 50MB, 1GiB...; default 100MB)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        threshold = parse_size(args.large_file)
    except ValueError as exc:
        raise InputError(f"--large-file: {exc}") from exc
    policy = None if args.policy is None else load_policy(args.policy)
    plan, failures = _read_plan(args.plan, attestations=args.attestations)
    advisories = None
    if args.vulns is not None:
        from fetchplan.review.vulns import load_osv_database

        advisories = load_osv_database(args.vulns, {a.name for a in plan.artifacts})
    audit = audit_plan(
        plan,
        large_threshold=threshold,
        advisories=advisories,
        attestation_failures=[(f.filename, f.reason) for f in failures],
    )
    violations = []
    if policy is not None:
        violations = check_policy(plan, policy) + check_vulns(policy, audit.vulnerabilities)
    if args.format == "json":
        document: dict[str, Any] = {"plan": str(args.plan), "audit": audit.to_dict()}
        if args.vulns is not None:
            document["vulns"] = str(args.vulns)
        if policy is not None:
            document["policy"] = str(args.policy)
            document["violations"] = [v.to_dict() for v in violations]
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    else:
        sys.stdout.write(f"Audit of {args.plan}\n\n" + render_audit(audit))
        if policy is not None:
            sys.stdout.write(f"\nPolicy {args.policy}: ")
            if violations:
                sys.stdout.write(f"{len(violations)} violation(s)\n")
                sys.stdout.writelines(f"  {v}\n" for v in violations)
            else:
                sys.stdout.write("no violations\n")
    for failure in failures:
        sys.stderr.write(f"fetchplan: {failure}\n")
    return 1 if violations or failures else 0


def _read_plan(path: Path, *, attestations: bool) -> tuple[Plan, list[AttestationProblem]]:
    """The plan at ``path`` (a plan file, or a bundle: its plan), with ``attestations`` every
    file's attestations verified now (a bundle's from the provenance objects it carries,
    offline), and the files that failed."""
    from fetchplan.bundle.provenance import bundle_plan, is_bundle_path

    if not is_bundle_path(path):
        plan, _ = load_plan(path)
        return _verify_attestations(plan, None) if attestations else (plan, [])
    with bundle_plan(path) as (plan, carried):
        return _verify_attestations(plan, carried) if attestations else (plan, [])


def _verify_attestations(
    plan: Plan, get: Callable[[str], bytes] | None
) -> tuple[Plan, list[AttestationProblem]]:
    """``plan`` with every file's attestations verified now (what was recorded replaced), and
    the files that failed. ``get`` answers provenance URLs; by default they are fetched."""
    from fetchplan.planner.attestations import attest_artifacts, plan_getter, require_library

    require_library()
    with contextlib.ExitStack() as stack:
        if get is None:
            get = stack.enter_context(plan_getter(plan))
        with ThreadPoolExecutor(max_workers=8, thread_name_prefix="fetchplan-attest") as pool:
            artifacts, problems = attest_artifacts(
                (replace(a, attestations=None) for a in plan.artifacts), get, executor=pool
            )
    return replace(plan, artifacts=artifacts), list(problems)
