"""Log lines on the console go where sys.stderr goes at that moment, so live bars stay whole."""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Iterator

import pytest
from rich.console import Console
from rich.progress import Progress

from fetchplan._log import configure_logging


@pytest.fixture
def log() -> Iterator[logging.Logger]:
    configure_logging(1, None)
    yield logging.getLogger("fetchplan.test")
    configure_logging(0, None)


def test_a_record_follows_a_stderr_replaced_after_set_up(
    log: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    later = io.StringIO()
    monkeypatch.setattr(sys, "stderr", later)
    log.info("after the swap")
    assert later.getvalue() == "INFO: after the swap\n"


def test_under_live_bars_a_record_is_printed_above_them_not_over_them(
    log: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    terminal = io.StringIO()
    raw = io.StringIO()
    monkeypatch.setattr(sys, "stderr", raw)
    console = Console(file=terminal, force_terminal=True, width=80)
    with Progress(console=console, transient=True, refresh_per_second=50) as progress:
        progress.add_task("total", total=10)
        log.info("a line while the bars are live")
    # Through rich's proxy: printed by the console (above the live area), nothing written
    # straight to the terminal stream behind the bars' back.
    assert raw.getvalue() == ""
    assert "INFO: a line while the bars are live" in terminal.getvalue()
