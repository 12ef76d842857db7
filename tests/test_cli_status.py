"""The pure parts of the commands' output: uv's durations and change lines, and the install
preview's decisions (the CLI tests in test_cli_output.py run them end to end)."""

from __future__ import annotations

import io
import logging
import threading
import time
from pathlib import Path

import pytest
from packaging.utils import NormalizedName, canonicalize_name

from fetchplan.commands._status import LiveLine, change_lines, elapsed, packages
from fetchplan.install.environment import InstalledDist
from fetchplan.install.preview import preview_changes


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0.00062, "0.62ms"),
        (0.0015, "1ms"),
        (0.340, "340ms"),
        (2.057, "2.05s"),
        (59.999, "59.99s"),
        (65.2, "1m 05s"),
    ],
)
def test_elapsed_reads_as_uv_writes_it(seconds: float, shown: str) -> None:
    assert elapsed(seconds) == shown


def test_change_lines_sort_by_normalised_name_removal_first() -> None:
    lines = change_lines(
        [("+", "Zope.Interface", "6.0"), ("+", "attrs", "24.1"), ("-", "attrs", "23.2")]
    )
    assert lines == [" - attrs==23.2", " + attrs==24.1", " + zope-interface==6.0"]
    assert (packages(1), packages(2)) == ("1 package", "2 packages")


def _present(*dists: tuple[str, str]) -> dict[NormalizedName, list[InstalledDist]]:
    found: dict[NormalizedName, list[InstalledDist]] = {}
    for name, version in dists:
        key = canonicalize_name(name)
        found.setdefault(key, []).append(InstalledDist(key, version, Path(f"{name}.dist-info")))
    return found


def test_preview_decides_as_the_installer_does() -> None:
    present = _present(
        ("same", "1.0"), ("older", "1.0"), ("twice", "2.0"), ("twice", "2.0.0"), ("pip", "24.0"),
        ("stray", "0.1"),
    )  # fmt: skip
    wanted = [("Same", "1.0.0"), ("older", "2.0"), ("twice", "2.0"), ("new", "1.0")]
    outcomes = preview_changes(wanted, present, exact=True)
    assert [(o.name, o.action, o.previous) for o in outcomes] == [
        ("same", "unchanged", ()),
        ("older", "replaced", ("1.0",)),
        # Two copies of one version: reinstalled, so one remains, as StagedInstall does.
        ("twice", "reinstalled", ("2.0", "2.0.0")),
        ("new", "installed", ()),
        ("stray", "removed", ("0.1",)),
    ]
    again = preview_changes(wanted, present, reinstall=True)
    assert [o.action for o in again] == ["reinstalled", "replaced", "reinstalled", "installed"]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_live_line_draws_changes_only_and_erases_itself() -> None:
    terminal = _Terminal()
    state = {"n": 0}
    drawn = threading.Event()

    def render() -> str:
        drawn.set()
        return f"working {state['n']}"

    with LiveLine(terminal, render, interval=0.01) as line:
        assert line.active
        drawn.wait(1)
        state["n"] = 1
    text = terminal.getvalue()
    assert text.startswith("\r\x1b[2Kworking 0")
    assert text.count("working 0") == 1
    assert text.endswith("\r\x1b[2Kworking 1\r\x1b[2K")

    piped = io.StringIO()
    with LiveLine(piped, render) as line:
        assert not line.active
    assert piped.getvalue() == ""


def test_a_log_message_erases_the_live_line_first() -> None:
    terminal = _Terminal()
    logger = logging.getLogger("fetchplan")
    handler = logging.StreamHandler(terminal)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    logger.addHandler(handler)
    try:
        with LiveLine(terminal, lambda: "working", interval=0.01):
            logging.getLogger("fetchplan.test").warning("something to know")
            time.sleep(0.1)
    finally:
        logger.removeHandler(handler)
    assert terminal.getvalue().startswith(
        "\r\x1b[2Kworking\r\x1b[2KWARNING: something to know\n\r\x1b[2Kworking"
    )
    assert not handler.filters
