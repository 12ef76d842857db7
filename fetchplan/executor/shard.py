"""Splitting a plan between processes or machines: ``--shard I/N``, deterministic and balanced.

Every process computes the same assignment from the plan alone: artifacts largest first
(ties by destination name), each to the shard with the fewest bytes so far (then the fewest
files, then the lowest number). The shards are disjoint and together cover the plan.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from fetchplan.errors import InputError
from fetchplan.schemas.plan import Artifact

__all__ = ["assign_shards", "parse_shard", "shard_members"]

_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` -> ``(I, N)`` with ``1 <= I <= N``; :class:`InputError` otherwise."""
    match = _SHARD.match(text)
    if match is None:
        raise InputError(f"--shard {text!r}: expected I/N, for example 1/4")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1 or not 1 <= index <= count:
        raise InputError(f"--shard {text!r}: I must be between 1 and N")
    return index, count


def assign_shards(artifacts: Sequence[Artifact], count: int) -> list[int]:
    """The shard (1-based) of each artifact, in plan order."""
    order = sorted(
        range(len(artifacts)),
        key=lambda i: (-(artifacts[i].size or 0), artifacts[i].destination),
    )
    loads = [0] * count
    members = [0] * count
    assignment = [0] * len(artifacts)
    for i in order:
        target = min(range(count), key=lambda s: (loads[s], members[s], s))
        assignment[i] = target + 1
        loads[target] += artifacts[i].size or 0
        members[target] += 1
    return assignment


def shard_members(artifacts: Sequence[Artifact], index: int, count: int) -> list[int]:
    """Plan positions of the artifacts that belong to shard ``index`` of ``count``."""
    return [i for i, s in enumerate(assign_shards(artifacts, count)) if s == index]
