"""An isolated build environment: a new virtual environment holding exactly the given wheels.

The environment is made with ``python -m venv --without-pip`` (no pip, no system
site-packages), and the wheels are installed by fetchplan's own installer, so every file is
checked against its expected sha256 and RECORD as for any other install. Nothing is fetched:
the caller hands over wheels it has verified or is about to have verified.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from fetchplan.install import TargetInterpreter, ensure_venv, install_wheels
from fetchplan.wheels import WheelToInstall

__all__ = ["BuildEnv", "add_to_build_env", "create_build_env", "unsatisfied"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BuildEnv:
    """A build environment: its interpreter and the projects installed in it."""

    python: Path
    interpreter: TargetInterpreter
    installed: Mapping[NormalizedName, str]


def create_build_env(
    directory: Path, wheels: Sequence[WheelToInstall], *, python: Path | None = None
) -> BuildEnv:
    """Create a virtual environment at ``directory`` with ``python`` and install ``wheels``.

    ``python`` defaults to the running interpreter. Raises the installer's errors (a wheel
    that does not match its expectations, or that this interpreter cannot use).
    """
    venv_python = ensure_venv(directory, python=python)
    interpreter = TargetInterpreter.query(venv_python)
    return add_to_build_env(
        BuildEnv(python=venv_python, interpreter=interpreter, installed={}), wheels
    )


def add_to_build_env(env: BuildEnv, wheels: Sequence[WheelToInstall]) -> BuildEnv:
    """Install further ``wheels`` into ``env`` (replacing other versions); return the new state."""
    if wheels:
        install_wheels(wheels, env.interpreter, compile=False)
        log.debug(
            "build environment %s: %s",
            env.interpreter.prefix,
            ", ".join(f"{w.name} {w.version}" for w in wheels),
        )
    installed = dict(env.installed)
    installed.update({w.name: w.version for w in wheels})
    return BuildEnv(python=env.python, interpreter=env.interpreter, installed=installed)


def _applies(marker: Marker | None, markers: Mapping[str, str]) -> bool:
    return marker is None or marker.evaluate({**markers, "extra": ""})


def unsatisfied(
    requirements: Iterable[Requirement],
    installed: Mapping[NormalizedName, str],
    markers: Mapping[str, str],
) -> list[Requirement]:
    """The ``requirements`` (markers evaluated with ``markers``) ``installed`` does not meet.

    Extras are not followed: they name further requirements the caller resolved already.
    """
    missing = []
    for requirement in requirements:
        if not _applies(requirement.marker, markers):
            continue
        have = installed.get(canonicalize_name(requirement.name))
        if have is None:
            missing.append(requirement)
            continue
        try:
            ok = requirement.specifier.contains(Version(have), prereleases=True)
        except InvalidVersion:
            ok = False
        if not ok:
            missing.append(requirement)
    return missing
