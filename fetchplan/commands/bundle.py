"""``fetchplan bundle PLAN -o OUT``: fetch a plan into a self-describing bundle to carry offline."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path

from fetchplan.errors import InputError

__all__ = ["register", "run"]

_DESCRIPTION = """\
Fetch and verify every artifact of PLAN (like `fetchplan fetch`) into OUT, and make OUT a
bundle: plan.json, manifest.json, the files, a static PEP 503 index over them (simple/), a
README.txt and bundle.json. OUT is a directory, or a .tar/.tar.gz/.tgz file. Files already in
the plan's destination or the cache are taken from there (re-verified), --mirror names another
place to look first, and --offline fetches nothing from the network at all. Carry the bundle
across, then `fetchplan verify OUT` and `fetchplan install OUT --venv DIR`; pip and uv install
from it too (see OUT/README.txt). Exit status: 0 bundle written, 1 some artifacts failed (run
the same command again to resume), 2 bad plan or options, 130 interrupted.
"""


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
) -> None:
    p = subparsers.add_parser(
        "bundle",
        parents=[common],
        help="fetch a plan into a bundle to install from offline",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("plan", type=Path, metavar="PLAN", help="the plan file (JSON or YAML)")
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        metavar="OUT",
        help="the bundle: a directory, or a file ending in .tar, .tar.gz or .tgz",
    )
    g = p.add_argument_group("sources")
    g.add_argument(
        "--mirror",
        metavar="DIR_OR_URL",
        help="take each file from this directory or index first (verified by the plan's hashes)",
    )
    g.add_argument(
        "--offline",
        action="store_true",
        help="open no network connection: every file must be local (destination, cache, mirror)",
    )
    cache = g.add_mutually_exclusive_group()
    cache.add_argument("--cache-dir", type=Path, metavar="DIR", help="the artifact cache")
    cache.add_argument("--no-cache", action="store_true", help="neither read nor fill the cache")
    g = p.add_argument_group("fetching")
    g.add_argument("-j", "--jobs", type=_positive_int, metavar="N", help="parallel transfers")
    g.add_argument("--retries", type=_positive_int, metavar="N", help="tries per file (default 5)")
    g.add_argument(
        "--allow-unhashed", action="store_true", help="accept artifacts without a sha256"
    )
    g.add_argument(
        "--trusted-host",
        action="append",
        default=[],
        metavar="HOST",
        help="allow plain http to HOST[:PORT] (repeatable)",
    )
    g.add_argument(
        "--index-url",
        action="append",
        default=[],
        metavar="URL",
        help="an index URL with user:password@, whose credentials serve its origin (repeatable)",
    )
    g.add_argument(
        "--isolated", action="store_true", help="ignore pip's configuration and PIP_* variables"
    )
    g.add_argument(
        "--no-wait", action="store_true", help="fail at once if another fetchplan holds OUT"
    )
    g.add_argument(
        "--progress",
        choices=("auto", "bar", "plain", "none"),
        default="auto",
        help="bars on a terminal, plain lines otherwise (auto)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fetchplan.bundle import make_bundle
    from fetchplan.commands.fetch import _reporter, _sigterm_interrupts, _summary_lines
    from fetchplan.executor import FetchOptions, RetryPolicy, TransferLimits

    try:
        retry = RetryPolicy().with_env(os.environ)
        limits = TransferLimits().with_env(os.environ)
    except ValueError as exc:
        raise InputError(f"FETCHPLAN_* environment variable: {exc}") from exc
    if args.retries is not None:
        retry = replace(retry, attempts=args.retries)
    options = FetchOptions(
        jobs=args.jobs,
        cache_dir=args.cache_dir,
        use_cache=not args.no_cache,
        allow_unhashed=args.allow_unhashed,
        trusted_hosts=tuple(args.trusted_host),
        credential_urls=tuple(args.index_url),
        use_pip_config=not args.isolated,
        wait_for_lock=not args.no_wait,
        retry=retry,
        limits=limits,
        mirror=args.mirror,
        offline=args.offline,
    )
    quiet = (getattr(args, "quiet", None) or 0) > 0
    reporter = _reporter(args.progress, quiet, sys.stderr)
    with _sigterm_interrupts():
        result = make_bundle(args.plan, args.output, options, reporter)
    fetched = result.fetch
    for failure in fetched.failures:
        sys.stderr.write(f"fetchplan: failed: {failure.destination}: {failure.reason}\n")
    if not quiet:
        for line in _summary_lines(fetched)[:2]:
            sys.stdout.write(f"{line}\n")
        if result.path is not None:
            sys.stdout.write(f"bundle: {result.path} ({len(result.files)} files)\n")
    if fetched.interrupted:
        return 130
    if result.path is None:
        sys.stderr.write("fetchplan: bundle not written: not every artifact was verified\n")
        return 1
    return 0
