"""The interpreter we install into, described by itself, and the virtual environment it lives in.

Everything that depends on the target (its install scheme, version, marker values, supported
tags, bytecode cache tag) is asked from the target interpreter in a subprocess, so a virtual
environment of another Python version is served correctly.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import packaging

from fetchplan._lock import hold_lock
from fetchplan.install.errors import EnvironmentBusy, InterpreterError

__all__ = ["NO_SITE", "STATE_DIR", "TargetInterpreter", "ensure_venv", "venv_python"]

log = logging.getLogger(__name__)

STATE_DIR = ".fetchplan"
"""fetchplan's directory in an environment: its lock and its install journal."""

NO_SITE = ("-I", "-S")
"""How fetchplan starts the target interpreter: isolated (no ``PYTHON*`` variables, user site
or current directory) and without :mod:`site`, so nothing of the environment runs: no
``.pth`` file and no ``sitecustomize`` of a wheel installed there."""

# Runs inside the target interpreter, which may be of another Python version and may lack
# packaging: ours is put first on its path. Kept to syntax every supported Python accepts.
# Without site, a virtual environment's sys.prefix is the base one: site's venv() would set
# it from pyvenv.cfg but also process the environment's .pth files, so it is done here, as
# venv() does it, before sysconfig reads sys.prefix.
_QUERY = r"""
import json, os, sys
_bin = os.path.dirname(os.path.abspath(sys.executable))
if sys.prefix == getattr(sys, "base_prefix", sys.prefix) and any(
    os.path.isfile(os.path.join(d, "pyvenv.cfg")) for d in (_bin, os.path.dirname(_bin))
):
    sys.prefix = sys.exec_prefix = os.path.dirname(_bin)
import sysconfig
sys.path.insert(0, sys.argv[1])
from packaging.markers import default_environment
from packaging.tags import sys_tags
json.dump({
    "executable": sys.executable,
    "prefix": sys.prefix,
    "base_prefix": getattr(sys, "base_prefix", sys.prefix),
    "paths": sysconfig.get_paths(),
    "python_version": "%d.%d" % sys.version_info[:2],
    "implementation": sys.implementation.name,
    "cache_tag": sys.implementation.cache_tag,
    "markers": default_environment(),
    "tags": [str(t) for t in sys_tags()],
    "os_name": os.name,
}, sys.stdout)
"""

_QUERY_TIMEOUT = 120.0


@dataclass(frozen=True, kw_only=True, slots=True)
class TargetInterpreter:
    """A Python interpreter as it describes itself: where it installs, what it supports."""

    executable: str
    """The interpreter's own ``sys.executable``: the shebang of console scripts."""
    prefix: str
    base_prefix: str
    paths: dict[str, str]
    """``sysconfig.get_paths()`` of the interpreter."""
    python_version: str
    implementation: str
    cache_tag: str | None
    """``sys.implementation.cache_tag``; ``None`` when the interpreter writes no bytecode."""
    markers: dict[str, str]
    tags: tuple[str, ...]
    """Supported wheel tags, most preferred first."""
    os_name: str

    @property
    def in_venv(self) -> bool:
        return self.prefix != self.base_prefix

    def scheme(self, distribution: str) -> dict[str, str]:
        """The installer scheme (purelib, platlib, headers, scripts, data) for a distribution.

        Headers go where pip puts them: ``include/site/pythonX.Y/<name>`` in a virtual
        environment, ``<include>/<name>`` otherwise.
        """
        if self.in_venv:
            headers = Path(self.prefix, "include", "site", f"python{self.python_version}")
        else:
            headers = Path(self.paths["include"])
        return {
            "purelib": self.paths["purelib"],
            "platlib": self.paths["platlib"],
            "headers": str(headers / distribution),
            "scripts": self.paths["scripts"],
            "data": self.paths["data"],
        }

    def site_dirs(self) -> tuple[Path, ...]:
        """The directories that hold installed distributions (purelib, then platlib if apart)."""
        purelib = Path(self.paths["purelib"])
        platlib = Path(self.paths["platlib"])
        return (purelib,) if purelib == platlib else (purelib, platlib)

    def describe(self) -> str:
        return f"{self.executable} ({self.implementation} {self.python_version})"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TargetInterpreter:
        return cls(
            executable=d["executable"],
            prefix=d["prefix"],
            base_prefix=d["base_prefix"],
            paths=dict(d["paths"]),
            python_version=d["python_version"],
            implementation=d["implementation"],
            cache_tag=d["cache_tag"],
            markers=dict(d["markers"]),
            tags=tuple(d["tags"]),
            os_name=d["os_name"],
        )

    @classmethod
    def query(cls, python: Path, *, cache_dir: Path | None = None) -> TargetInterpreter:
        """Ask the interpreter at ``python`` to describe itself (one subprocess).

        With ``cache_dir`` (fetchplan's cache root), the description is kept in its
        ``interpreters/`` section and reused while nothing it depends on changed (see
        :func:`_cache_key`): the subprocess costs a tenth of a second of CPU, about what
        installing a set of wheels from the store costs beside it.
        """
        place = _Place.of(python) if cache_dir is not None else None
        if place is not None and cache_dir is not None:
            cached = place.load(cache_dir)
            if cached is not None:
                return cached
        described = cls._ask(python)
        if place is not None and cache_dir is not None:
            place.save(cache_dir, described)
        return described

    @classmethod
    def _ask(cls, python: Path) -> TargetInterpreter:
        packaging_root = str(Path(packaging.__file__).resolve().parent.parent)
        argv = [os.path.abspath(python), *NO_SITE, "-c", _QUERY, packaging_root]  # noqa: PTH100
        try:
            done = subprocess.run(
                argv, capture_output=True, text=True, timeout=_QUERY_TIMEOUT, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise InterpreterError(f"{python}: cannot run the interpreter: {exc}") from exc
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise InterpreterError(f"{python}: interpreter query failed: {last}")
        try:
            return cls.from_dict(json.loads(done.stdout))
        except (ValueError, KeyError, TypeError) as exc:
            raise InterpreterError(f"{python}: unexpected interpreter description: {exc}") from exc


_CACHE_FORMAT = 1
# What the key leaves out of pyvenv.cfg: the lines naming this environment itself.
_OWN_LINES = ("command", "prompt")


def _venv_settings(prefix: str) -> list[str]:
    """The lines of ``prefix``'s pyvenv.cfg that say which base interpreter it uses."""
    try:
        with open(os.path.join(prefix, "pyvenv.cfg"), encoding="utf-8") as cfg:  # noqa: PTH118, PTH123
            lines = cfg.read().splitlines()
    except (OSError, UnicodeDecodeError):
        return ["?"]
    return sorted(
        line.strip()
        for line in lines
        if line.strip() and line.partition("=")[0].strip().lower() not in _OWN_LINES
    )


@dataclass(frozen=True, slots=True)
class _Place:
    """Where an interpreter is and what its description depends on, read without running it.

    A virtual environment's description is that of its base interpreter, with the paths
    below its prefix relative to it: so it is shared by every environment made from that
    base with the same settings (a new venv is described without a subprocess), as uv
    shares its interpreter cache.
    """

    invoked: str
    prefix: str | None
    """The virtual environment's prefix, found as the query finds it; None outside one."""
    key: str

    @classmethod
    def of(cls, python: Path) -> _Place | None:
        invoked = os.path.abspath(python)  # noqa: PTH100
        bin_dir = os.path.dirname(invoked)  # noqa: PTH120
        prefix: str | None = None
        if any(
            os.path.isfile(os.path.join(d, "pyvenv.cfg"))  # noqa: PTH113, PTH118
            for d in (bin_dir, os.path.dirname(bin_dir))  # noqa: PTH120
        ):
            prefix = os.path.dirname(bin_dir)  # noqa: PTH120
        real = os.path.realpath(invoked)
        try:
            st = os.stat(real)  # noqa: PTH116
        except OSError:
            return None
        libc = os.confstr("CS_GNU_LIBC_VERSION") if hasattr(os, "confstr") else None
        material = [
            _CACHE_FORMAT,
            hashlib.sha256(_QUERY.encode()).hexdigest(),
            packaging.__version__,
            real,
            [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns],
            # The markers name the running kernel; the tags depend on the C library.
            list(os.uname()) if hasattr(os, "uname") else None,
            libc,
            [os.environ.get(v) for v in ("_PYTHON_HOST_PLATFORM", "MACOSX_DEPLOYMENT_TARGET")],
        ]
        if prefix is None:
            material.append(invoked)
        else:
            material += [os.path.relpath(invoked, prefix), _venv_settings(prefix)]
        digest = hashlib.sha256(json.dumps(material).encode()).hexdigest()
        return cls(invoked, prefix, digest)

    def _path(self, cache_dir: Path) -> Path:
        return cache_dir / "interpreters" / f"{self.key}.json"

    def load(self, cache_dir: Path) -> TargetInterpreter | None:
        from fetchplan.cache import read_entry

        path = self._path(cache_dir)
        payload = read_entry(path)
        if payload is None:
            return None
        # Used now: `cache prune --unused-days` keeps what installs still read.
        with contextlib.suppress(OSError):
            os.utime(path)
        try:
            d = json.loads(payload)
            if self.prefix is not None:
                d["executable"], d["prefix"] = self.invoked, self.prefix
                d["paths"] = {
                    k: self.prefix + v if below else v for k, (below, v) in d["paths"].items()
                }
            return TargetInterpreter.from_dict(d)
        except (ValueError, KeyError, TypeError, AttributeError):
            return None

    def save(self, cache_dir: Path, described: TargetInterpreter) -> None:
        from fetchplan.cache import write_entry

        d = asdict(described)
        if self.prefix is not None:
            prefix = self.prefix
            if (
                described.prefix != prefix
                or described.executable != self.invoked
                or described.base_prefix == prefix
                or _below(described.base_prefix, prefix)
            ):
                return  # not laid out as assumed: asked again each time
            d["executable"] = d["prefix"] = None
            d["paths"] = {
                k: [True, v[len(prefix) :]] if _below(v, prefix) else [False, v]
                for k, v in described.paths.items()
            }
        elif described.executable != self.invoked:
            return
        try:
            write_entry(self._path(cache_dir), json.dumps(d).encode())
        except OSError as exc:
            log.debug("cannot cache the interpreter description: %s", exc)


def _below(path: str, directory: str) -> bool:
    """Whether ``path`` is ``directory`` or lies below it (plain string comparison)."""
    return path == directory or path.startswith(os.path.join(directory, ""))  # noqa: PTH118


def venv_python(directory: Path) -> Path:
    """The interpreter of the virtual environment at ``directory`` (which may not exist yet)."""
    if os.name == "nt":
        return directory / "Scripts" / "python.exe"
    return directory / "bin" / "python"


def ensure_venv(
    directory: Path,
    *,
    python: Path | None = None,
    wait: bool = True,
    on_wait: Callable[[str], None] | None = None,
) -> Path:
    """Return the interpreter of the virtual environment ``directory``, creating it if absent.

    A new environment is made with ``<python> -I -S -m venv --without-pip`` (``python``
    defaults to the running interpreter; without :mod:`site`, so that the ``.pth`` files of
    its own environment do not run: to build an sdist, the target makes the build
    environment), so afterwards it holds exactly what we install. An existing
    directory that is not a virtual environment is refused rather than touched.

    Creation holds the environment's own lock (``<directory>/.fetchplan/lock``, the one
    installs take), so two commands making one environment at once make it once: the second
    waits (``on_wait`` is told whom for), or with ``wait=False`` raises
    :class:`EnvironmentBusy`, then finds it made. A creation that was killed is marked as
    under way; the next one clears what it left and starts again. (The environment is not
    made elsewhere and renamed: its activate scripts name the directory they were made in.)
    """
    interpreter = venv_python(directory)
    if _is_venv(directory, interpreter):
        return interpreter
    state = directory / STATE_DIR
    under_way = state / _CREATING
    if not under_way.exists():
        _refuse_foreign(directory)
    try:
        state.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InterpreterError(
            f"{directory}: cannot create virtual environment: {exc.strerror or exc}"
        ) from exc
    with hold_lock(
        state,
        wait=wait,
        on_wait=on_wait,
        busy=lambda holder: EnvironmentBusy(
            f"{directory}: another fetchplan ({holder}) is creating or installing into it "
            "(--no-wait was given)"
        ),
        waiting=lambda holder: (
            f"waiting for another fetchplan ({holder}) to finish with {directory}"
        ),
    ):
        if _is_venv(directory, interpreter):
            return interpreter  # made by whoever held the lock
        if under_way.exists():
            log.info("%s: clearing what an interrupted creation left", directory)
            _clear_all_but_state(directory)
        else:
            _refuse_foreign(directory)
        try:
            under_way.touch()
        except OSError as exc:
            raise InterpreterError(
                f"{directory}: cannot create virtual environment: {exc.strerror or exc}"
            ) from exc
        _create(directory, interpreter, python)
        under_way.unlink()
    return interpreter


_CREATING = "creating"
"""In the environment's state directory while :func:`ensure_venv` makes it."""


def _is_venv(directory: Path, interpreter: Path) -> bool:
    return (directory / "pyvenv.cfg").is_file() and interpreter.exists()


def _refuse_foreign(directory: Path) -> None:
    """Refuse a directory holding anything but fetchplan's state: it is someone else's."""
    if directory.is_symlink() or (directory.exists() and not directory.is_dir()):
        raise InterpreterError(f"{directory}: exists and is not a virtual environment")
    if directory.exists() and any(entry.name != STATE_DIR for entry in directory.iterdir()):
        raise InterpreterError(f"{directory}: exists and is not a virtual environment")


def _clear_all_but_state(directory: Path) -> None:
    for entry in directory.iterdir():
        if entry.name == STATE_DIR:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def _create(directory: Path, interpreter: Path, python: Path | None) -> None:
    creator = str(python) if python is not None else sys.executable
    log.info("creating virtual environment %s with %s", directory, creator)
    try:
        done = subprocess.run(
            [creator, *NO_SITE, "-m", "venv", "--without-pip", str(directory)],
            capture_output=True,
            text=True,
            timeout=_QUERY_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InterpreterError(f"{directory}: cannot create virtual environment: {exc}") from exc
    if done.returncode != 0 or not interpreter.exists():
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise InterpreterError(f"{directory}: cannot create virtual environment: {last}")
