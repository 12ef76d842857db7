"""Requirements files: table-driven cases under tests/data/reqfiles/.

Each directory holds a ``requirements.txt`` (plus the files it includes) and ``expected.json``
with the requirements, constraints and non-default options it must parse to (``{dir}`` stands
for the case directory, ``env`` for the environment). ``errors.json`` lists broken inputs with
the exact one-line message each must raise.
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement

from fetchplan.errors import InputError
from fetchplan.planner.reqfile import (
    ParsedRequirement,
    RequirementOptions,
    RequirementSet,
    merge,
    parse_requirement_string,
    parse_requirements_file,
    parse_requirements_text,
)

DATA = Path(__file__).parent / "data" / "reqfiles"
CASES = sorted(p.name for p in DATA.iterdir() if (p / "expected.json").is_file())
ERRORS = json.loads((DATA / "errors.json").read_text())


def _requirement_dict(parsed: ParsedRequirement) -> dict[str, Any]:
    item: dict[str, Any] = {"requirement": str(parsed.requirement), "source": parsed.source}
    if parsed.hashes:
        item["hashes"] = {algo: list(digests) for algo, digests in parsed.hashes.items()}
    if parsed.constraint:
        item["constraint"] = True
    return item


def _options_dict(options: RequirementOptions) -> dict[str, Any]:
    default = RequirementOptions()
    result: dict[str, Any] = {}
    for f in fields(RequirementOptions):
        if not f.compare:  # origins: test_options_trace_their_values_to_lines
            continue
        value = getattr(options, f.name)
        if value != getattr(default, f.name):
            result[f.name] = [list(v) for v in value] if f.name == "format_ops" else value
            if isinstance(value, tuple) and f.name != "format_ops":
                result[f.name] = list(value)
    return result


@pytest.mark.parametrize("case", CASES)
def test_case(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = DATA / case
    text = (directory / "expected.json").read_text().replace("{dir}", str(directory))
    expected = json.loads(text)
    monkeypatch.chdir(directory)
    result = parse_requirements_file(Path("requirements.txt"), environ=expected.pop("env", {}))
    allowed = expected["options"].pop("allowed", {})
    assert [_requirement_dict(r) for r in result.requirements] == expected["requirements"]
    assert [_requirement_dict(r) for r in result.constraints] == expected["constraints"]
    assert _options_dict(result.options) == expected["options"]
    for project, formats in allowed.items():
        assert result.options.allowed_formats(project) == frozenset(formats), project


def test_options_trace_their_values_to_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(DATA)
    result = parse_requirements_file(Path("nested/requirements.txt"))
    wheels = str(DATA / "nested" / "sub" / "wheels")
    assert dict(result.options.origins) == {wheels: "nested/sub/more.txt:4: --find-links"}
    merged = merge(result, parse_requirements_file(Path("options/requirements.txt")))
    assert dict(merged.options.origins)[wheels] == "nested/sub/more.txt:4: --find-links"
    assert "options/requirements.txt:1: --index-url" in dict(merged.options.origins).values()


def test_sources_name_the_file_as_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(DATA)
    result = parse_requirements_file(Path("nested/requirements.txt"))
    assert [r.source for r in result.constraints] == [
        "nested/pins/constraints.txt:1",
        "nested/leaf-pins.txt:1",
    ]
    assert result.options.find_links == (str(DATA / "nested" / "sub" / "wheels"),)


@pytest.mark.parametrize("case", ERRORS, ids=[c["id"] for c in ERRORS])
def test_error(case: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, content in case["files"].items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(content)
    for name, content in case.get("latin1", {}).items():
        (tmp_path / name).write_bytes(content.encode("latin-1"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError) as info:
        parse_requirements_file(Path("requirements.txt"), environ={})
    assert str(info.value).replace(tmp_path.resolve().as_posix(), "/TMP") == case["error"]
    assert "\n" not in str(info.value)


def test_unreadable_top_level_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.txt"
    with pytest.raises(InputError) as info:
        parse_requirements_file(missing)
    assert str(info.value) == f"{missing}: cannot read requirements file: No such file or directory"


def test_text_parser_reads_nested_files_through_the_reader() -> None:
    files = {
        Path("/virtual/reqs/base.txt"): "-r ../common/shared.txt\nbase\n",
        Path("/virtual/common/shared.txt"): "shared>=1\n-c pins.txt\n",
        Path("/virtual/common/pins.txt"): "shared<2\n",
    }
    asked: list[Path] = []

    def reader(path: Path) -> str:
        asked.append(path)
        try:
            return files[path]
        except KeyError:
            raise OSError("no such virtual file") from None

    result = parse_requirements_text(
        "-r base.txt\ntop\n", "reqs/top.txt", Path("/virtual/reqs"), reader=reader, environ={}
    )
    assert [(str(r.requirement), r.source) for r in result.requirements] == [
        ("shared>=1", "common/shared.txt:1"),
        ("base", "reqs/base.txt:2"),
        ("top", "reqs/top.txt:2"),
    ]
    assert [(str(r.requirement), r.source) for r in result.constraints] == [
        ("shared<2", "common/pins.txt:1")
    ]
    assert asked == list(files)
    constrained = parse_requirements_text(
        "a==1\n", "c.txt", Path("/virtual"), constraint=True, reader=reader, environ={}
    )
    assert constrained.requirements == ()
    assert [c.constraint for c in constrained.constraints] == [True]
    with pytest.raises(InputError, match=r"^x\.txt:1: cannot read 'gone\.txt': no such virtual"):
        parse_requirements_text("-r gone.txt\n", "x.txt", Path("/virtual"), reader=reader)


def test_environment_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FETCHPLAN_TEST_VERSION", "4.2")
    result = parse_requirements_text("pkg==${FETCHPLAN_TEST_VERSION}\n", "r.txt", Path())
    assert str(result.requirements[0].requirement) == "pkg==4.2"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("requests", "requests"),
        ("  Foo_Bar[x] >= 1.0 ; os_name == 'posix' ", 'Foo_Bar[x]>=1.0; os_name == "posix"'),
    ],
)
def test_requirement_string(text: str, expected: str) -> None:
    parsed = parse_requirement_string(text)
    assert str(parsed.requirement) == expected
    assert (parsed.source, parsed.constraint, dict(parsed.hashes)) == ("<command line>", False, {})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("foo>=", "<command line>: malformed requirement 'foo>=': Expected semicolon"),
        ("-e ./no-such-dir", "<command line>: './no-such-dir': no such file or directory"),
        ("", "<command line>: empty requirement"),
        ("./nothing-here.whl", "<command line>: './nothing-here.whl': no such file or directory"),
        ("x @ y", "<command line>: 'y': no such file or directory"),
        ("x @ hg+https://h/r", "<command line>: 'hg+https://h/r': only git is supported"),
    ],
)
def test_requirement_string_errors(text: str, message: str) -> None:
    with pytest.raises(InputError) as info:
        parse_requirement_string(text)
    assert str(info.value).startswith(message)


def test_merge_follows_pip_order() -> None:
    command_line = RequirementSet(
        requirements=(parse_requirement_string("a"),),
        options=RequirementOptions(
            index_url="https://cli.example/simple",
            extra_index_urls=("https://x.example/simple",),
            no_binary=(":all:",),
            pre=True,
        ),
    )
    from_file = parse_requirements_text(
        "--extra-index-url https://x.example/simple\n--find-links https://l.example/\n"
        "--only-binary b\n--trusted-host t.example\nb\n-c c.txt\n",
        "r.txt",
        Path("/virtual"),
        reader=lambda _: "c<2\n",
        environ={},
    )
    second = RequirementSet(options=RequirementOptions(index_url="https://last.example/simple"))
    merged = merge(command_line, from_file, second)
    assert [str(r.requirement) for r in merged.requirements] == ["a", "b"]
    assert [str(r.requirement) for r in merged.constraints] == ["c<2"]
    opts = merged.options
    assert opts.index_url == "https://last.example/simple"
    assert opts.extra_index_urls == ("https://x.example/simple",)
    assert opts.find_links == ("https://l.example/",)
    assert opts.trusted_hosts == ("t.example",)
    assert (opts.pre, opts.no_index, opts.prefer_binary) == (True, False, False)
    assert (opts.no_binary, opts.only_binary) == ((":all:",), ("b",))
    assert opts.allowed_formats("B") == frozenset({"binary"})
    assert opts.allowed_formats("a") == frozenset({"source"})
    assert merge() == RequirementSet()
    # A later :all: resets what came before, as in pip.
    reset = merge(merged, RequirementSet(options=RequirementOptions(only_binary=(":all:",))))
    assert (reset.options.no_binary, reset.options.only_binary) == ((), (":all:",))


def test_parsed_requirement_name_is_canonical() -> None:
    parsed = ParsedRequirement(requirement=Requirement("Foo.Bar_baz"))
    assert parsed.name == "foo-bar-baz"


def test_options_repr_hides_credentials() -> None:
    options = RequirementOptions(
        index_url="https://user:pa55@idx.example/simple",
        extra_index_urls=("https://tok@extra.example/simple",),
    )
    shown = repr(options)
    assert "pa55" not in shown and "tok@" not in shown
    assert "https://***@idx.example/simple" in shown
    assert "RequirementSet(" in repr(RequirementSet(options=options))
    assert "pa55" not in repr(RequirementSet(options=options))
