"""The errors of bundling, verifying and opening bundles; ``str()`` names the file at fault."""

from __future__ import annotations

from collections.abc import Sequence

from fetchplan.errors import FetchplanError

__all__ = ["BundleError", "BundleInvalid"]


class BundleError(FetchplanError):
    """A bundle cannot be written or opened (unsafe archive, unusable output directory)."""


class BundleInvalid(BundleError):
    """A bundle failed verification; ``problems`` holds one line per problem, each naming
    its file. ``str()`` is one line for one problem, else a headline followed by those lines."""

    def __init__(self, where: str, problems: Sequence[str]) -> None:
        self.where = where
        self.problems = tuple(problems)
        count = len(self.problems)
        if count == 1:
            super().__init__(f"{where}: failed verification: {self.problems[0]}")
            return
        lines = [f"{where}: failed verification ({count} problems)"]
        lines.extend(self.problems)
        super().__init__("\n".join(lines))
