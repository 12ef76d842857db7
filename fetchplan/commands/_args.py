"""Argument types and options that several sub-commands declare alike."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_progress_argument", "positive_int"]


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def add_progress_argument(group: Any, help_text: str) -> None:
    """``--progress auto|bar|plain|none``, as ``fetch``, ``bundle`` and ``run`` take it."""
    group.add_argument(
        "--progress", choices=("auto", "bar", "plain", "none"), default="auto", help=help_text
    )
