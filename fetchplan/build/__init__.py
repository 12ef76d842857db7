"""Building sdists (PEP 517): metadata for the planner, wheels for installing.

* :mod:`.source` — an sdist's build system (``[build-system]`` of its pyproject.toml, with the
  PEP 517/518 defaults) and its safe unpacking;
* :mod:`.backend` — the backend's hooks, run through ``pyproject_hooks`` in an isolated
  interpreter, failures turned into one-line errors;
* :mod:`.env` — an isolated build environment: a fresh virtual environment without pip, into
  which exactly the given, verified wheels are installed by fetchplan's own installer;
* :mod:`.prepare` — an sdist's metadata prepared by its backend, for the planner;
* :mod:`.sdists` — the sdists of a verified manifest built into wheels, from its files alone,
  for :func:`fetchplan.pipeline.install_from` and ``fetchplan run`` to install.

The package sits above the installer (a build environment is filled by it) and below the
planner; the installer knows no builds.
"""

from __future__ import annotations

from fetchplan.build.errors import BuildError

__all__ = ["BuildError"]
