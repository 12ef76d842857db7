"""What an install would do, without doing it (``fetchplan install --dry-run``).

The same decisions as :class:`~fetchplan.install.core.StagedInstall` makes, from what the
environment holds now: a project installed at the wanted version (once) is left alone unless
reinstalling, another version is replaced, a missing one installed; with ``exact``, what the
manifest does not list is removed, the installer tools apart. Nothing is written, nothing
locked: the environment is only read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from fetchplan.install.core import INSTALLER_TOOLS, Action, InstallReport, ProjectOutcome
from fetchplan.install.environment import InstalledDist, installed_distributions
from fetchplan.install.interpreter import TargetInterpreter

__all__ = ["preview_changes", "preview_install"]


def _same_version(a: str, b: str) -> bool:
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a == b


def preview_changes(
    wanted: Sequence[tuple[str, str]],
    present: Mapping[NormalizedName, Sequence[InstalledDist]],
    *,
    reinstall: bool = False,
    exact: bool = False,
) -> tuple[ProjectOutcome, ...]:
    """The outcome per project of installing ``wanted`` (name, version) over ``present``,
    in ``wanted``'s order, then (``exact``) the removals by name."""
    outcomes: list[ProjectOutcome] = []
    names: set[NormalizedName] = set()
    for raw_name, version in wanted:
        name = canonicalize_name(raw_name)
        names.add(name)
        old = list(present.get(name, ()))
        action: Action = "installed"
        if old:
            same = all(_same_version(d.version, version) for d in old)
            if same and len(old) == 1 and not reinstall:
                action = "unchanged"
            else:
                action = "reinstalled" if same else "replaced"
        previous = () if action == "unchanged" else tuple(d.version for d in old)
        outcomes.append(
            ProjectOutcome(name=name, version=version, action=action, previous=previous)
        )
    if exact:
        for name, dists in sorted(present.items()):
            if name in names or name in INSTALLER_TOOLS or not dists:
                continue
            versions = tuple(d.version for d in dists)
            outcomes.append(
                ProjectOutcome(name=name, version=versions[0], action="removed", previous=versions)
            )
    return tuple(outcomes)


def preview_install(
    wanted: Sequence[tuple[str, str]],
    target: TargetInterpreter,
    *,
    reinstall: bool = False,
    exact: bool = False,
) -> InstallReport:
    """:func:`preview_changes` against what ``target``'s environment holds now."""
    return InstallReport(
        interpreter=target.executable,
        prefix=target.prefix,
        projects=preview_changes(
            wanted, installed_distributions(target), reinstall=reinstall, exact=exact
        ),
    )
