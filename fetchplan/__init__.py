"""fetchplan: plan, fetch and install Python requirements as three inspectable steps.

The library's public API, for tool authors (see the README)::

    import fetchplan

    fetchplan.plan(fetchplan.PlanOptions(requirements=["attrs"], output=Path("plan.json")))
    fetched = fetchplan.fetch(Path("plan.json"))
    fetchplan.install_from(fetched.manifest_path, fetchplan.venv_target(Path("env")))

* :func:`plan` — resolve requirements into a plan file (index pages and metadata only);
* :func:`fetch` — download and verify a plan's artifacts, write the verified manifest;
* :func:`install_from` — install what an environment needs of a verified manifest or bundle;
* :func:`run` — the three in one call, overlapped as ``fetchplan run`` does them;
* :class:`PlanOptions`, :class:`FetchOptions`, :class:`InstallOptions` — their settings;
  :func:`venv_target` — a virtual environment to install into, made when missing;
* :class:`FetchplanError` — the root of every error the library raises.

The stages themselves are :mod:`fetchplan.planner`, :mod:`fetchplan.executor` and
:mod:`fetchplan.install`, wired together by :mod:`fetchplan.pipeline`. Each name here is
imported when first used: ``import fetchplan`` (which every module of the package runs)
costs nothing, and a machine that only installs never imports the planner.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fetchplan.errors import FetchplanError
    from fetchplan.executor import FetchOptions
    from fetchplan.pipeline import (
        InstallOptions,
        RunResult,
        fetch,
        install_from,
        plan,
        run,
        venv_target,
    )
    from fetchplan.planner.api import PlanOptions

__version__ = "0.1.0"

_WHERE = {
    "FetchOptions": "fetchplan.executor",
    "FetchplanError": "fetchplan.errors",
    "InstallOptions": "fetchplan.pipeline",
    "PlanOptions": "fetchplan.planner.api",
    "RunResult": "fetchplan.pipeline",
    "fetch": "fetchplan.pipeline",
    "install_from": "fetchplan.pipeline",
    "plan": "fetchplan.pipeline",
    "run": "fetchplan.pipeline",
    "venv_target": "fetchplan.pipeline",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])


__all__ = [
    "FetchOptions",
    "FetchplanError",
    "InstallOptions",
    "PlanOptions",
    "RunResult",
    "__version__",
    "fetch",
    "install_from",
    "plan",
    "run",
    "venv_target",
]
