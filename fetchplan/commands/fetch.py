"""``fetchplan fetch PLAN``: download and verify every artifact of a plan, resumably."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from fetchplan.commands._args import (
    add_allow_unhashed_argument,
    add_mirror_argument,
    add_no_wait_argument,
    add_per_host_argument,
    add_progress_argument,
    credential_url,
    non_negative_seconds,
    positive_int,
    positive_seconds,
)

if TYPE_CHECKING:
    from fetchplan.executor.run import FetchOptions

__all__ = [
    "FetchGroups",
    "add_fetch_arguments",
    "fetch_options",
    "register",
    "run",
]

_DESCRIPTION = """\
Fetch every artifact of PLAN into its destination (or --dest DIR), in parallel, verifying each
against the plan's sha256 and size, and write manifest.json there: the verified record that
`fetchplan install` consumes. Interrupt it at any moment; the same command continues where it
stopped. Retries, timeouts and backoff may also be set with FETCHPLAN_RETRIES,
FETCHPLAN_RETRY_BASE, FETCHPLAN_RETRY_MAX, FETCHPLAN_RETRY_AFTER_CAP, FETCHPLAN_CONNECT_TIMEOUT,
FETCHPLAN_STALL_WINDOW, FETCHPLAN_STALL_MIN_BYTES and FETCHPLAN_FILE_DEADLINE.
Exit status: 0 all verified, 1 some artifacts failed, 2 bad plan or options, 75 destination
busy (--no-wait), 130 interrupted.
"""


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
) -> None:
    p = subparsers.add_parser(
        "fetch",
        parents=[common],
        help="download and verify the artifacts of a plan",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("plan", type=Path, metavar="PLAN", help="the plan file (JSON or YAML)")
    p.add_argument("--dest", type=Path, metavar="DIR", help="destination (default: the plan's)")
    groups = add_fetch_arguments(p)
    groups.parallelism.add_argument(
        "--shard",
        metavar="I/N",
        help=(
            "fetch only shard I of N (a deterministic share; give each shard its own --dest "
            "and join the manifests with `fetchplan manifest merge`)"
        ),
    )
    groups.trust.add_argument(
        "--policy",
        type=Path,
        metavar="FILE",
        help="refuse to start when the plan breaks this policy (see `fetchplan audit`)",
    )
    groups.output.add_argument(
        "--timings",
        type=Path,
        metavar="FILE",
        help="write the summary, per host and per file timings as JSON",
    )
    p.set_defaults(func=run)


class FetchGroups(NamedTuple):
    """The argument groups :func:`add_fetch_arguments` made, for a command's own options."""

    parallelism: argparse._ArgumentGroup
    trust: argparse._ArgumentGroup
    output: argparse._ArgumentGroup


def add_fetch_arguments(p: argparse.ArgumentParser) -> FetchGroups:
    """The transfer options shared by ``fetch`` and ``bundle``, read by :func:`fetch_options`.

    Parallelism, trust and credentials, cache and state, mirror and network, retries and
    timeouts, and ``--progress``; returns the groups a command adds its own options to.
    """
    parallelism = g = p.add_argument_group("parallelism")
    g.add_argument(
        "-j",
        "--jobs",
        type=positive_int,
        metavar="N",
        help="parallel transfers (default: sized from the plan, at most 16)",
    )
    add_per_host_argument(g)
    trust = g = p.add_argument_group("trust and credentials")
    add_allow_unhashed_argument(g)
    g.add_argument(
        "--trusted-host",
        action="append",
        default=[],
        metavar="HOST",
        help="allow plain http to HOST[:PORT], as pip's option (repeatable)",
    )
    g.add_argument(
        "--index-url",
        action="append",
        default=[],
        type=credential_url,
        metavar="URL",
        help="an index URL with user:password@, whose credentials serve its origin (repeatable)",
    )
    g.add_argument(
        "--extra-index-url",
        action="append",
        default=[],
        type=credential_url,
        metavar="URL",
        help="the same, as pip spells it (repeatable)",
    )
    g.add_argument(
        "--isolated", action="store_true", help="ignore pip's configuration and PIP_* variables"
    )
    g = p.add_argument_group("cache and state")
    cache = g.add_mutually_exclusive_group()
    cache.add_argument(
        "--cache-dir",
        type=Path,
        metavar="DIR",
        help="the content-addressed cache (default: the user's cache directory)",
    )
    cache.add_argument("--no-cache", action="store_true", help="neither read nor fill the cache")
    add_no_wait_argument(g)
    g = p.add_argument_group("mirror and network")
    add_mirror_argument(g)
    g.add_argument(
        "--offline",
        action="store_true",
        help="open no network connection: a file not in the destination, cache or mirror fails",
    )
    g = p.add_argument_group("retries and timeouts")
    g.add_argument(
        "--retries",
        type=positive_int,
        metavar="N",
        help="tries without progress before an artifact fails (default: 5)",
    )
    g.add_argument(
        "--retry-base",
        type=non_negative_seconds,
        metavar="S",
        help="first backoff delay (default: 0.5; doubles, with jitter)",
    )
    g.add_argument("--connect-timeout", type=positive_seconds, metavar="S", help="default: 15")
    g.add_argument(
        "--stall-timeout",
        type=positive_seconds,
        metavar="S",
        help="a try fails when a window of S seconds brings under 16 KiB (default: 30)",
    )
    g.add_argument(
        "--file-timeout",
        type=positive_seconds,
        metavar="S",
        help="deadline of one try of one file (default: 6 hours)",
    )
    output = g = p.add_argument_group("output")
    add_progress_argument(g, "bars on a terminal, plain lines otherwise (auto)")
    return FetchGroups(parallelism, trust, output)


def fetch_options(args: argparse.Namespace) -> FetchOptions:
    """:class:`FetchOptions` from the options of :func:`add_fetch_arguments`.

    Retries and limits start from :func:`env_policies` (``FETCHPLAN_*``); the destination,
    shard and timings file are left to the command.
    """
    from fetchplan.commands._shared import env_policies
    from fetchplan.executor.run import DEFAULT_PER_HOST, FetchOptions

    retry, limits = env_policies()
    if args.retries is not None:
        retry = replace(retry, attempts=args.retries)
    if args.retry_base is not None:
        retry = replace(retry, backoff_base=args.retry_base)
    for attr, name in (
        ("connect_timeout", "connect_timeout"),
        ("stall_timeout", "stall_window"),
        ("file_timeout", "deadline"),
    ):
        value = getattr(args, attr)
        if value is not None:
            limits = replace(limits, **{name: value})
    return FetchOptions(
        jobs=args.jobs,
        per_host=args.per_host if args.per_host is not None else DEFAULT_PER_HOST,
        cache_dir=args.cache_dir,
        use_cache=not args.no_cache,
        allow_unhashed=args.allow_unhashed,
        trusted_hosts=tuple(args.trusted_host),
        credential_urls=tuple(args.index_url) + tuple(args.extra_index_url),
        use_pip_config=not args.isolated,
        wait_for_lock=not args.no_wait,
        retry=retry,
        limits=limits,
        mirror=args.mirror,
        offline=args.offline,
    )


def _options(args: argparse.Namespace) -> FetchOptions:
    from fetchplan.executor.shard import parse_shard

    return replace(
        fetch_options(args),
        destination=args.dest,
        shard=None if args.shard is None else parse_shard(args.shard),
        timings_path=args.timings,
    )


def run(args: argparse.Namespace) -> int:
    from fetchplan.commands._shared import (
        enforce_plan_policy,
        fetch_summary_lines,
        reporter,
        sigterm_interrupts,
    )
    from fetchplan.executor.run import execute_plan

    options = _options(args)
    if args.policy is not None:
        enforce_plan_policy(args.plan, args.policy)
    quiet = (getattr(args, "quiet", None) or 0) > 0
    shown = reporter(args.progress, quiet, sys.stderr)
    with sigterm_interrupts():
        result = execute_plan(args.plan, options, shown)
    if not quiet:
        for line in fetch_summary_lines(result):
            sys.stdout.write(f"{line}\n")
    if result.interrupted:
        return 130
    return 0 if result.ok else 1
