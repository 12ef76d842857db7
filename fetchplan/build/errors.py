"""The error of the build stage."""

from __future__ import annotations

from fetchplan.errors import FetchplanError

__all__ = ["BuildError"]


class BuildError(FetchplanError):
    """An sdist could not be read, unpacked, or built; the message names the sdist."""
