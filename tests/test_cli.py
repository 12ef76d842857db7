"""The command line's global behaviour."""

from __future__ import annotations

import gc
import subprocess
import sys

import pytest

from fetchplan import __version__, _malloc, cli


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
    calls: list[str] = []

    # The allocator is tuned for the whole process, before main: not this test process's.
    def tune() -> bool:
        calls.append("tune")
        return True

    monkeypatch.setattr(_malloc, "tune", tune)

    def main() -> int:
        calls.append("main")
        return 3

    monkeypatch.setattr(cli, "main", main)
    assert gc.get_freeze_count() == 0
    try:
        with pytest.raises(SystemExit) as exited:
            cli.entry_point()
        assert exited.value.code == 3
        assert calls == ["tune", "main"]
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
