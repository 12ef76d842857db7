"""What one try at an artifact's bytes comes to: a value, never an exception.

A try (:func:`fetchplan.executor.transfer.attempt`, then
:func:`fetchplan.executor.verify.check_body`) ends in one of four outcomes: :class:`Received`
(a complete body in the partial file), :class:`Retry` (transient: try again after a wait,
resuming), :class:`Restart` (the partial is wrong: drop it and start from zero) or
:class:`Fail` (trying again cannot help). What to do next is the retry policy's decision
(:meth:`fetchplan.executor.retry.RetryPolicy.increment`), a pure function of the outcome and
the tries before it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Body", "Fail", "Outcome", "Received", "Restart", "Retry"]


@dataclass(frozen=True, slots=True)
class Body:
    """A complete body in the partial file: its digest and size as received."""

    sha256: str
    size: int
    encoding: str
    resumed: bool


@dataclass(frozen=True, slots=True)
class Received:
    """The try brought a complete body (checked: the planned file)."""

    body: Body


@dataclass(frozen=True, slots=True)
class Retry:
    """Worth another try. ``progress``: the try received at least a stall window's worth of
    bytes; ``reached``: how long the partial then was. The policy counts the try as progress
    (not using up one of its attempts) only when it took the partial beyond what any try
    before it had reached."""

    reason: str
    retry_after: float | None = None
    """What the server's ``Retry-After`` asked for, in seconds."""
    progress: bool = False
    reached: int = 0


@dataclass(frozen=True, slots=True)
class Restart:
    """The partial is wrong; drop it. ``final`` when this uses up the one fresh start."""

    reason: str
    final: bool


@dataclass(frozen=True, slots=True)
class Fail:
    """Retrying cannot help (a 404, a TLS error, a refused redirect)."""

    reason: str


Outcome = Received | Retry | Restart | Fail
"""What one try came to."""
