"""Helpers for the offline, mirror and bundle tests.

``run_without_network`` runs a command in a fresh network namespace (``unshare -n``): no
interface but a downed loopback, so not even a server on 127.0.0.1 can be reached. It fails
the test loudly when namespaces are unavailable; those tests are never skipped.
``plan_for_files`` writes a plan over real wheel files as if an index at ``base_url`` served
them (``<base_url>/files/<name>``), without the planner.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name, parse_wheel_filename

from fetchplan.schemas.plan import Artifact, IndexRef, Inputs, Plan, write_plan
from tests.support.hostile import CREATED, default_target

__all__ = ["plan_for_files", "run_without_network", "unshare_argv"]


def unshare_argv() -> list[str]:
    """``["unshare", "-n"]``, after checking it works here (else the test fails)."""
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.fail("unshare (util-linux) is not installed: the offline tests need it")
    probe = subprocess.run([unshare, "-n", "true"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        pytest.fail(
            "unshare -n does not work here (it needs root or unprivileged user namespaces): "
            + probe.stderr.strip()
        )
    return [unshare, "-n"]


def run_without_network(
    argv: Sequence[str], env: Mapping[str, str], cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` in a new network namespace and return the finished process."""
    return subprocess.run(
        [*unshare_argv(), *argv],
        capture_output=True,
        text=True,
        env=dict(env),
        cwd=cwd,
        timeout=timeout,
        check=False,
    )


def plan_for_files(
    path: Path,
    files: Sequence[Path],
    base_url: str,
    *,
    destination: str = "wheels",
    requested: Sequence[str] = (),
) -> Path:
    """Write a plan for the wheels ``files`` served at ``<base_url>/files/<name>``."""
    artifacts = []
    for file in files:
        name, version, _, _ = parse_wheel_filename(file.name)
        data = file.read_bytes()
        artifacts.append(
            Artifact(
                name=canonicalize_name(name),
                version=str(version),
                kind="wheel",
                filename=file.name,
                url=f"{base_url}/files/{file.name}",
                index=f"{base_url}/simple/",
                hashes={"sha256": hashlib.sha256(data).hexdigest()},
                hash_source="index",
                size=len(data),
                requested=canonicalize_name(name) in {canonicalize_name(r) for r in requested},
                destination=file.name,
            )
        )
    plan = Plan(
        created=CREATED,
        inputs=Inputs(requirements=tuple(requested) or ("demo",)),
        targets=(default_target(),),
        indexes=(IndexRef(url=f"{base_url}/simple/"),),
        destination=destination,
        artifacts=tuple(artifacts),
    )
    write_plan(path, plan)
    return path
