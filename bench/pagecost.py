"""What one project page costs the planner: from its body to the candidate a resolution takes.

    python bench/pagecost.py [--python 3.12] [--platform manylinux_2_28_x86_64] PAGE.json ...

For each saved PEP 691 page (a project's JSON page as an index served it; save a few with any
HTTP client, ``Accept: application/vnd.pypi.simple.v1+json``; the project is the file's stem),
times, in this process's thread CPU (best of 7), reading the page and deciding its newest
version for the target, as the planner does for a requirement without a specifier; prints
the file chosen and the total. Nothing is fetched.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from fetchplan.planner.candidates import Candidate, ProjectCandidates
from fetchplan.planner.index import ProjectPage, compact_page
from fetchplan.planner.provider import iter_matches
from fetchplan.planner.sources import JSON_TYPE, source_for
from fetchplan.planner.target import TargetEnv, make_target


def _best(work: Callable[[], Candidate | None], runs: int = 7) -> tuple[float, Candidate | None]:
    times = []
    result = None
    for _ in range(runs):
        started = time.thread_time()
        result = work()
        times.append(time.thread_time() - started)
    return min(times), result


def _newest(body: bytes, name: str, target: TargetEnv) -> Candidate | None:
    source = source_for("https://index.invalid/simple/", "index")
    project = canonicalize_name(name)
    url = source.page_url(project)
    page = ProjectPage(source, url, compact_page(body, JSON_TYPE, url, project))
    found = ProjectCandidates(project, [page], target)
    return next(iter_matches(found, SpecifierSet(), pre=False), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", default="3.12")
    parser.add_argument("--platform", default="manylinux_2_28_x86_64")
    parser.add_argument("pages", nargs="+", type=Path)
    args = parser.parse_args()
    target = make_target(python_version=args.python, platforms=[args.platform])
    total = 0.0
    for path in args.pages:
        body = path.read_bytes()
        seconds, chosen = _best(lambda: _newest(body, path.stem, target))  # noqa: B023
        total += seconds
        what = chosen.link.filename if chosen is not None and chosen.link else "no candidate"
        print(f"{path.stem:24} {len(body) / 1e6:5.1f} MB {seconds * 1e3:8.1f} ms  {what}")
    print(f"total {total * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
