"""Text helpers every command's output shares, so one size reads the same everywhere."""

from __future__ import annotations

__all__ = ["human_size"]

_UNITS = ("B", "kB", "MB", "GB", "TB")


def human_size(size: int | None) -> str:
    """``2.9 kB`` style: decimal (SI) units as pip and the fetch progress print; ``?`` when
    ``size`` is None. Below 1000 the exact count is given (``999 B``)."""
    if size is None:
        return "?"
    if size < 1000:
        return f"{size} B"
    value = float(size)
    for unit in _UNITS[1:]:
        value /= 1000
        if value < 999.95 or unit == _UNITS[-1]:
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")
