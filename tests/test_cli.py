"""The command line's global behaviour."""

from __future__ import annotations

import gc
import subprocess
import sys

import pytest

from fetchplan import __version__, cli


def test_version_and_help() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "fetchplan", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == f"fetchplan {__version__}"
    helped = subprocess.run(
        [sys.executable, "-m", "fetchplan", "--help"], capture_output=True, text=True, check=True
    )
    assert "usage: fetchplan" in helped.stdout


def test_entry_point_exits_with_the_code_of_main_and_freezes_the_heap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cli, "main", lambda: 3)
    assert gc.get_freeze_count() == 0
    try:
        with pytest.raises(SystemExit) as exited:
            cli.entry_point()
        assert exited.value.code == 3
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
