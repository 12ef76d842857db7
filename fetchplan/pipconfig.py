"""The index settings pip on this machine would use, read at run time.

Precedence, as pip has it: ``PIP_*`` environment variables, then pip's configuration files
(the ``install``/``download`` sections over ``global``), then pip's own default index, asked
from pip itself so that fetchplan never names a public host. Parsing is pure
(:func:`parse_config_list`, :func:`settings_from`); :func:`read_pip_settings` runs pip.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import logging
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fetchplan.errors import InputError

__all__ = [
    "PipSettings",
    "parse_config_list",
    "pip_command",
    "pip_default_index",
    "read_pip_settings",
    "settings_from",
]

log = logging.getLogger(__name__)

Runner = Callable[[Sequence[str]], str]

# Sections pip reads for ``pip install`` and ``pip download``, weakest first.
_SECTIONS = ("global", "download", "install", ":env:")


@dataclass(frozen=True, kw_only=True, slots=True)
class PipSettings:
    """Index-related settings; URLs may carry credentials (strip them before writing)."""

    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    trusted_hosts: tuple[str, ...] = ()
    no_index: bool = False
    cert: str | None = None
    """A CA bundle to verify servers with (pip's ``cert``)."""
    client_cert: str | None = None
    """A client certificate, key included (pip's ``client-cert``)."""

    def apply_tls(self, session: Any) -> None:
        """Give a requests session pip's CA bundle and client certificate, when set."""
        if self.cert is not None:
            session.verify = self.cert
        if self.client_cert is not None:
            session.cert = self.client_cert


def _run(argv: Sequence[str]) -> str:
    proc = subprocess.run(list(argv), capture_output=True, text=True, check=False, timeout=60)
    if proc.returncode != 0:
        raise InputError(f"'{' '.join(argv)}' failed: {proc.stderr.strip().splitlines()[-1:]}")
    return proc.stdout


def pip_command() -> list[str]:
    """The pip this machine uses: this interpreter's when it has one, else ``pip`` on PATH."""
    if importlib.util.find_spec("pip") is not None:
        return [sys.executable, "-m", "pip"]
    for name in ("pip3", "pip"):
        found = shutil.which(name)
        if found is not None:
            return [found]
    raise InputError("no pip found: give --index-url, or install pip to read its configuration")


def parse_config_list(text: str) -> dict[str, str]:
    """Parse ``pip config list`` output (``section.key='value'`` lines) into a dict."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, raw = line.partition("=")
        if not sep:
            continue
        try:
            value = ast.literal_eval(raw.strip())
        except (ValueError, SyntaxError):
            value = raw.strip()
        values[key.strip()] = str(value)
    return values


def _truthy(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def settings_from(env: Mapping[str, str], config: Mapping[str, str]) -> PipSettings:
    """Combine environment variables and ``pip config list`` values, pip's way."""

    def pick(key: str) -> str | None:
        env_value = env.get("PIP_" + key.upper().replace("-", "_"))
        if env_value is not None:
            return env_value
        for section in reversed(_SECTIONS):
            value = config.get(f"{section}.{key}")
            if value is not None:
                return value
        return None

    def many(key: str) -> tuple[str, ...]:
        value = pick(key)
        return () if value is None else tuple(value.split())

    no_index = pick("no-index")
    return PipSettings(
        index_url=pick("index-url"),
        extra_index_urls=many("extra-index-url"),
        find_links=many("find-links"),
        trusted_hosts=many("trusted-host"),
        no_index=no_index is not None and _truthy(no_index),
        cert=pick("cert"),
        client_cert=pick("client-cert"),
    )


@functools.cache
def _config_list_text() -> str:
    return _run([*pip_command(), "config", "list"])


def read_pip_settings(
    env: Mapping[str, str] | None = None, runner: Runner | None = None
) -> PipSettings:
    """Ask pip for its configuration (files and environment) and combine it."""
    environ = os.environ if env is None else env
    text = _config_list_text() if runner is None else runner([*pip_command(), "config", "list"])
    return settings_from(environ, parse_config_list(text))


_DEFAULT_RE = re.compile(r"--index-url\b.*?\(default\s+(\S+?)\)", re.DOTALL)


@functools.cache
def pip_default_index(runner: Runner | None = None) -> str:
    """pip's built-in default index URL, as pip's own help states it."""
    text = (runner or _run)([*pip_command(), "download", "--help"])
    match = _DEFAULT_RE.search(text)
    if match is None:
        raise InputError("could not learn pip's default index from 'pip download --help'")
    return match.group(1).rstrip(").,")
