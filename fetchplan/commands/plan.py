"""``fetchplan plan``: resolve requirements and write a download plan (JSON, or YAML by suffix).

The work happens in :func:`fetchplan.planner.api.make_plan`; this module maps options to
:class:`~fetchplan.planner.api.PlanOptions`, writes the plan (validated, atomically) and, with
``--timings FILE``, the timings document.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from fetchplan.commands._args import non_negative_int, positive_int, positive_seconds
from fetchplan.errors import FetchplanError, InputError

if TYPE_CHECKING:
    from fetchplan.planner.api import PlanOptions, PlanResult
    from fetchplan.planner.sources import SourceKind
    from fetchplan.schemas import SchemaName
    from fetchplan.schemas.plan import Plan

__all__ = [
    "IndexValues",
    "add_arguments",
    "add_index_arguments",
    "add_request_arguments",
    "index_values",
    "register",
    "resolve_with_status",
    "resolved_line",
    "run",
]

DESCRIPTION = """\
Resolve requirements against package indexes and write a download plan: every artifact to
fetch with its URL, index, sha256, size, destination file and whether a file already in the
destination or the cache satisfies it. Only index pages and metadata are downloaded (PEP 658
metadata files, else HTTP range requests into wheels). Index settings not given here come
from PIP_INDEX_URL, PIP_EXTRA_INDEX_URL, PIP_FIND_LINKS and pip's configuration, then from
pip's default index.

One plan can serve several environments: give --target once per environment (e.g.
--target py=3.11,platform=manylinux_2_17_x86_64
--target py=3.12,platform=manylinux_2_28_aarch64).
Each is resolved on its own; every file is listed once, marked with the targets it serves.
sdists come with their build requirements (wheels only), and an sdist whose dependencies are
dynamic has its metadata prepared by its build backend in an isolated environment here.
"""

TARGET_HELP = (
    "a target environment as KEY=VALUE pairs separated by commas: py=X.Y, platform=TAG "
    "(repeatable), impl=cp|pp|..., abi=TAG (repeatable), name=NAME (default: e.g. "
    "cp312-manylinux_2_28_aarch64); what is left out comes from this interpreter, and 'host' "
    "alone is this interpreter. Repeat --target for a plan serving several environments; not "
    "combined with the single-target options below"
)


class _FormatAction(argparse.Action):
    """Keeps --no-binary/--only-binary values in command-line order, as pip applies them."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        ops = list(getattr(namespace, "format_ops", None) or [])
        ops.append((self.const, str(values)))
        namespace.format_ops = ops


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``plan`` sub-command."""
    p = subparsers.add_parser(
        "plan",
        parents=[common],
        help="resolve requirements into a download plan",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(p)
    p.set_defaults(func=run)


def _location(kind: SourceKind) -> Callable[[str], str]:
    """An argparse type: an index URL or find-links location any request could use, checked
    when the options are parsed so that the error names the option (one line, exit 2)."""

    def check(text: str) -> str:
        from fetchplan._urls import redact
        from fetchplan.planner.locations import source_problem

        problem = source_problem(text, kind)
        if problem is not None:
            raise argparse.ArgumentTypeError(f"{redact(text)!r}: {problem}")
        return text

    return check


def add_index_arguments(
    group: argparse._ActionsContainer, *, index_url_help: str = "the main index (PEP 503/691)"
) -> None:
    """The options choosing indexes as pip does, shared by ``plan``, ``run`` and ``import``.

    Adds ``-i/--index-url`` (help ``index_url_help``), ``--extra-index-url``,
    ``-f/--find-links``, ``--no-index``, ``--trusted-host`` and ``--isolated`` to ``group``;
    :class:`~fetchplan.planner.api.PlanOptions` takes their values by the same names.
    """
    index, flat = _location("index"), _location("find-links")
    group.add_argument("-i", "--index-url", type=index, metavar="URL", help=index_url_help)
    group.add_argument(
        "--extra-index-url", dest="extra_index_urls", action="append", default=[], type=index,
        metavar="URL", help="another index, consulted after the main one (repeatable)",
    )  # fmt: skip
    group.add_argument(
        "-f", "--find-links", dest="find_links", action="append", default=[], type=flat,
        metavar="LOCATION", help="a directory or HTML page of files (repeatable)",
    )  # fmt: skip
    group.add_argument("--no-index", action="store_true", help="use only --find-links locations")
    group.add_argument(
        "--trusted-host", dest="trusted_hosts", action="append", default=[], metavar="HOST",
        help="accept plain http:// (and unverified https) for HOST or HOST:PORT (repeatable)",
    )  # fmt: skip
    group.add_argument(
        "--isolated", action="store_true",
        help="ignore PIP_* environment variables and pip's configuration files",
    )  # fmt: skip


def add_request_arguments(
    group: argparse._ActionsContainer,
    *,
    jobs_help: str | None = None,
    jobs_default: int | None = None,
) -> None:
    """The index request options, shared by ``plan``, ``run`` and ``import``.

    ``-j/--jobs`` (at least 1, default ``jobs_default``; help ``jobs_help``) and ``--timeout``
    (positive seconds, default 30). Index and metadata requests each wait a round trip for a
    few kB, so many in flight keep a high-latency link busy.
    """
    if jobs_default is None:
        from fetchplan.planner.api import DEFAULT_JOBS

        jobs_default = DEFAULT_JOBS
    group.add_argument(
        "-j", "--jobs", type=positive_int, default=jobs_default, metavar="N",
        help=jobs_help or f"parallel requests (default: {jobs_default})",
    )  # fmt: skip
    group.add_argument(
        "--timeout", type=positive_seconds, default=30.0, metavar="SECONDS",
        help="per-request timeout (default: 30)",
    )  # fmt: skip


class IndexValues(TypedDict):
    """The :class:`~fetchplan.planner.api.PlanOptions` fields of the index and request options."""

    index_url: str | None
    extra_index_urls: tuple[str, ...]
    find_links: tuple[str, ...]
    no_index: bool
    trusted_hosts: tuple[str, ...]
    isolated: bool
    jobs: int
    timeout: float


def index_values(args: argparse.Namespace) -> IndexValues:
    """The values of :func:`add_index_arguments` and :func:`add_request_arguments`."""
    return IndexValues(
        index_url=args.index_url,
        extra_index_urls=tuple(args.extra_index_urls),
        find_links=tuple(args.find_links),
        no_index=args.no_index,
        trusted_hosts=tuple(args.trusted_hosts),
        isolated=args.isolated,
        jobs=args.jobs,
        timeout=args.timeout,
    )


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The planning options, shared by ``plan`` and ``run``."""
    p.add_argument(
        "requirements", nargs="*", metavar="REQUIREMENT",
        help="e.g. 'requests>=2', 'name @ URL', ./dist/name-1.0.whl, ./libs/foo, git+URL@rev",
    )  # fmt: skip
    p.add_argument(
        "-e", "--editable", dest="editables", action="append", default=[], metavar="DIR",
        help="a project directory to install editable (PEP 660; repeatable)",
    )  # fmt: skip
    p.add_argument(
        "-r", "--requirement", dest="requirement_files", action="append", type=Path,
        default=[], metavar="FILE",
        help="read requirements from FILE (repeatable); a pyproject.toml gives its "
        "[project] dependencies (a pyproject.toml argument too)",
    )  # fmt: skip
    p.add_argument(
        "--extra", dest="extras", action="append", default=[], metavar="NAME",
        help="also plan this extra of the pyproject.toml inputs' optional dependencies "
        "(repeatable)",
    )  # fmt: skip
    p.add_argument(
        "--all-extras", action="store_true",
        help="plan every extra of the pyproject.toml inputs",
    )  # fmt: skip
    p.add_argument(
        "--group", dest="groups", action="append", default=[], metavar="[PATH:]NAME",
        help="plan this PEP 735 dependency group of ./pyproject.toml (or of PATH, a "
        "pyproject.toml), includes expanded (repeatable)",
    )  # fmt: skip
    p.add_argument(
        "--override", dest="override_files", action="append", type=Path, default=[],
        metavar="FILE",
        help="requirements that replace every requirement on their projects, anywhere in the "
        "graph, as uv's --override (repeatable); recorded in the plan",
    )  # fmt: skip
    p.add_argument(
        "--no-deps", action="store_true",
        help="plan the requirements alone, without their dependencies (recorded in the plan)",
    )  # fmt: skip
    p.add_argument(
        "--from", dest="pins_from", type=Path, metavar="PLAN_OR_LOCK",
        help="keep the pins of this plan, pylock.toml or pinned requirements file where they "
        "still satisfy the requirements (default: those of the plan -o overwrites)",
    )  # fmt: skip
    p.add_argument(
        "-U", "--upgrade", action="store_true",
        help="keep no earlier pins: take the newest versions the requirements allow",
    )  # fmt: skip
    p.add_argument(
        "-P", "--upgrade-package", dest="upgrade_packages", action="append", default=[],
        metavar="NAME[SPEC]",
        help="keep no earlier pin of NAME; with a specifier (NAME==2.1, 'NAME<3') NAME is "
        "constrained to it, as uv takes it (repeatable)",
    )  # fmt: skip
    p.add_argument(
        "-c", "--constraint", dest="constraint_files", action="append", type=Path, default=[],
        metavar="FILE", help="constrain versions with FILE (repeatable)",
    )  # fmt: skip
    p.add_argument(
        "-o", "--output", type=Path, default=Path("plan.json"), metavar="PLAN",
        help="plan file to write; YAML when it ends in .yaml/.yml (default: plan.json)",
    )  # fmt: skip
    p.add_argument(
        "--dest", type=Path, metavar="DIR",
        help="destination directory of the artifacts, recorded relative to the plan file's "
        "directory (default: 'wheels' beside the plan file)",
    )  # fmt: skip
    p.add_argument(
        "--timings", type=Path, metavar="FILE",
        help="write where planning time went (requests, metadata by source, resolver) to FILE",
    )  # fmt: skip

    idx = p.add_argument_group("indexes")
    add_index_arguments(idx)
    idx.add_argument(
        "--index-strategy", choices=("first-index", "unsafe-best-match"), default="first-index",
        help="first-index (default): take a project only from the first index that has it, "
        "against dependency confusion; unsafe-best-match: from every index, as pip does",
    )  # fmt: skip

    from fetchplan.planner.options import DEFAULT_MAX_SDIST_BUILDS

    sel = p.add_argument_group("selection")
    sel.add_argument("--pre", action="store_true", help="allow pre-releases and dev releases")
    sel.add_argument(
        "--only-binary", action=_FormatAction, const="only_binary", metavar="NAMES",
        help="use only wheels for these projects (comma-separated, :all:, :none:)",
    )  # fmt: skip
    sel.add_argument(
        "--no-binary", action=_FormatAction, const="no_binary", metavar="NAMES",
        help="use only sdists for these projects (comma-separated, :all:, :none:)",
    )  # fmt: skip
    sel.add_argument(
        "--prefer-binary", action="store_true",
        help="prefer an older version with a wheel to a newer one with only an sdist",
    )  # fmt: skip
    sel.add_argument(
        "--exclude-newer", "--uploaded-prior-to", dest="exclude_newer", metavar="TIME",
        help="leave out files uploaded after TIME: an RFC 3339 time, a date (its midnight "
        "UTC), or a duration before now ('7 days', '24h', 'P7D'); files without an upload "
        "time are left out too; the time is recorded in the plan",
    )  # fmt: skip
    sel.add_argument(
        "--exclude-newer-package", dest="exclude_newer_package", action="append", default=[],
        metavar="NAME=TIME",
        help="this project's own cut-off instead of --exclude-newer's, later or earlier (TIME "
        "as there), or NAME=false for none; repeatable; recorded in the plan",
    )  # fmt: skip
    sel.add_argument(
        "--require-hashes", action="store_true",
        help="require a --hash for every requirement and dependency (pip's hash-checking mode)",
    )  # fmt: skip

    tgt = p.add_argument_group("target environment (default: this interpreter)")
    tgt.add_argument(
        "--target", dest="target_specs", action="append", default=[], metavar="SPEC",
        help=TARGET_HELP,
    )  # fmt: skip
    tgt.add_argument("--python-version", metavar="X.Y", help="e.g. 3.12 or 3.12.4")
    tgt.add_argument(
        "--platform", dest="platforms", action="append", default=[], metavar="TAG",
        help="platform tag, e.g. manylinux_2_28_x86_64, win_amd64 (repeatable)",
    )  # fmt: skip
    tgt.add_argument("--implementation", metavar="IMPL", help="cp, pp, ... (default: this one)")
    tgt.add_argument(
        "--abi", dest="abis", action="append", default=[], metavar="ABI",
        help="ABI tag, e.g. cp312 (repeatable)",
    )  # fmt: skip

    sel.add_argument(
        "--no-build-deps", dest="build_deps", action="store_false",
        help="plan sdists without their build requirements (by default these are resolved, "
        "from wheels, into the plan so that 'install' can build the sdists offline; an sdist "
        "with dynamic dependencies then cannot be planned)",
    )  # fmt: skip
    sel.add_argument(
        "--max-sdist-builds", type=non_negative_int, default=DEFAULT_MAX_SDIST_BUILDS,
        metavar="N",
        help="prepare the metadata of at most N sdists of one project by a build (default: "
        f"{DEFAULT_MAX_SDIST_BUILDS}); while backtracking, a further version needing one is "
        "unusable and skipped (said at -v)",
    )  # fmt: skip

    net = p.add_argument_group("cache and network")
    net.add_argument(
        "--cache-dir", type=Path, metavar="DIR",
        help="cache of artifacts, index pages and metadata (default: the user cache; "
        "see 'fetchplan cache dir')",
    )  # fmt: skip
    net.add_argument("--no-cache", action="store_true", help="neither read nor fill the cache")
    net.add_argument(
        "--refresh", action="store_true",
        help="ignore the cached index pages and metadata: fetch them again (and keep them anew)",
    )  # fmt: skip
    net.add_argument(
        "--refresh-package", dest="refresh_packages", action="append", default=[],
        metavar="NAME", help="as --refresh, for this project only (repeatable)",
    )  # fmt: skip
    net.add_argument(
        "--offline", action="store_true",
        help="open no network connection: only file:// indexes, find-links directories and "
        "the cache serve; anything else is an error naming it",
    )  # fmt: skip
    net.add_argument(
        "--compute-hashes", action="store_true",
        help="download artifacts whose index gives no sha256 (into the cache) to hash them",
    )  # fmt: skip
    net.add_argument(
        "--attestations", action="store_true",
        help="fetch the PEP 740 provenance the index names for each file and verify every "
        "attestation in it against the file's sha256, offline against Sigstore's trust root; "
        "record the verified publishers; a failure is an error (needs fetchplan[attestations])",
    )  # fmt: skip
    add_request_arguments(net)
    net.add_argument(
        "--retries", type=non_negative_int, default=3, metavar="N",
        help="retries for connection errors, 429 and 5xx (default: 3)",
    )  # fmt: skip
    p.set_defaults(format_ops=[])


def _exclude_newer(text: str | None) -> datetime.datetime | None:
    """``--exclude-newer``'s value as the absolute time that is recorded (whole seconds)."""
    if text is None:
        return None
    from fetchplan._age import parse_cutoff

    now = datetime.datetime.now(datetime.UTC)
    try:
        return parse_cutoff(text, now).astimezone(datetime.UTC).replace(microsecond=0)
    except ValueError as exc:
        raise InputError(f"--exclude-newer: {exc}") from None


def _exclude_newer_package(values: list[str]) -> dict[str, datetime.datetime | None]:
    """``--exclude-newer-package NAME=TIME`` values by canonical name (None: ``NAME=false``)."""
    from packaging.utils import InvalidName, canonicalize_name

    cut_offs: dict[str, datetime.datetime | None] = {}
    for value in values:
        name, sep, text = value.partition("=")
        try:
            project = canonicalize_name(name.strip(), validate=True)
        except InvalidName:
            project = None
        if not sep or project is None or not text.strip():
            raise InputError(f"--exclude-newer-package: {value!r} is not NAME=TIME or NAME=false")
        if text.strip().lower() == "false":
            cut_offs[project] = None
            continue
        try:
            cut_offs[project] = _exclude_newer(text)
        except InputError as exc:
            detail = str(exc).removeprefix("--exclude-newer: ")
            raise InputError(f"--exclude-newer-package: {name.strip()}: {detail}") from None
    return cut_offs


def options_from_args(args: argparse.Namespace) -> Any:
    """The :class:`~fetchplan.planner.api.PlanOptions` these parsed arguments describe."""
    from fetchplan.planner.api import PlanOptions
    from fetchplan.planner.options import DEFAULT_MAX_SDIST_BUILDS
    from fetchplan.planner.sources import IndexStrategy

    attestations = getattr(args, "attestations", False)
    if attestations:
        from fetchplan.planner.attestations import require_library

        require_library()
    return PlanOptions(
        requirements=(*args.requirements, *(f"-e {d}" for d in args.editables)),
        requirement_files=tuple(args.requirement_files),
        constraint_files=tuple(args.constraint_files),
        extras=tuple(getattr(args, "extras", ())),
        all_extras=getattr(args, "all_extras", False),
        groups=tuple(getattr(args, "groups", ())),
        override_files=tuple(getattr(args, "override_files", ())),
        no_deps=getattr(args, "no_deps", False),
        pins_from=getattr(args, "pins_from", None),
        upgrade=getattr(args, "upgrade", False),
        upgrade_packages=tuple(getattr(args, "upgrade_packages", ())),
        **index_values(args),
        index_strategy=IndexStrategy(args.index_strategy),
        pre=args.pre,
        exclude_newer=_exclude_newer(getattr(args, "exclude_newer", None)),
        exclude_newer_package=_exclude_newer_package(getattr(args, "exclude_newer_package", [])),
        format_ops=tuple(args.format_ops),
        prefer_binary=args.prefer_binary,
        require_hashes=args.require_hashes,
        python_version=args.python_version,
        platforms=tuple(args.platforms),
        implementation=args.implementation,
        abis=tuple(args.abis),
        targets=tuple(getattr(args, "target_specs", ())),
        build_deps=getattr(args, "build_deps", True),
        max_sdist_builds=getattr(args, "max_sdist_builds", DEFAULT_MAX_SDIST_BUILDS),
        output=args.output,
        dest=args.dest,
        cache_dir=args.cache_dir,
        no_cache=args.no_cache,
        refresh=args.refresh,
        refresh_packages=tuple(args.refresh_packages),
        compute_hashes=args.compute_hashes,
        attestations=attestations,
        retries=args.retries,
        offline=args.offline,
    )


def _prepare_validators(names: tuple[SchemaName, ...]) -> None:
    from fetchplan.schemas import prepare_validator

    for name in names:
        prepare_validator(name)


def resolve_with_status(options: PlanOptions, *, quiet: bool) -> tuple[PlanResult, float]:
    """:func:`~fetchplan.planner.api.make_plan` with a live line on a terminal (projects seen,
    metadata fetched); returns the result and the seconds it took."""
    from fetchplan.commands._status import LiveLine
    from fetchplan.planner.api import make_plan
    from fetchplan.planner.timings import Timings

    timings = Timings()

    def line() -> str:
        pages, metadata = timings.progress()
        return f"resolving: {pages} projects seen, {metadata} metadata fetched"

    started = time.monotonic()
    try:
        with LiveLine(sys.stderr, line, enabled=not quiet):
            result = make_plan(options, timings=timings)
    except FetchplanError as exc:
        from fetchplan.planner.attestations import AttestationFailure

        if isinstance(exc, AttestationFailure):
            sys.stderr.writelines(f"fetchplan: {problem}\n" for problem in exc.problems)
        raise
    return result, time.monotonic() - started


def resolved_line(plan: Plan, seconds: float) -> str:
    """``Resolved N packages in X``, as uv says it: N counts the distinct project versions
    the plan installs (build dependencies not included), over all its targets."""
    from fetchplan.commands._status import elapsed, packages

    versions = {(a.name, a.version) for a in plan.artifacts if not a.build_dependency}
    return f"Resolved {packages(len(versions))} in {elapsed(seconds)}"


def run(args: argparse.Namespace) -> int:
    """Plan, write the plan (and timings), print a one-line summary."""
    from fetchplan._text import human_size
    from fetchplan.schemas import dump_document
    from fetchplan.schemas.plan import write_plan

    quiet = (getattr(args, "quiet", 0) or 0) > 0
    options = options_from_args(args)
    # The validators the writes need load while the planner waits on the network.
    names: tuple[SchemaName, ...] = ("plan", "plan-timings") if args.timings else ("plan",)
    warm = threading.Thread(target=_prepare_validators, args=(names,), name="fetchplan-schemas")
    warm.start()
    try:
        result, seconds = resolve_with_status(options, quiet=quiet)
    finally:
        warm.join()
    try:
        write_plan(options.output, result.plan, output=True)
        if args.timings is not None:
            dump_document(args.timings, result.timings.to_dict(), "plan-timings", output=True)
    except OSError as exc:
        raise InputError(f"{exc.filename or options.output}: cannot write: {exc.strerror}") from exc
    artifacts = result.plan.artifacts
    pending = [a for a in artifacts if a.satisfied_by is None]
    to_fetch = sum(a.size or 0 for a in pending)
    unknown = sum(1 for a in pending if a.size is None)
    if not quiet:
        note = f" (+{unknown} of unknown size)" if unknown else ""
        targets = result.plan.targets
        served = f" for {len(targets)} targets" if len(targets) > 1 else ""
        # With -o - the plan itself is on standard output: the summary goes to stderr.
        summary = sys.stderr if _is_stdout(options.output) else sys.stdout
        summary.write(f"{resolved_line(result.plan, seconds)}\n")
        summary.write(
            f"wrote {_shown(options.output)}{served}: {len(artifacts)} artifacts, "
            f"{len(pending)} to fetch, {human_size(to_fetch)}{note}\n"
        )
    return 0


def _is_stdout(output: Path) -> bool:
    if str(output) == "-":
        return True
    try:
        return os.path.samestat(output.stat(), os.fstat(sys.stdout.fileno()))
    except (OSError, ValueError):
        return False


def _shown(output: Path) -> str:
    return "the plan to standard output" if str(output) == "-" else str(output)
