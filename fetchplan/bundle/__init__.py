"""Bundles: a plan, its verified manifest, the files and a static index, carried offline.

Library entry points::

    result = make_bundle(plan_path, Path("bundle/"), FetchOptions(...))  # or "bundle.tar"
    report = verify_bundle(Path("bundle/"))                            # or the tar
    with open_bundle(Path("bundle.tar")) as opened:                    # extracted, checked
        report = check_bundle(opened)
    report = install_from(Path("bundle.tar"), target)                  # fetchplan.pipeline

Modules: ``layout`` (names, index pages and README, pure), ``make`` (runs the executor and
writes the rest), ``archive`` (deterministic tar out, defensive tar in), ``verify``.
This package may import the executor and the installer, never the planner: bundles are
verified and installed on machines that have no network and few dependencies.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fetchplan.bundle.archive import OpenedBundle, extract_tar, open_bundle, write_tar
    from fetchplan.bundle.errors import BundleError, BundleInvalid
    from fetchplan.bundle.layout import render_index, render_readme
    from fetchplan.bundle.make import BuildLocal, BundleResult, make_bundle
    from fetchplan.bundle.verify import VerifyReport, check_bundle, verify_bundle

# Each name is imported from its module when first asked for: installing from a bundle needs
# neither make's executor nor requests (a quarter of a second of start-up).
_WHERE = {
    "OpenedBundle": "archive",
    "extract_tar": "archive",
    "open_bundle": "archive",
    "write_tar": "archive",
    "BundleError": "errors",
    "BundleInvalid": "errors",
    "render_index": "layout",
    "render_readme": "layout",
    "BuildLocal": "make",
    "BundleResult": "make",
    "make_bundle": "make",
    "VerifyReport": "verify",
    "check_bundle": "verify",
    "verify_bundle": "verify",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


__all__ = [
    "BuildLocal",
    "BundleError",
    "BundleInvalid",
    "BundleResult",
    "OpenedBundle",
    "VerifyReport",
    "check_bundle",
    "extract_tar",
    "make_bundle",
    "open_bundle",
    "render_index",
    "render_readme",
    "verify_bundle",
    "write_tar",
]
