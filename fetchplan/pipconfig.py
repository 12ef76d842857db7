"""The index settings pip on this machine would use, read at run time.

Precedence, as pip has it: ``PIP_*`` environment variables, then pip's configuration files
(the ``install``/``download`` sections over ``global``), then pip's own default index, asked
from pip itself so that fetchplan never names a public host. The configuration files are read
in-process the way pip's ``Configuration`` class reads them (:func:`pip_config_values`, which a
test holds against ``pip config list``), saving a pip start-up on every command; only the default
index still needs pip (:func:`pip_default_index`), and only when no index is configured.
"""

from __future__ import annotations

import ast
import configparser
import functools
import importlib.util
import locale
import logging
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fetchplan.errors import InputError

__all__ = [
    "PipSettings",
    "parse_config_list",
    "pip_command",
    "pip_config_files",
    "pip_config_values",
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
    constraints: tuple[str, ...] = ()
    """Constraint files (pip's ``constraint``), applied as ``-c`` files are."""
    pre: bool = False
    prefer_binary: bool = False
    require_hashes: bool = False
    only_binary: tuple[str, ...] = ()
    """pip's ``only-binary`` values (project names, ``:all:`` or ``:none:``)."""
    no_binary: tuple[str, ...] = ()
    uploaded_prior_to: str | None = None
    """pip's ``uploaded-prior-to`` as written (a time, or a duration such as ``P7D``)."""
    origins: tuple[tuple[str, str], ...] = field(default=(), compare=False)
    """(value, where it was given) for the locations, hosts and TLS files above: the variable
    (``PIP_INDEX_URL``) or the configuration file and key (``FILE [global] index-url``), so
    that an error about a value can name its source."""

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


# The settings whose values an error may have to trace back to where they were given.
_LOCATED = ("index-url", "extra-index-url", "find-links", "trusted-host", "cert", "client-cert")


def settings_from(
    env: Mapping[str, str], config: Mapping[str, str], files: Mapping[str, str] | None = None
) -> PipSettings:
    """Combine environment variables and ``pip config list`` values, pip's way.

    ``files`` maps a ``section.key`` of ``config`` to the file that gave it, for
    :attr:`PipSettings.origins` (a value without one is named by its section and key)."""
    where = {} if files is None else files

    def pick_from(key: str) -> tuple[str, str] | None:
        variable = "PIP_" + key.upper().replace("-", "_")
        env_value = env.get(variable)
        if env_value is not None:
            return env_value, variable
        for section in reversed(_SECTIONS):
            value = config.get(f"{section}.{key}")
            if value is not None:
                if section == ":env:":
                    return value, variable
                named = f"[{section}] {key}"
                found = where.get(f"{section}.{key}")
                return value, named if found is None else f"{found} {named}"
        return None

    def pick(key: str) -> str | None:
        picked = pick_from(key)
        return None if picked is None else picked[0]

    def many(key: str) -> tuple[str, ...]:
        value = pick(key)
        return () if value is None else tuple(value.split())

    def flag(key: str) -> bool:
        value = pick(key)
        return value is not None and _truthy(value)

    origins: list[tuple[str, str]] = []
    for key in _LOCATED:
        picked = pick_from(key)
        if picked is not None:
            values = (picked[0],) if key in ("index-url", "cert", "client-cert") else ()
            origins += [(value, picked[1]) for value in values or picked[0].split()]
    no_index = pick("no-index")
    return PipSettings(
        index_url=pick("index-url"),
        extra_index_urls=many("extra-index-url"),
        find_links=many("find-links"),
        trusted_hosts=many("trusted-host"),
        no_index=no_index is not None and _truthy(no_index),
        cert=pick("cert"),
        client_cert=pick("client-cert"),
        constraints=many("constraint"),
        pre=flag("pre"),
        prefer_binary=flag("prefer-binary"),
        require_hashes=flag("require-hashes"),
        only_binary=many("only-binary"),
        no_binary=many("no-binary"),
        uploaded_prior_to=pick("uploaded-prior-to"),
        origins=tuple(origins),
    )


_ENV_NAMES_IGNORED = frozenset({"version", "help"})


def pip_config_files(
    env: Mapping[str, str], platform: str = sys.platform, prefix: str = sys.prefix
) -> list[Path]:
    """The configuration files pip would read, weakest first (pip's ``Configuration`` order).

    Global (site config dirs, and ``/etc`` on Unix), then user (the legacy ``~/.pip`` file and
    the platform's config dir; skipped when ``PIP_CONFIG_FILE`` names an existing file), then
    site (``<sys.prefix>``), then ``PIP_CONFIG_FILE``. ``PIP_CONFIG_FILE=os.devnull`` loads none.
    """
    import platformdirs

    windows = platform.startswith("win")
    basename = "pip.ini" if windows else "pip.conf"
    env_file = env.get("PIP_CONFIG_FILE")
    if env_file == os.devnull:
        return []
    if platform == "darwin":
        global_dirs = [platformdirs.site_data_dir("pip", appauthor=False, multipath=True)]
    else:
        joined = platformdirs.site_config_dir("pip", appauthor=False, multipath=True)
        global_dirs = [joined] if windows else [*joined.split(os.pathsep), "/etc"]
    files = [Path(path) / basename for path in global_dirs]
    if not (env_file and Path(env_file).exists()):
        user_dir = Path(platformdirs.user_config_dir("pip", appauthor=False, roaming=True))
        if platform == "darwin" and not user_dir.is_dir():
            user_dir = Path("~/.config/pip").expanduser()
        legacy = Path("~").expanduser() / ("pip" if windows else ".pip") / basename
        files += [legacy, user_dir / basename]
    files.append(Path(prefix) / basename)
    if env_file is not None:
        files.append(Path(env_file))
    return files


def _normalize_name(name: str) -> str:
    name = name.lower().replace("_", "-")
    return name[2:] if name.startswith("--") else name


def _read_config_file(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    parser = configparser.RawConfigParser()
    try:
        parser.read(path, encoding=locale.getpreferredencoding(False))
    except UnicodeDecodeError as err:
        raise InputError(f"{path}: pip configuration file is not in the locale's encoding") from err
    except configparser.Error as err:
        detail = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise InputError(f"{path}: pip could not parse this configuration file: {detail}") from err
    values: dict[str, str] = {}
    for section in parser.sections():
        for name, value in parser.items(section):
            values[f"{section}.{_normalize_name(name)}"] = value
    return values


def pip_config_values(
    env: Mapping[str, str], platform: str = sys.platform, prefix: str = sys.prefix
) -> dict[str, str]:
    """What ``pip config list`` would print, as ``{"section.key": value}``, read in-process.

    Later files override earlier ones; ``PIP_*`` variables come last as section ``:env:``.
    """
    return _config_values(env, platform, prefix)[0]


def _config_values(
    env: Mapping[str, str], platform: str = sys.platform, prefix: str = sys.prefix
) -> tuple[dict[str, str], dict[str, str]]:
    """:func:`pip_config_values`, and the file each file-given ``section.key`` came from."""
    values: dict[str, str] = {}
    files: dict[str, str] = {}
    for path in pip_config_files(env, platform, prefix):
        read = _read_config_file(path)
        values.update(read)
        files.update(dict.fromkeys(read, str(path)))
    for key, value in env.items():
        if key.startswith("PIP_"):
            name = key[4:].lower()
            if name not in _ENV_NAMES_IGNORED:
                values[f":env:.{_normalize_name(name)}"] = value
    return values, files


def read_pip_settings(env: Mapping[str, str] | None = None) -> PipSettings:
    """pip's index settings from its configuration files and environment, read in-process."""
    environ = os.environ if env is None else env
    values, files = _config_values(environ)
    return settings_from(environ, values, files)


_DEFAULT_RE = re.compile(r"--index-url\b.*?\(default\s+(\S+?)\)", re.DOTALL)


@functools.cache
def pip_default_index(runner: Runner | None = None) -> str:
    """pip's built-in default index URL, as pip's own help states it (``--isolated``: pip's
    configuration is not its built-in default, and a bad value there would fail pip's help
    before the planner could name it)."""
    text = (runner or _run)([*pip_command(), "--isolated", "download", "--help"])
    match = _DEFAULT_RE.search(text)
    if match is None:
        raise InputError("could not learn pip's default index from 'pip download --help'")
    return match.group(1).rstrip(").,")
