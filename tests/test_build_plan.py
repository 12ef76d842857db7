"""The plan builder is pure: resolutions, facts and fields in, a plan out, no file or network.

The resolutions are built by hand here (two targets, one of them with an sdist build), so
these tests show what :func:`fetchplan.planner.build.build_plan` does with its values alone.
"""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

from fetchplan.errors import InputError
from fetchplan.planner.build import ArtifactFacts, Role, build_plan
from fetchplan.planner.candidates import Candidate, DistMetadata
from fetchplan.planner.context import TargetResolution
from fetchplan.planner.index import Link, link_from_filename
from fetchplan.planner.resolve import Resolution
from fetchplan.planner.target import TargetEnv, make_target
from fetchplan.schemas import dumps_document
from fetchplan.schemas.plan import Artifact, IndexRef, Inputs, Plan

INDEX = "https://index.invalid/simple/"
ARM = make_target(python_version="3.12", platforms=("manylinux_2_28_aarch64",))
X86 = make_target(python_version="3.11", platforms=("manylinux_2_28_x86_64",))


def _link(filename: str, host: str = "files.invalid") -> Link:
    link = link_from_filename(filename, f"https://{host}/{filename}", INDEX)
    assert link is not None
    return link


def _resolved(
    target: TargetEnv,
    files: Mapping[str, tuple[str, ...]],
    *,
    requested: tuple[str, ...] = ("app",),
    hosts: Mapping[str, str] | None = None,
) -> TargetResolution:
    """A resolution of ``target`` choosing each file of ``files`` (file name -> its
    requirements)."""
    pins: dict[NormalizedName, Candidate] = {}
    metadata: dict[NormalizedName, DistMetadata] = {}
    for filename, requires in files.items():
        link = _link(filename, (hosts or {}).get(filename, "files.invalid"))
        name = canonicalize_name(filename.split("-")[0])
        pins[name] = Candidate(name=name, version=link.version, link=link)
        metadata[name] = DistMetadata(
            name=name,
            version=link.version,
            requires_dist=tuple(Requirement(text) for text in requires),
        )
    resolution = Resolution(
        pins=pins,
        extras={},
        requested=frozenset(canonicalize_name(n) for n in requested),
        rounds=1,
    )
    return TargetResolution(target=target, resolution=resolution, metadata=metadata)


def _facts(*filenames: str) -> dict[str, ArtifactFacts]:
    return {
        name: ArtifactFacts(hashes={"sha256": f"{i:064x}"}, hash_source="index", size=100 + i)
        for i, name in enumerate(filenames)
    }


def _plan(roles: list[Role], targets: tuple[TargetEnv, ...]) -> Plan:
    return build_plan(
        roles=roles,
        facts=_facts("app-1.0-py3-none-any.whl", "lib-2.0.tar.gz", "tool-3.0-py3-none-any.whl"),
        targets=targets,
        inputs=Inputs(requirements=("app",)),
        indexes=[IndexRef(url=INDEX, kind="index")],
        destination="wheels",
        created="2026-01-01T00:00:00Z",
    )


def _roles() -> list[Role]:
    app = {"app-1.0-py3-none-any.whl": ("lib>=2",), "lib-2.0.tar.gz": ()}
    return [
        Role(_resolved(ARM, app)),
        Role(_resolved(X86, app)),
        # x86's sdist of lib builds with tool; nothing installs tool.
        Role(_resolved(X86, {"tool-3.0-py3-none-any.whl": ()}, requested=()), build=True),
    ]


def test_one_artifact_per_file_marked_with_the_targets_it_serves() -> None:
    plan = _plan(_roles(), (ARM, X86))
    assert [t.name for t in plan.targets] == [ARM.name, X86.name]
    by_name: dict[str, Artifact] = {a.name: a for a in plan.artifacts}
    assert [a.filename for a in plan.artifacts] == [
        "app-1.0-py3-none-any.whl",
        "lib-2.0.tar.gz",
        "tool-3.0-py3-none-any.whl",
    ]
    app, lib, tool = by_name["app"], by_name["lib"], by_name["tool"]
    assert app.requested and not lib.requested and not tool.requested
    assert [(d.name, d.requirement) for d in app.dependencies] == [("lib", "lib>=2")]
    assert app.targets == (ARM.name, X86.name) and app.build_targets is None
    assert not app.build_dependency
    assert tool.build_dependency and tool.targets == (X86.name,)
    assert (app.hashes, app.hash_source, app.size) == ({"sha256": f"{0:064x}"}, "index", 100)
    assert lib.kind == "sdist" and lib.size == 101
    assert (app.version, lib.version, tool.version) == ("1.0", "2.0", "3.0")


def test_a_single_target_plan_names_no_targets_on_its_artifacts() -> None:
    roles = [Role(_resolved(ARM, {"app-1.0-py3-none-any.whl": ()}))]
    plan = _plan(roles, (ARM,))
    assert [a.targets for a in plan.artifacts] == [None]


def test_the_same_values_give_the_same_bytes_and_a_valid_plan() -> None:
    first = dumps_document(_plan(_roles(), (ARM, X86)).to_dict(), "plan", "plan.json")
    again = dumps_document(_plan(_roles()[::-1], (ARM, X86)).to_dict(), "plan", "plan.json")
    assert first == again


def test_two_files_of_one_name_from_different_places_are_an_error() -> None:
    roles = [
        Role(_resolved(ARM, {"app-1.0-py3-none-any.whl": ()})),
        Role(
            _resolved(
                X86,
                {"app-1.0-py3-none-any.whl": ()},
                hosts={"app-1.0-py3-none-any.whl": "mirror.invalid"},
            )
        ),
    ]
    with pytest.raises(InputError, match=r"^app-1\.0-py3-none-any\.whl: two different files"):
        _plan(roles, (ARM, X86))
