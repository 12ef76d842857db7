"""fetchplan reads pip's configuration files in-process; pip itself is the oracle."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fetchplan.errors import InputError
from fetchplan.pipconfig import parse_config_list, pip_config_values, read_pip_settings


def _pip_config_list() -> dict[str, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"],
        capture_output=True,
        text=True,
        check=True,
        env=dict(os.environ),
        timeout=120,
    )
    return parse_config_list(proc.stdout)


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Global, legacy user and XDG user files, each setting keys the others also set."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-home"))
    monkeypatch.setenv("XDG_CONFIG_DIRS", f"{tmp_path / 'dirs-a'}{os.pathsep}{tmp_path / 'dirs-b'}")
    monkeypatch.delenv("PIP_CONFIG_FILE", raising=False)
    _write(
        tmp_path / "dirs-a" / "pip" / "pip.conf",
        "[global]\nindex-url = http://global-a.invalid/simple\ntimeout = 5\n"
        "[install]\nno_index = false\n",
    )
    _write(
        tmp_path / "dirs-b" / "pip" / "pip.conf",
        "[global]\nindex-url = http://global-b.invalid/simple\nretries = 2\n",
    )
    _write(
        tmp_path / "home" / ".pip" / "pip.conf",
        "[DEFAULT]\nshared = from-default\n[global]\ntimeout = 7\n"
        "extra-index-url =\n    http://x.invalid/simple\n    http://y.invalid/simple\n",
    )
    _write(
        tmp_path / "xdg-home" / "pip" / "pip.conf",
        "[global]\n--Trusted_Host = user.invalid\n[download]\nindex-url = http://dl.invalid/s\n",
    )
    return tmp_path


def test_user_files_and_environment_match_pip(
    layout: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIP_INDEX_URL", "http://env.invalid/simple")
    monkeypatch.setenv("PIP_Find_Links", "/wheels")
    monkeypatch.setenv("PIP_VERSION", "1")
    ours = pip_config_values(os.environ)
    assert ours == _pip_config_list()
    assert ours["global.timeout"] == "7"
    assert ours[":env:.find-links"] == "/wheels"
    settings = read_pip_settings()
    assert settings.index_url == "http://env.invalid/simple"
    assert settings.extra_index_urls == ("http://x.invalid/simple", "http://y.invalid/simple")
    assert settings.trusted_hosts == ("user.invalid",)


def test_existing_config_file_variable_replaces_user_files(
    layout: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = _write(layout / "env.conf", "[install]\nindex-url = http://file.invalid/simple\n")
    monkeypatch.setenv("PIP_CONFIG_FILE", str(conf))
    ours = pip_config_values(os.environ)
    assert ours == _pip_config_list()
    assert "global.timeout" in ours  # from the global file: still read
    assert ours["global.index-url"] == "http://global-b.invalid/simple"
    assert read_pip_settings().index_url == "http://file.invalid/simple"


def test_missing_config_file_variable_keeps_user_files(
    layout: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIP_CONFIG_FILE", str(layout / "absent.conf"))
    ours = pip_config_values(os.environ)
    assert ours == _pip_config_list()
    assert ours["global.trusted-host"] == "user.invalid"


def test_null_device_loads_no_file(layout: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    ours = pip_config_values(os.environ)
    assert ours == _pip_config_list()
    assert [key for key in ours if not key.startswith(":env:.")] == []


def test_unparsable_file_names_the_file(layout: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = _write(layout / "bad.conf", "index-url = no section header\n")
    monkeypatch.setenv("PIP_CONFIG_FILE", str(bad))
    with pytest.raises(InputError, match=r"bad\.conf"):
        read_pip_settings()
