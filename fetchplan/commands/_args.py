"""Argument types and options that several sub-commands declare alike."""

from __future__ import annotations

import argparse
import math
from typing import Any

__all__ = [
    "add_allow_unhashed_argument",
    "add_link_mode_argument",
    "add_mirror_argument",
    "add_no_wait_argument",
    "add_per_host_argument",
    "add_progress_argument",
    "credential_url",
    "non_negative_int",
    "non_negative_seconds",
    "positive_int",
    "positive_seconds",
]


def _whole(text: str, least: int) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"must be at least {least}, not {value}")
    return value


def _seconds(text: str, *, zero: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, not {text!r}") from None
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero):
        bound = "0 or more" if zero else "more than 0"
        raise argparse.ArgumentTypeError(f"must be a finite number {bound}, not {text!r}")
    return value


def credential_url(text: str) -> str:
    """An argparse type: a URL whose host and port parse (every URL library raises for
    ``http://[abc/`` or ``https://h:port/``), so that the error names the option."""
    from fetchplan._urls import parses, redact

    if not parses(text):
        raise argparse.ArgumentTypeError(
            f"{redact(text)!r}: not a usable URL (its host or port does not parse)"
        )
    return text


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    return _whole(text, 1)


def non_negative_int(text: str) -> int:
    """An argparse type: a whole number of at least 0."""
    return _whole(text, 0)


def positive_seconds(text: str) -> float:
    """An argparse type: a finite number of seconds (or other unit) above 0."""
    return _seconds(text, zero=False)


def non_negative_seconds(text: str) -> float:
    """An argparse type: a finite number of seconds (or other unit), 0 or more."""
    return _seconds(text, zero=True)


def add_progress_argument(group: Any, help_text: str) -> None:
    """``--progress auto|bar|plain|none``, as ``fetch``, ``bundle`` and ``run`` take it."""
    group.add_argument(
        "--progress", choices=("auto", "bar", "plain", "none"), default="auto", help=help_text
    )


def add_per_host_argument(group: Any) -> None:
    """``--per-host N``, as ``fetch``, ``bundle`` and ``run`` take it."""
    group.add_argument(
        "--per-host",
        type=positive_int,
        metavar="N",
        help="parallel transfers per host (default: 8)",
    )


def add_allow_unhashed_argument(group: Any) -> None:
    """``--allow-unhashed``, as ``fetch``, ``bundle`` and ``run`` take it."""
    group.add_argument(
        "--allow-unhashed",
        action="store_true",
        help="accept artifacts without a sha256 (md5 and sha1 never count)",
    )


def add_no_wait_argument(group: Any) -> None:
    """``--no-wait``, as ``fetch``, ``bundle`` and ``run`` take it."""
    group.add_argument(
        "--no-wait",
        action="store_true",
        help="fail at once (exit status 75) if another fetchplan holds the destination (or, "
        "for run, the environment)",
    )


def add_mirror_argument(group: Any) -> None:
    """``--mirror DIR_OR_URL``, as ``fetch``, ``bundle`` and ``run`` take it."""
    group.add_argument(
        "--mirror",
        metavar="DIR_OR_URL",
        help=(
            "take each file from this directory or index first, found by file name and "
            "verified by the plan's hashes; what it lacks comes from the plan's URL"
        ),
    )


def add_link_mode_argument(group: Any) -> None:
    """``--link-mode clone|hardlink|copy|symlink``, as ``install`` and ``run`` take it (uv's)."""
    group.add_argument(
        "--link-mode",
        choices=("clone", "hardlink", "copy", "symlink"),
        default="auto",
        help=(
            "how files go from the wheel store into the environment (default: clone where "
            "the file system copies on write, else hardlink, else copy; a hard-linked file "
            "is the store's: editing it edits the store)"
        ),
    )
