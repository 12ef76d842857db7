"""The environment's own files, which no wheel may replace.

A wheel's scripts (``<dist>.data/scripts/*``), its console and gui entry points, and its
``data`` scheme (the environment's root) can name any file of the scripts directory or the
prefix. Among them are the files that make the environment what it is: its interpreters and
launchers (``python``, ``python3``, ``python3.X``, ``pythonw``, ``pypy3``..., the target's
own executable, whatever it is called), the virtual environment's activate scripts, its
``pyvenv.cfg``, and fetchplan's own state and staging directories there. A wheel that
would write one of them is refused before anything is extracted, as uv does: replacing
``bin/python`` would run the wheel's code the next time anything, fetchplan included,
starts the interpreter.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from fetchplan.install.errors import UnsafeWheel
from fetchplan.install.interpreter import STATE_DIR, TargetInterpreter
from fetchplan.install.wheel import OpenWheel

__all__ = ["STAGING_PREFIX", "STATE_DIR", "Protected", "check_wheel"]

STAGING_PREFIX = ".fetchplan-staging-"
"""How the staging directories in the environment's prefix are named."""

# Interpreter and launcher names of every implementation, any version, free-threaded or not.
_INTERPRETER = re.compile(
    r"(python|pythonw|pypy|pypyw|graalpy)(\d+(\.\d+)*)?t?(-dbg)?", re.IGNORECASE
)
# venv's and virtualenv's activation scripts: activate, activate.fish, Activate.ps1,
# activate_this.py, deactivate.bat, ...
_ACTIVATE = re.compile(r"(de)?activate(_this\.py|\.[\w.]+)?", re.IGNORECASE)
_EXECUTABLE_SUFFIXES = (".exe", ".bat", ".cmd", ".com", ".ps1")


def _norm(path: str | Path) -> str:
    return os.path.normcase(os.path.abspath(path))  # noqa: PTH100


def _bare(name: str) -> str:
    lowered = name.lower()
    for suffix in _EXECUTABLE_SUFFIXES:
        if lowered.endswith(suffix):
            return name[: -len(suffix)]
    return name


@dataclass(frozen=True, slots=True)
class Protected:
    """The paths of one target that wheels may not write, and the names in its scripts
    directory that are the environment's own."""

    scripts: str
    files: frozenset[str]
    trees: tuple[str, ...]
    names: frozenset[str]

    @classmethod
    def of(cls, target: TargetInterpreter) -> Protected:
        scripts = _norm(target.paths["scripts"])
        files = {_norm(Path(target.prefix, "pyvenv.cfg"))}
        names = set()
        for executable in (target.executable, os.path.realpath(target.executable)):
            files.add(_norm(executable))
            names.add(_bare(os.path.basename(executable)).lower())  # noqa: PTH119
        return cls(
            scripts=scripts,
            files=frozenset(files),
            trees=(
                os.path.join(_norm(Path(target.prefix, STATE_DIR)), ""),  # noqa: PTH118
                _norm(Path(target.prefix, STAGING_PREFIX)),
            ),
            names=frozenset(names),
        )

    def script_name(self, name: str) -> bool:
        """Whether a script called ``name`` would replace an interpreter or launcher."""
        bare = _bare(name)
        return (
            bare.lower() in self.names
            or _INTERPRETER.fullmatch(bare) is not None
            or _ACTIVATE.fullmatch(name) is not None
            or _ACTIVATE.fullmatch(bare) is not None
        )

    def directory(self, directory: str) -> bool:
        """Whether a file directly in ``directory`` (absolute and normalised, as staging
        makes every destination) could be one of the environment's own: when not, none of
        its files needs :meth:`path`."""
        here = os.path.join(_norm(directory), "")  # noqa: PTH118
        return (
            here[:-1] == self.scripts
            or any(os.path.dirname(f) == here[:-1] for f in self.files)  # noqa: PTH120
            or any(here.startswith(t) or t.startswith(here) for t in self.trees)
        )

    def path(self, path: str | Path) -> bool:
        """Whether writing ``path`` would replace one of the environment's own files."""
        final = _norm(path)
        if final in self.files or final.startswith(self.trees):
            return True
        return os.path.dirname(final) == self.scripts and self.script_name(  # noqa: PTH120
            os.path.basename(final)  # noqa: PTH119
        )


def check_wheel(opened: OpenWheel, target: TargetInterpreter, protected: Protected) -> None:
    """Refuse ``opened`` when a member or an entry point would land on a protected path.

    Raises :class:`UnsafeWheel` naming the wheel and the member (or ``entry_points.txt`` and
    the script's name).
    """
    layout = opened.layout
    wheel = opened.spec.filename
    scheme = target.scheme(opened.spec.name)
    data = layout.data_dir + "/"
    # Members share few directories: a file needs its own look only in a directory where
    # one of the environment's files could be (see Protected.directory). Member paths are
    # plain (inspect_wheel refused any other), so a member's directory is its path's.
    near: dict[str, bool] = {}
    for info in layout.members:
        name = info.filename
        if name.startswith(data):
            kind, _, rest = name[len(data) :].partition("/")
            roots = [scheme[kind]]
        else:
            rest = name
            roots = [scheme["purelib"], scheme["platlib"]]
        for root in roots:
            final = os.path.join(root, rest)  # noqa: PTH118
            directory = os.path.dirname(final)  # noqa: PTH120
            maybe = near.get(directory)
            if maybe is None:
                maybe = near[directory] = protected.directory(directory)
            if maybe and protected.path(final):
                raise UnsafeWheel(
                    wheel, name, "would replace the environment's own interpreter or files"
                )
    for entry in layout.scripts:
        if protected.script_name(entry.name):
            raise UnsafeWheel(
                wheel,
                f"{layout.dist_info}/entry_points.txt",
                f"[{entry.section}_scripts] {entry.name!r} would replace the environment's "
                "own interpreter or launcher",
            )
