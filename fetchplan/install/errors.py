"""The errors the installer raises; each ``str()`` is one line naming the file at fault."""

from __future__ import annotations

from fetchplan.errors import FetchplanError

__all__ = [
    "EnvironmentBusy",
    "InstallError",
    "InterpreterError",
    "ManifestMismatch",
    "UnsafeWheel",
]


class InstallError(FetchplanError):
    """Installing cannot go ahead. Unless the message says otherwise, nothing was written."""


class ManifestMismatch(InstallError):
    """The manifest does not vouch for what the plan needs (other plan, missing or changed file)."""

    exit_code = 2


class InterpreterError(InstallError):
    """The target interpreter cannot be queried, or its virtual environment cannot be made."""


class UnsafeWheel(InstallError):
    """A wheel that must not be installed: it escapes the target, lies in RECORD or in METADATA.

    ``wheel`` names the wheel file, ``member`` the archive member (or ``None`` for the whole
    wheel), ``reason`` what is wrong.
    """

    def __init__(self, wheel: str, member: str | None, reason: str) -> None:
        self.wheel = wheel
        self.member = member
        self.reason = reason
        where = wheel if member is None else f"{wheel}: {member!r}"
        super().__init__(f"{where}: {reason}")


class EnvironmentBusy(InstallError):
    """Another fetchplan holds the environment's lock and we were told not to wait."""

    exit_code = 75  # EX_TEMPFAIL: try again later
