"""The cached description of a target interpreter: shared by the virtual environments of one
base interpreter, asked again when anything it depends on changed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fetchplan.install import TargetInterpreter
from tests.support.hostile import new_venv


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The interpreter queries run (``-c`` scripts; every call is passed on to the real
    ``subprocess.run``, which the venvs' creation goes through too)."""
    calls: list[list[str]] = []
    real = subprocess.run

    def counting(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        if "-c" in argv:
            calls.append(list(argv))
        return real(argv, **kwargs)  # type: ignore[call-overload, no-any-return]

    monkeypatch.setattr(subprocess, "run", counting)
    return calls


def _entries(cache: Path) -> list[Path]:
    return sorted((cache / "interpreters").glob("*"))


def test_a_new_venv_of_a_known_base_is_described_without_asking(
    tmp_path: Path, asked: list[list[str]]
) -> None:
    cache = tmp_path / "cache"
    first = TargetInterpreter.query(new_venv(tmp_path / "a"), cache_dir=cache)
    assert len(asked) == 1
    assert len(_entries(cache)) == 1
    second_python = new_venv(tmp_path / "b")
    second = TargetInterpreter.query(second_python, cache_dir=cache)
    assert len(asked) == 1
    assert second == TargetInterpreter.query(second_python)
    assert second.prefix == str(tmp_path / "b") != first.prefix
    assert second.executable == str(second_python)
    assert Path(second.paths["purelib"]).is_relative_to(tmp_path / "b")
    assert second.tags == first.tags and second.markers == first.markers
    # Without a cache directory, the interpreter is always asked.
    TargetInterpreter.query(second_python)
    assert len(asked) == 3


def test_the_base_interpreter_itself_is_cached_apart(
    tmp_path: Path, asked: list[list[str]]
) -> None:
    cache = tmp_path / "cache"
    venv = TargetInterpreter.query(new_venv(tmp_path / "a"), cache_dir=cache)
    base = Path(sys.executable).resolve()
    outside = TargetInterpreter.query(base, cache_dir=cache)
    assert len(asked) == 2
    assert outside.prefix != venv.prefix
    assert TargetInterpreter.query(base, cache_dir=cache) == outside
    assert len(asked) == 2


def test_a_changed_interpreter_or_venv_setting_is_asked_again(
    tmp_path: Path, asked: list[list[str]]
) -> None:
    cache = tmp_path / "cache"
    venv = tmp_path / "copies"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", "--copies", str(venv)], check=True
    )
    python = venv / "bin" / "python"
    TargetInterpreter.query(python, cache_dir=cache)
    TargetInterpreter.query(python, cache_dir=cache)
    assert len(asked) == 1
    # A replaced binary (here: the same bytes, a new modification time).
    st = python.stat()
    os.utime(python, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    TargetInterpreter.query(python, cache_dir=cache)
    assert len(asked) == 2
    cfg = venv / "pyvenv.cfg"
    cfg.write_text(cfg.read_text().replace("= false", "= true"))
    TargetInterpreter.query(python, cache_dir=cache)
    assert len(asked) == 3
    # A line naming the environment itself does not matter.
    cfg.write_text(cfg.read_text() + "prompt = other\n")
    TargetInterpreter.query(python, cache_dir=cache)
    assert len(asked) == 3


def test_a_corrupt_entry_is_asked_again_and_replaced(
    tmp_path: Path, asked: list[list[str]]
) -> None:
    cache = tmp_path / "cache"
    python = new_venv(tmp_path / "a")
    described = TargetInterpreter.query(python, cache_dir=cache)
    (entry,) = _entries(cache)
    entry.write_bytes(entry.read_bytes()[:-5])
    assert TargetInterpreter.query(python, cache_dir=cache) == described
    assert len(asked) == 2
    assert TargetInterpreter.query(python, cache_dir=cache) == described
    assert len(asked) == 2


def test_a_description_read_is_marked_used_and_kept_by_prune(
    tmp_path: Path, asked: list[list[str]]
) -> None:
    from fetchplan.cache import prune

    cache = tmp_path / "cache"
    python = new_venv(tmp_path / "a")
    TargetInterpreter.query(python, cache_dir=cache)
    (entry,) = _entries(cache)
    month_ago = entry.stat().st_mtime - 30 * 86400
    os.utime(entry, (month_ago, month_ago))
    TargetInterpreter.query(python, cache_dir=cache)
    assert len(asked) == 1
    assert entry.stat().st_mtime > month_ago + 29 * 86400
    prune(cache, unused_days=7)
    assert _entries(cache) == [entry]
    os.utime(entry, (month_ago, month_ago))
    prune(cache, unused_days=7)
    assert _entries(cache) == []
