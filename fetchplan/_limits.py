"""Bounds the planner and the executor share, so a hostile server meets the same limits in both.

Kept apart from both packages: the executor never imports the planner.
"""

from __future__ import annotations

__all__ = ["MAX_PAGE_BYTES", "MAX_UNSIZED_BYTES", "RETRY_AFTER_CAP"]

RETRY_AFTER_CAP = 120.0
"""Longest wait a server's ``Retry-After`` may ask for, in seconds; a longer one is cut to it."""

MAX_PAGE_BYTES = 128 * 1024 * 1024
"""Most bytes an index page may have once decoded (gzip or deflate): the largest real project
pages are a few megabytes; a 4 MB gzip body can decode to gigabytes."""

MAX_UNSIZED_BYTES = 8 * 1000**3
"""Most bytes a file of unknown size may bring (decoded, if it came encoded)."""
