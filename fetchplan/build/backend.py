"""A PEP 517 build backend, called through ``pyproject_hooks`` in an isolated interpreter.

``pyproject_hooks`` runs each hook in a fresh subprocess of the build environment's
interpreter; here that subprocess gets an environment without ``PYTHONPATH``/``PYTHONHOME``
(nothing of the calling process leaks into the build), no standard input, a time limit, and
its output captured into a temporary file, never the caller's terminal: logged at info level
(``-v``; only its last :data:`LOGGED_OUTPUT_BYTES`), and its last lines quoted, on one line, when
the hook fails. Backend warnings go to the log, not to the caller's ``warnings``.
"""

from __future__ import annotations

import logging
import os
import subprocess
import tempfile
import threading
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pyproject_hooks
from packaging.requirements import InvalidRequirement, Requirement

from fetchplan.build.errors import BuildError
from fetchplan.build.source import BuildSystem

__all__ = ["DEFAULT_TIMEOUT", "LOGGED_OUTPUT_BYTES", "Backend"]

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 900.0
"""Seconds one hook may run (a large C extension can take minutes)."""

LOGGED_OUTPUT_BYTES = 256 * 1024
"""Most bytes of a hook's output kept for the log (its end: where a failure's cause is); the
rest stays in a temporary file, removed when the hook returns."""
_QUOTED_LINES = 3
_QUOTED_CHARS = 300

_DROPPED = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE", "PYTHONSAFEPATH")
# warnings.catch_warnings changes process-wide state: hook calls take turns around it.
_WARNINGS_LOCK = threading.Lock()
T = TypeVar("T")


class _HookFailed(Exception):
    def __init__(self, hook: str, message: str) -> None:
        self.hook = hook
        super().__init__(message)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def _tail(text: str) -> str:
    """The last few non-empty lines of ``text`` on one line (`` | `` between), at most
    :data:`_QUOTED_CHARS` characters, the end kept: what a failing hook printed last."""
    lines = [" ".join(line.split()) for line in text.splitlines() if line.strip()]
    if not lines:
        return "no output"
    quoted = " | ".join(lines[-_QUOTED_LINES:])
    if len(quoted) > _QUOTED_CHARS:
        quoted = "..." + quoted[-(_QUOTED_CHARS - 3) :]
    return quoted


def _read_tail(output: Any) -> str:
    """The end of the hook's output file (at most :data:`LOGGED_OUTPUT_BYTES`), decoded."""
    size = output.seek(0, os.SEEK_END)
    output.seek(max(0, size - LOGGED_OUTPUT_BYTES))
    data: bytes = output.read()
    text = data.decode("utf-8", errors="replace")
    if size > LOGGED_OUTPUT_BYTES:
        text = f"[first {size - len(data)} bytes left out]\n" + text.partition("\n")[2]
    return text


def _runner(timeout: float) -> Callable[..., None]:
    def run(
        cmd: Sequence[str],
        cwd: str | None = None,
        extra_environ: Mapping[str, str] | None = None,
    ) -> None:
        hook = cmd[2] if len(cmd) > 2 else "hook"
        env = {k: v for k, v in os.environ.items() if k not in _DROPPED}
        env.update(extra_environ or {})
        env["PYTHONNOUSERSITE"] = "1"
        # A file, not a pipe: the backend's output (stdout and stderr interleaved as written)
        # never reaches the terminal and never fills memory, however much it prints.
        with tempfile.TemporaryFile() as output:
            try:
                done = subprocess.run(
                    list(cmd),
                    cwd=cwd,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    timeout=timeout,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                text = _read_tail(output)
                raise _HookFailed(
                    hook,
                    f"did not finish within {timeout:g} seconds; its output ended: {_tail(text)}",
                ) from None
            except OSError as exc:
                raise _HookFailed(hook, f"cannot start the build interpreter: {exc}") from None
            # The output is read only when it is shown: at -v, or quoted by a failure.
            failed = done.returncode != 0
            text = _read_tail(output) if failed or log.isEnabledFor(logging.INFO) else ""
        if text.strip():
            log.info("%s output:\n%s", hook, text.rstrip())
        if failed:
            raise _HookFailed(hook, f"exit status {done.returncode}: {_tail(text)}")

    return run


class Backend:
    """The build backend of the source tree ``source_dir``, run by the interpreter ``python``.

    ``where`` names the sdist in every error (:class:`BuildError`, one line).
    """

    def __init__(
        self,
        source_dir: Path,
        build_system: BuildSystem,
        python: Path,
        *,
        where: str,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.where = where
        self.build_system = build_system
        self._hooks = pyproject_hooks.BuildBackendHookCaller(
            str(source_dir),
            build_system.backend,
            backend_path=list(build_system.backend_path) or None,
            runner=_runner(timeout),
            python_executable=str(python),
        )

    def _call(self, hook: str, call: Callable[[], T]) -> T:
        with _WARNINGS_LOCK, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                result = call()
            except _HookFailed as exc:
                raise BuildError(f"{self.where}: {exc.hook} failed: {exc}") from None
            except pyproject_hooks.BackendUnavailable as exc:
                raise BuildError(
                    f"{self.where}: the build backend {self.build_system.backend!r} cannot be "
                    f"imported in the build environment: {_last_line(exc.traceback)}"
                ) from None
            except pyproject_hooks.HookMissing as exc:
                raise BuildError(
                    f"{self.where}: the build backend {self.build_system.backend!r} has no "
                    f"{exc.hook_name} hook"
                ) from None
            except (pyproject_hooks.BackendInvalid, pyproject_hooks.UnsupportedOperation) as exc:
                raise BuildError(f"{self.where}: {hook}: {_last_line(str(exc))}") from None
        for warning in caught:
            log.warning("%s: %s: %s", self.where, hook, warning.message)
        return result

    def _requires(self, hook: str, call: Callable[[], Any]) -> tuple[Requirement, ...]:
        """The requirements a ``get_requires_for_build_*`` hook returned, checked."""
        raw: Any = self._call(hook, call)
        if not isinstance(raw, list) or not all(isinstance(r, str) for r in raw):
            raise BuildError(f"{self.where}: {hook} returned {raw!r}, not a list")
        try:
            return tuple(Requirement(r) for r in raw)
        except InvalidRequirement as exc:
            raise BuildError(f"{self.where}: {hook}: {exc}") from None

    def _wheel(self, hook: str, directory: Path, call: Callable[[str], Any]) -> Path:
        """The wheel a ``build_wheel`` or ``build_editable`` hook wrote into ``directory``."""
        directory.mkdir(parents=True, exist_ok=True)
        name: Any = self._call(hook, lambda: call(str(directory.resolve())))
        wheel = directory / str(name)
        if not isinstance(name, str) or "/" in name or not name.endswith(".whl"):
            raise BuildError(f"{self.where}: {hook} returned {name!r}, not a wheel name")
        if not wheel.is_file():
            raise BuildError(f"{self.where}: {hook} reported {name} but wrote no such file")
        return wheel

    def get_requires_for_build_wheel(self) -> tuple[Requirement, ...]:
        """What the backend asks for beyond ``[build-system] requires`` to build a wheel."""
        return self._requires(
            "get_requires_for_build_wheel", self._hooks.get_requires_for_build_wheel
        )

    def get_requires_for_build_editable(self) -> tuple[Requirement, ...]:
        """What the backend asks for beyond ``[build-system] requires`` for an editable
        (PEP 660); nothing when it has no such hook."""
        return self._requires(
            "get_requires_for_build_editable", self._hooks.get_requires_for_build_editable
        )

    def build_editable(self, directory: Path) -> Path:
        """Build the editable wheel (PEP 660) into ``directory``; return its path."""
        return self._wheel("build_editable", directory, self._hooks.build_editable)

    def prepare_metadata(self, directory: Path) -> bytes:
        """The core metadata of the wheel the backend would build (``METADATA`` bytes).

        Uses ``prepare_metadata_for_build_wheel``; a backend without that hook builds the
        wheel and the metadata is taken from it (pyproject_hooks' fallback).
        """
        directory.mkdir(parents=True, exist_ok=True)
        name: Any = self._call(
            "prepare_metadata_for_build_wheel",
            lambda: self._hooks.prepare_metadata_for_build_wheel(str(directory)),
        )
        metadata = directory / str(name) / "METADATA"
        if not isinstance(name, str) or "/" in name or not metadata.is_file():
            raise BuildError(
                f"{self.where}: prepare_metadata_for_build_wheel returned {name!r}, "
                "not a .dist-info directory holding METADATA"
            )
        try:
            return metadata.read_bytes()
        except OSError as exc:
            raise BuildError(f"{self.where}: cannot read {metadata}: {exc}") from None

    def build_wheel(self, directory: Path) -> Path:
        """Build the wheel into ``directory``; return its path."""
        return self._wheel("build_wheel", directory, self._hooks.build_wheel)
