"""The command line's global behaviour."""

from __future__ import annotations

import subprocess
import sys

from fetchplan import __version__


def test_version_and_help() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "fetchplan", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == f"fetchplan {__version__}"
    helped = subprocess.run(
        [sys.executable, "-m", "fetchplan", "--help"], capture_output=True, text=True, check=True
    )
    assert "usage: fetchplan" in helped.stdout
