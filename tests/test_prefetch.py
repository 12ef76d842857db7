"""Prefetching follows the extras a requirement asks for, not only its base dependencies."""

from __future__ import annotations

import threading
from pathlib import Path

from tests.conftest import MakeIndexServer, RunCli
from tests.support.servers import IndexRequestHandler
from tests.support.wheels import Dist

GRAPH = [
    Dist("app", "1.0", requires=["lib[x]>=1", "slow>=1"]),
    Dist("lib", "1.0", extras={"x": ["deep>=1"]}),
    Dist("deep", "1.0"),
    Dist("slow", "1.0"),
]


def test_dependencies_of_a_requested_extra_are_prefetched(
    index_server: MakeIndexServer, tmp_path: Path, run_cli: RunCli
) -> None:
    # The resolver waits for slow's page before it gets to lib[x]; meanwhile the prefetcher,
    # which has lib's metadata, asks for what lib's extra "x" requires.
    server = index_server(GRAPH)
    deep_asked = threading.Event()
    while_held: list[bool] = []

    def hold_slow(handler: IndexRequestHandler) -> bool:
        if handler.url_path.rstrip("/").endswith("/simple/deep"):
            deep_asked.set()
        elif handler.url_path.rstrip("/").endswith("/simple/slow"):
            while_held.append(deep_asked.wait(timeout=5))
        return False

    server.set_handler_hook(hold_slow)
    done = run_cli("plan", "app", "--index-url", server.index_url, "-o", "plan.json")
    assert done.returncode == 0, done.stderr
    # deep's page was asked for while slow's was held: before the resolver reached lib[x].
    assert while_held == [True]
    assert '"deep"' in (tmp_path / "plan.json").read_text()


def test_versions_after_a_rejected_one_have_their_metadata_fetched_ahead(
    index_server: MakeIndexServer, tmp_path: Path, run_cli: RunCli
) -> None:
    # Every app but the oldest needs a lib the user excludes: the resolver goes through the
    # versions one by one. Once past the first, the next ones' metadata is asked for at once,
    # not each after the previous one was rejected: app 3.0's arrives while app 11.0's is held.
    dists = [Dist("app", f"{n}.0", requires=["lib>=2"]) for n in range(2, 13)]
    server = index_server([*dists, Dist("app", "1.0", requires=["lib"]), Dist("lib", "1.0")])
    third_asked = threading.Event()
    while_held: list[bool] = []

    def hold_second(handler: IndexRequestHandler) -> bool:
        if handler.url_path.endswith("app-3.0-py3-none-any.whl.metadata"):
            third_asked.set()
        elif handler.url_path.endswith("app-11.0-py3-none-any.whl.metadata"):
            while_held.append(third_asked.wait(timeout=5))
        return False

    server.set_handler_hook(hold_second)
    done = run_cli("plan", "app", "lib<2", "--index-url", server.index_url, "-o", "plan.json")
    assert done.returncode == 0, done.stderr
    assert while_held == [True]
    plan = (tmp_path / "plan.json").read_text()
    assert "app-1.0-py3-none-any.whl" in plan


def test_a_page_that_fails_behind_a_requirement_already_in_conflict_is_not_needed(
    index_server: MakeIndexServer, tmp_path: Path, run_cli: RunCli
) -> None:
    # app 2.0 clashes with pin's x<2 on its first requirement; resolvelib drops it there and
    # never needs the page of "broken" (its second), which fails: the plan takes app 1.0.
    server = index_server(
        [
            Dist("app", "2.0", requires=["x>=2", "broken"]),
            Dist("app", "1.0", requires=["x"]),
            Dist("pin", "1.0", requires=["x<2"]),
            Dist("x", "1.0"),
            Dist("x", "2.0"),
            Dist("broken", "1.0"),
        ]
    )

    def fail_broken(handler: IndexRequestHandler) -> bool:
        if handler.url_path.rstrip("/").endswith("/simple/broken"):
            handler.respond(500, b"no")
            return True
        return False

    server.set_handler_hook(fail_broken)
    done = run_cli(
        "plan", "app", "pin==1.0", "--index-url", server.index_url, "--retries", "0",
        "-o", "plan.json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    plan = (tmp_path / "plan.json").read_text()
    assert "app-1.0-py3-none-any.whl" in plan and "broken" not in plan
