"""The installer: installs the wheels of a verified manifest into a target interpreter.

It knows no builds: sdists the interpreter needs are built into wheels first, offline, from
the plan's build dependencies (:mod:`fetchplan.build.sdists`, which
:func:`fetchplan.pipeline.install_from` calls), and hand their wheels over.

Library entry points: :func:`install_manifest` (a manifest of wheels),
:func:`wheels_for_interpreter` (the manifest and plan checks alone) and :func:`install_wheels`
(install already-described wheels) and :class:`StagedInstall` (stage wheels as they are
verified, commit them at the end). Wheels are unpacked once into a :class:`WheelStore` and
linked from there into each environment (:mod:`fetchplan.install.link`). The target is a
:class:`TargetInterpreter`, queried from the interpreter itself; :func:`ensure_venv` makes a
virtual environment when asked to.
"""

from __future__ import annotations

from fetchplan.install.core import (
    INSTALLER_TOOLS,
    Action,
    InstallReport,
    ProjectOutcome,
    StagedInstall,
    install_manifest,
    install_wheels,
    wheels_for_interpreter,
)
from fetchplan.install.errors import InstallError, InterpreterError, ManifestMismatch, UnsafeWheel
from fetchplan.install.interpreter import TargetInterpreter, ensure_venv, venv_python
from fetchplan.install.link import LinkMode
from fetchplan.install.selection import WheelToInstall
from fetchplan.install.store import WheelStore, default_store_dir

__all__ = [
    "INSTALLER_TOOLS",
    "Action",
    "InstallError",
    "InstallReport",
    "InterpreterError",
    "LinkMode",
    "ManifestMismatch",
    "ProjectOutcome",
    "StagedInstall",
    "TargetInterpreter",
    "UnsafeWheel",
    "WheelStore",
    "WheelToInstall",
    "default_store_dir",
    "ensure_venv",
    "install_manifest",
    "install_wheels",
    "venv_python",
    "wheels_for_interpreter",
]
