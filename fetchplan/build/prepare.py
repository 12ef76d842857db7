"""Preparing an sdist's core metadata as a build frontend would: what the planner needs of a
build when the sdist's metadata is dynamic.

The planner resolves and fetches the build requirements (wheels only, for this interpreter);
here a build environment gets exactly those wheels (:mod:`fetchplan.build.env`), the backend
is asked for more (``get_requires_for_build_wheel``, which the caller resolves the same
way), then ``prepare_metadata_for_build_wheel``. Every failure is a :class:`BuildError`, the
installer's own (a build dependency's wheel refused) included: the planner knows builds, not
the installer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from packaging.requirements import Requirement

from fetchplan.build.backend import Backend
from fetchplan.build.env import add_to_build_env, create_build_env, unsatisfied
from fetchplan.build.errors import BuildError
from fetchplan.build.source import BuildSystem, unpack_sdist
from fetchplan.install import InstallError
from fetchplan.wheels import WheelToInstall

__all__ = ["MoreWheels", "prepare_metadata"]

MoreWheels = Callable[[tuple[Requirement, ...]], Sequence[WheelToInstall]]
"""Given what the backend asks for beyond ``[build-system] requires``, the wheels that meet
it together with the first ones (those already installed are not installed again)."""


def prepare_metadata(
    sdist: Path,
    filename: str,
    build_system: BuildSystem,
    work: Path,
    *,
    wheels: Sequence[WheelToInstall],
    more: MoreWheels,
    markers: Mapping[str, str],
) -> tuple[bytes, tuple[Requirement, ...]]:
    """The ``METADATA`` the backend of ``sdist`` (named ``filename``) prepares, and what it
    asked for beyond its ``[build-system] requires``.

    ``work`` is an empty private directory (the environment, the source tree and the
    metadata go there); ``wheels`` are the build requirements' wheels, ``more`` is called
    when the backend asks for requirements they do not meet (``markers`` evaluate them).
    """
    try:
        env = create_build_env(work / "env", wheels)
        source = unpack_sdist(sdist, filename, work / "src")
        backend = Backend(source, build_system, env.python, where=filename)
        backend_requires = backend.get_requires_for_build_wheel()
        if unsatisfied(backend_requires, env.installed, markers):
            added = [w for w in more(backend_requires) if env.installed.get(w.name) != w.version]
            env = add_to_build_env(env, added)
        return backend.prepare_metadata(work / "metadata"), backend_requires
    except InstallError as exc:
        raise BuildError(str(exc)) from None
