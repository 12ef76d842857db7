"""One short line for why a request failed, shared by the planner and the executor.

``requests`` and urllib3 wrap the cause of a failure several layers deep, and their outer
messages lead with what is least useful: a pool's host and port, "Max retries exceeded with
url: ...", the repr of a connection object. Cut to a line's length, such a message ends before
its cause. :func:`failure_reason` walks to the innermost cause first, drops the object reprs,
redacts credentials and only then shortens what is left.
"""

from __future__ import annotations

import re

from fetchplan._urls import redact

__all__ = ["failure_reason"]

# "<urllib3.connection.HTTPConnection object at 0x7f...>: Failed to establish ..."
_OBJECT_REPR = re.compile(r"<[\w.]+ object at 0x[0-9a-fA-F]+>:?\s*")


def _cause(exc: BaseException) -> BaseException | None:
    reason = getattr(exc, "reason", None)  # urllib3's MaxRetryError and its kin
    if isinstance(reason, BaseException):
        return reason
    return next((a for a in getattr(exc, "args", ()) if isinstance(a, BaseException)), None)


def failure_reason(exc: BaseException, limit: int = 200) -> str:
    """The innermost cause of ``exc`` as one credential-free line of at most ``limit``
    characters (the exception's type name when it says nothing)."""
    seen: set[int] = set()
    current = exc
    while id(current) not in seen:
        seen.add(id(current))
        nested = _cause(current)
        if nested is None:
            break
        current = nested
    try:
        text = _OBJECT_REPR.sub("", str(current))
    except (RecursionError, ValueError):  # an exception whose arguments contain itself
        text = ""
    text = redact(" ".join(text.split())) or type(current).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
