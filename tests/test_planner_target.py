"""Target environments: markers and tag order for this interpreter and for other machines."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from packaging.markers import Marker
from packaging.tags import Tag, sys_tags

from fetchplan.errors import InputError
from fetchplan.planner.candidates import FormatControl, select_candidates
from fetchplan.planner.index import Link, link_from_filename
from fetchplan.planner.target import expand_platform, host_target, make_target


def test_host_target_is_this_interpreter() -> None:
    target = host_target()
    assert target.tags == tuple(sys_tags())
    assert target.markers["python_full_version"].startswith(
        f"{sys.version_info.major}.{sys.version_info.minor}"
    )
    assert make_target() == target
    plan_target = target.to_plan()
    assert plan_target.tags[0] == str(target.tags[0])
    assert list(plan_target.markers) == sorted(plan_target.markers)


def test_manylinux_expands_to_older_glibc_and_legacy_aliases() -> None:
    expanded = expand_platform("manylinux_2_28_x86_64")
    assert expanded[0] == "manylinux_2_28_x86_64"
    assert "manylinux2014_x86_64" in expanded
    assert "manylinux_2_5_x86_64" in expanded and "manylinux1_x86_64" in expanded
    assert expanded.index("manylinux_2_17_x86_64") < expanded.index("manylinux2014_x86_64")
    assert "manylinux_2_29_x86_64" not in expanded
    assert expand_platform("manylinux2014_aarch64")[0] == "manylinux_2_17_aarch64"
    assert expand_platform("musllinux_1_2_x86_64") == [
        "musllinux_1_2_x86_64",
        "musllinux_1_1_x86_64",
        "musllinux_1_0_x86_64",
    ]
    assert "macosx_10_9_x86_64" in expand_platform("macosx_11_0_x86_64")
    assert expand_platform("win_amd64") == ["win_amd64"]


def test_other_machine_markers_and_tags() -> None:
    target = make_target(python_version="3.12", platforms=["win_amd64"])
    assert target.name == "cp312-win_amd64"
    markers = target.markers
    assert markers["sys_platform"] == "win32"
    assert markers["platform_system"] == "Windows"
    assert markers["os_name"] == "nt"
    assert markers["platform_machine"] == "AMD64"
    assert markers["python_version"] == "3.12"
    assert markers["python_full_version"] == "3.12.0"
    assert target.tags[0] == Tag("cp312", "cp312", "win_amd64")
    assert Tag("py3", "none", "any") in target.tags
    assert Tag("cp312", "abi3", "win_amd64") in target.tags
    assert not any(t.platform.startswith("manylinux") for t in target.tags)
    assert target.evaluate(Marker("sys_platform == 'win32' and python_version >= '3.12'"))
    assert not target.evaluate(Marker("extra == 'x'"))
    assert target.evaluate(Marker("extra == 'x'"), extras=["x"])


def test_python_version_forms_and_requires_python() -> None:
    target = make_target(python_version="311", platforms=["linux_x86_64"])
    assert target.markers["python_version"] == "3.11"
    assert target.python_matches(">=3.8")
    assert not target.python_matches(">=3.12")
    assert target.python_matches("not a specifier")  # unparseable: like pip, not a reason
    patch = make_target(python_version="3.11.4", platforms=["linux_x86_64"])
    assert patch.markers["python_full_version"] == "3.11.4"
    with pytest.raises(InputError, match="--python-version"):
        make_target(python_version="three")


def test_pypy_target_with_explicit_abi() -> None:
    target = make_target(
        python_version="3.10",
        implementation="pp",
        abis=["pypy310_pp73"],
        platforms=["manylinux_2_17_x86_64"],
    )
    assert target.markers["implementation_name"] == "pypy"
    assert target.markers["platform_python_implementation"] == "PyPy"
    assert target.tags[0] == Tag("pp310", "pypy310_pp73", "manylinux_2_17_x86_64")


def _link(filename: str, **fields: Any) -> Link:
    link = link_from_filename(filename, f"https://f.test/{filename}", "https://i.test/", **fields)
    assert link is not None
    return link


def test_best_file_per_version_and_reasons() -> None:
    target = make_target(python_version="3.11", platforms=["manylinux_2_28_x86_64"])
    links = [
        _link("fast-1.0-py3-none-any.whl"),
        _link("fast-1.0-cp311-cp311-manylinux_2_17_x86_64.whl"),
        _link("fast-1.0-cp311-cp311-manylinux_2_34_x86_64.whl"),
        _link("fast-1.0.tar.gz"),
        _link("fast-2.0-cp311-cp311-win_amd64.whl"),
        _link("fast-2.0.tar.gz"),
        _link("fast-3.0-py3-none-any.whl", requires_python=">=3.12"),
        _link("fast-4.0-cp311-cp311-win_amd64.whl"),
    ]
    found = select_candidates(links[0].name, links, target)
    chosen = {str(c.version): c.link.filename for c in found.candidates if c.link is not None}
    assert chosen == {
        "2.0": "fast-2.0.tar.gz",
        "1.0": "fast-1.0-cp311-cp311-manylinux_2_17_x86_64.whl",
    }
    reasons = {str(r.version): r.reasons for r in found.rejected}
    assert reasons == {
        "4.0": ("no wheel for the target's tags",),
        "3.0": ("requires Python >=3.12",),
    }
    only = select_candidates(
        links[0].name,
        links,
        target,
        formats=FormatControl(only_binary=frozenset({":all:"})),
    )
    assert [str(c.version) for c in only.candidates] == ["1.0"]
    assert "binaries are required" in str(next(r for r in only.rejected if str(r.version) == "2.0"))


def test_hash_constraints_reject_other_files() -> None:
    target = make_target(python_version="3.11", platforms=["linux_x86_64"])
    good, bad = "1" * 64, "2" * 64
    links = [
        _link("demo-1.0-py3-none-any.whl", hashes={"sha256": bad}),
        _link("demo-1.1-py3-none-any.whl", hashes={"sha256": good}),
        _link("demo-1.2-py3-none-any.whl"),
    ]
    found = select_candidates(
        links[0].name,
        links,
        target,
        allowed_hashes={"sha256": frozenset({good})},
    )
    assert [str(c.version) for c in found.candidates] == ["1.2", "1.1"]
    assert "--hash" in str(found.rejected[0])
