"""A wheel whose own METADATA differs from the PEP 658 ``.metadata`` the plan was resolved from.

PEP 658 requires the two to be identical; pip refuses a mismatch once it holds the wheel. The
index here serves a ``.metadata`` file (with a matching advertised hash) that leaves out a
dependency or changes Requires-Python; ``fetch`` must fail that wheel with one line naming it,
list nothing unverified in the manifest, and keep the bytes it downloaded.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from fetchplan._coremeta import differences
from fetchplan.schemas.manifest import load_manifest
from tests.conftest import MakeIndex, MakeIndexServer, RunCli
from tests.support.wheels import Dist


def _serve_other_metadata(root: Path, filename: str, metadata: str) -> None:
    """Replace ``filename``'s ``.metadata`` file and every advertised digest of it."""
    sidecar = root / "files" / f"{filename}.metadata"
    old = hashlib.sha256(sidecar.read_bytes()).hexdigest()
    sidecar.write_text(metadata)
    new = hashlib.sha256(sidecar.read_bytes()).hexdigest()
    for page in (root / "simple").rglob("index.*"):
        page.write_text(page.read_text().replace(old, new))


@pytest.mark.parametrize(
    "case",
    [
        (Dist("app", "1.0"), "requires 'lib>=1'"),
        (Dist("app", "1.0", requires=["lib>=1"], requires_python=">=3.1"), "Requires-Python"),
        (Dist("app", "1.0", requires=["lib>=1"], extras={"x": ["lib>=2"]}), "extra 'x'"),
    ],
)
def test_fetch_refuses_a_wheel_whose_metadata_is_not_what_was_resolved(
    case: tuple[Dist, str],
    make_index: MakeIndex,
    index_server: MakeIndexServer,
    run_cli: RunCli,
    tmp_path: Path,
) -> None:
    served, said = case
    root = make_index([Dist("app", "1.0", requires=["lib>=1"]), Dist("lib", "1.0")])
    _serve_other_metadata(root, "app-1.0-py3-none-any.whl", served.metadata())
    server = index_server(root)
    planned = run_cli("plan", "app", "-i", server.index_url, "-o", "plan.json", "--dest", "wheels")
    assert planned.returncode == 0, planned.stderr
    plan = json.loads((tmp_path / "plan.json").read_text())
    app = next(a for a in plan["artifacts"] if a["name"] == "app")
    # The plan was resolved from the served .metadata file, not from the wheel.
    declared = [
        line.removeprefix("Requires-Dist: ")
        for line in served.metadata().splitlines()
        if line.startswith("Requires-Dist: ")
    ]
    assert app["metadata"].get("requires_dist", []) == declared

    out = run_cli("fetch", "plan.json", "--no-cache")
    assert out.returncode != 0
    lines = [line for line in out.stderr.splitlines() if "app-1.0-py3-none-any.whl" in line]
    assert len(lines) == 1, out.stderr
    assert said in lines[0] and "METADATA" in lines[0]
    assert "Traceback" not in out.stderr
    manifest = load_manifest(tmp_path / "wheels" / "manifest.json")
    assert "app-1.0-py3-none-any.whl" not in {a.filename for a in manifest.artifacts}
    # The pinned bytes stay: planning again from a good index need not download them again.
    assert (tmp_path / "wheels" / "app-1.0-py3-none-any.whl").is_file()


def test_fetch_accepts_metadata_that_differs_only_in_form(
    make_index: MakeIndex, index_server: MakeIndexServer, run_cli: RunCli, tmp_path: Path
) -> None:
    real = Dist("app", "1.0", requires=["Lib_X >= 1.0, <3", 'other ; python_version>="3"'])
    same = Dist("app", "1.0", requires=['other; python_version >= "3"', "lib-x<3,>=1.0"])
    root = make_index([real, Dist("lib-x", "1.0"), Dist("other", "1.0")])
    _serve_other_metadata(root, "app-1.0-py3-none-any.whl", same.metadata() + "A body.\n")
    server = index_server(root)
    planned = run_cli("plan", "app", "-i", server.index_url, "-o", "plan.json", "--dest", "wheels")
    assert planned.returncode == 0, planned.stderr
    out = run_cli("fetch", "plan.json", "--no-cache")
    assert out.returncode == 0, out.stderr
    assert len(load_manifest(tmp_path / "wheels" / "manifest.json").artifacts) == 3


def test_differences_name_each_side() -> None:
    recorded = {"requires_dist": ["a>=1", "b"], "requires_python": ">=3.8"}
    raw = b"Metadata-Version: 2.1\nName: x\nVersion: 1\nRequires-Dist: A >=1\nRequires-Dist: c\n\n"
    assert differences(recorded, raw) == [
        "requires 'c'",
        "does not require 'b'",
        "has Requires-Python '(none)', not '>=3.8'",
    ]
