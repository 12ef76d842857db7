"""Hostile wheels: each is refused, naming the wheel and member, before anything is written."""

from __future__ import annotations

import base64
import hashlib
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fetchplan.install import InstallError, TargetInterpreter, UnsafeWheel, install_manifest
from tests.support.hostile import (
    Member,
    make_fetched_dest,
    new_venv,
    raw_wheel,
    record_hash,
    snapshot,
    standard_members,
)
from tests.support.wheels import Dist, build_wheel

FILENAME = "evil-1.0-py3-none-any.whl"
DIST_INFO = "evil-1.0.dist-info"


def _with(*extra: Member, **kw: object) -> Callable[[Path], Path]:
    def build(directory: Path) -> Path:
        members = [*standard_members("evil", "1.0"), *extra]
        return raw_wheel(directory, FILENAME, members, dist_info=DIST_INFO, **kw)  # type: ignore[arg-type]

    return build


def _entry_points(text: str) -> Callable[[Path], Path]:
    return _with(Member(f"{DIST_INFO}/entry_points.txt", text.encode()))


def _metadata(name: str, version: str) -> Callable[[Path], Path]:
    def build(directory: Path) -> Path:
        meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\n"
        members = standard_members("evil", "1.0", metadata=meta)
        return raw_wheel(directory, FILENAME, members, dist_info=DIST_INFO)

    return build


def _script_lying_in_record(name: str, data: bytes) -> tuple[Callable[[Path], Path], str, str]:
    """An executable script whose RECORD row gives the right size and another file's hash."""
    path = f"evil-1.0.data/scripts/{name}"
    row = f"{path},{record_hash(data[::-1])},{len(data)}"
    build = _with(Member(path, data, mode=stat.S_IFREG | 0o755), record_rows={path: row})
    return build, f"'{path}'", "hash or size differs from RECORD"


def _renamed(filename: str) -> Callable[[Path], Path]:
    def build(directory: Path) -> Path:
        path = raw_wheel(directory, "tmp.whl", standard_members("evil", "1.0"), dist_info=DIST_INFO)
        return path.rename(directory / filename)

    return build


def _other_dist_info(directory: Path) -> Path:
    members = standard_members("evil", "1.0")
    members = [Member(m.name.replace(DIST_INFO, "good-1.0.dist-info"), m.data) for m in members]
    return raw_wheel(directory, FILENAME, members, dist_info="good-1.0.dist-info")


PAYLOAD = b"import os\n"
SCRIPT = b"#!python\nprint('tool')\n"
SHELL = b"#!/bin/sh\necho tool\n"
SHA512_OF_OTHER = "sha512=" + base64.urlsafe_b64encode(
    hashlib.sha512(b"other data").digest()
).rstrip(b"=").decode("ascii")
CASES: dict[str, tuple[Callable[[Path], Path], str, str]] = {
    "dotdot-member": (_with(Member("../escape.py", PAYLOAD)), "'../escape.py'", "escapes"),
    "nested-dotdot": (_with(Member("evil/../../x.py", PAYLOAD)), "'evil/../../x.py'", "escapes"),
    "absolute-member": (_with(Member("/tmp/evil.py", PAYLOAD)), "'/tmp/evil.py'", "absolute"),
    "data-scheme-dotdot": (
        _with(Member("evil-1.0.data/purelib/../../../x.py", PAYLOAD)),
        "'evil-1.0.data/purelib/../../../x.py'",
        "escapes",
    ),
    "data-unknown-scheme": (
        _with(Member("evil-1.0.data/etc/passwd", PAYLOAD)),
        "'evil-1.0.data/etc/passwd'",
        "not in a known scheme",
    ),
    "backslash": (_with(Member("evil\\..\\..\\x.py", PAYLOAD)), "x.py", "backslash"),
    "drive-letter": (_with(Member("C:/x.py", PAYLOAD)), "'C:/x.py'", "drive letter"),
    "control-character": (
        _with(Member("evil/bad\x1fname.py", PAYLOAD)),
        "'evil/bad\\x1fname.py'",
        "not normalised",
    ),
    "record-entry-escapes": (
        _with(extra_record_rows=[f"../../outside.py,{record_hash(PAYLOAD)},{len(PAYLOAD)}"]),
        "'../../outside.py'",
        "RECORD entry",
    ),
    "record-absolute-entry": (
        _with(extra_record_rows=["/etc/passwd,,"]),
        "'/etc/passwd'",
        "RECORD entry: absolute",
    ),
    "record-hash-mismatch": (
        _with(
            Member("evil/payload.py", PAYLOAD),
            record_rows={"evil/payload.py": f"evil/payload.py,{record_hash(b'other')},10"},
        ),
        "'evil/payload.py'",
        "hash or size differs from RECORD",
    ),
    # A script whose shebang is rewritten is hashed as it is read; one that is not, and any
    # other member, by the writer: a mismatch is caught either way.
    "script-shebang-hash-mismatch": _script_lying_in_record("tool", SCRIPT),
    "script-plain-hash-mismatch": _script_lying_in_record("tool.sh", SHELL),
    "record-sha512-mismatch": (
        _with(
            Member("evil/payload.py", PAYLOAD),
            record_rows={"evil/payload.py": f"evil/payload.py,{SHA512_OF_OTHER},10"},
        ),
        "'evil/payload.py'",
        "hash or size differs from RECORD",
    ),
    "record-size-mismatch": (
        _with(
            Member("evil/payload.py", PAYLOAD),
            record_rows={"evil/payload.py": f"evil/payload.py,{record_hash(PAYLOAD)},999"},
        ),
        "'evil/payload.py'",
        "size in RECORD (999)",
    ),
    "record-missing-member": (
        _with(Member("evil/hidden.py", PAYLOAD), unrecorded={"evil/hidden.py"}),
        "'evil/hidden.py'",
        "not listed in RECORD",
    ),
    "record-weak-hash": (
        _with(
            Member("evil/payload.py", PAYLOAD),
            record_rows={"evil/payload.py": "evil/payload.py,md5=1B2M2Y8AsgTpgAmY7PhCfg,10"},
        ),
        "'evil/payload.py'",
        "not a usable hash",
    ),
    "symlink": (
        _with(Member("evil/link", b"/etc/passwd", mode=stat.S_IFLNK | 0o777)),
        "'evil/link'",
        "symbolic link",
    ),
    "script-name-slash": (
        _entry_points("[console_scripts]\nsub/tool = evil:main\n"),
        "entry_points.txt",
        "'sub/tool' would leave the scripts directory",
    ),
    "script-name-dotdot": (
        _entry_points("[gui_scripts]\n..tool = evil:main\n"),
        "entry_points.txt",
        "would leave the scripts directory",
    ),
    "script-name-backslash": (
        _entry_points("[console_scripts]\n..\\tool = evil:main\n"),
        "entry_points.txt",
        "would leave the scripts directory",
    ),
    "metadata-name": (_metadata("good", "1.0"), "METADATA", "says good 1.0, expected evil 1.0"),
    "metadata-version": (_metadata("evil", "2.0"), "METADATA", "says evil 2.0, expected evil 1.0"),
    "dist-info-of-another-project": (_other_dist_info, "good-1.0.dist-info", "does not match"),
}


@pytest.fixture(scope="module")
def shared_venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TargetInterpreter]:
    # Read-only for every test here: each asserts the environment stays as it was.
    yield TargetInterpreter.query(new_venv(tmp_path_factory.mktemp("hostile") / "venv"))


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_wheel_refused_before_writing(
    case: str, tmp_path: Path, shared_venv: TargetInterpreter
) -> None:
    build, member, reason = CASES[case]
    dest = tmp_path / "dest"
    hostile = build(dest)
    good = build_wheel(dest, Dist("aaa-good", "1.0"))
    manifest = make_fetched_dest(tmp_path, [good, hostile], requested={"aaa-good"})
    before = snapshot(Path(shared_venv.prefix))
    with pytest.raises(UnsafeWheel) as info:
        install_manifest(manifest, shared_venv)
    message = str(info.value)
    assert message.startswith(FILENAME), message
    assert member in message and reason in message, message
    assert "\n" not in message
    assert snapshot(Path(shared_venv.prefix)) == before


@pytest.mark.parametrize(
    ("filename", "reason"),
    [
        ("evil-2.0-py3-none-any.whl", "file name says evil 2.0, expected evil 1.0"),
        ("good-1.0-py3-none-any.whl", "file name says good 1.0, expected evil 1.0"),
    ],
)
def test_wheel_file_name_disagreeing_with_manifest(
    filename: str, reason: str, tmp_path: Path, shared_venv: TargetInterpreter
) -> None:
    # Plan and manifest say evil 1.0, as the wheel's contents do; only its file name differs.
    wheel = _renamed(filename)(tmp_path / "dest")
    fields = {filename: {"name": "evil", "version": "1.0"}}
    manifest = make_fetched_dest(tmp_path, [wheel], artifact_fields=fields)
    before = snapshot(Path(shared_venv.prefix))
    with pytest.raises(UnsafeWheel) as info:
        install_manifest(manifest, shared_venv)
    assert str(info.value) == f"{filename}: {reason}"
    assert snapshot(Path(shared_venv.prefix)) == before


def test_truncated_wheel_is_refused(tmp_path: Path, shared_venv: TargetInterpreter) -> None:
    dest = tmp_path / "dest"
    path = build_wheel(dest, Dist("evil", "1.0"))
    path.write_bytes(path.read_bytes()[:-40])
    manifest = make_fetched_dest(tmp_path, [path])
    before = snapshot(Path(shared_venv.prefix))
    with pytest.raises(InstallError, match=FILENAME):
        install_manifest(manifest, shared_venv)
    assert snapshot(Path(shared_venv.prefix)) == before


def test_oversized_metadata_is_not_read(
    tmp_path: Path, shared_venv: TargetInterpreter, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fetchplan.install import wheel as wheel_module

    monkeypatch.setattr(wheel_module, "_MAX_METADATA_SIZE", 20)
    manifest = make_fetched_dest(tmp_path, [_with()(tmp_path / "dest")])
    before = snapshot(Path(shared_venv.prefix))
    with pytest.raises(UnsafeWheel) as info:
        install_manifest(manifest, shared_venv)
    assert str(info.value).startswith(f"{FILENAME}: '{DIST_INFO}/METADATA': implausibly large")
    assert snapshot(Path(shared_venv.prefix)) == before


@settings(max_examples=500, derandomize=True, deadline=None)
@given(st.text(alphabet="ab./\\\x00\x1fC: é", max_size=12))
def test_member_path_fast_check_agrees_with_the_full_one(path: str) -> None:
    """The one-regex acceptance of plain member paths accepts exactly what the full check
    accepts, and refuses with the full check's reason."""
    from fetchplan.install.wheel import _member_path_problem, check_member_path

    assert check_member_path(path) == _member_path_problem(path)
