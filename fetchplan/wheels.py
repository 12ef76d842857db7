"""The wheel one stage hands another: a file and what it must be.

The installer verifies a wheel against these expectations; the planner (preparing an sdist's
metadata) and the builds hand their wheels to the installer in this form. It sits below
them all so that none of them imports another's package for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from packaging.utils import NormalizedName

__all__ = ["WheelToInstall"]


@dataclass(frozen=True, kw_only=True, slots=True)
class WheelToInstall:
    """A wheel file and what it must be: the expectations it is verified against."""

    path: Path
    filename: str
    name: NormalizedName
    version: str
    sha256: str
    size: int
    requested: bool = False
    direct_url: bytes | None = None
    """PEP 610 ``direct_url.json`` to write, for a direct artifact (as pip writes it)."""
