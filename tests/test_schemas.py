"""The plan and manifest schemas and their typed models agree, and bad files are named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.utils import NormalizedName

from fetchplan.errors import FileFormatError
from fetchplan.schemas import is_date_time, plan_digest, search_pattern, validate
from fetchplan.schemas.plan import Artifact, IndexRef, Inputs, Plan, Target, load_plan, write_plan


def _plan() -> Plan:
    artifact = Artifact(
        name=NormalizedName("demo"),
        version="1.0",
        kind="wheel",
        filename="demo-1.0-py3-none-any.whl",
        url="http://127.0.0.1:1/files/demo-1.0-py3-none-any.whl",
        index="http://127.0.0.1:1/simple/",
        hashes={"sha256": "a" * 64},
        hash_source="index",
        size=10,
        destination="demo-1.0-py3-none-any.whl",
    )
    return Plan(
        created="2026-01-01T00:00:00Z",
        inputs=Inputs(requirements=("demo",)),
        targets=(
            Target(name="default", markers={"python_version": "3.11"}, tags=("py3-none-any",)),
        ),
        indexes=(IndexRef(url="http://127.0.0.1:1/simple/"),),
        destination="wheels",
        artifacts=(artifact,),
    )


def test_round_trip_json_and_yaml_same_digest(tmp_path: Path) -> None:
    plan = _plan()
    write_plan(tmp_path / "p.json", plan)
    write_plan(tmp_path / "p.yaml", plan)
    loaded_json, doc_json = load_plan(tmp_path / "p.json")
    loaded_yaml, doc_yaml = load_plan(tmp_path / "p.yaml")
    assert loaded_json == plan == loaded_yaml
    assert plan_digest(doc_json) == plan_digest(doc_yaml)


def test_every_problem_named_with_its_path(tmp_path: Path) -> None:
    document = _plan().to_dict()
    document["artifacts"][0]["hashes"]["sha256"] = "XYZ"
    del document["artifacts"][0]["size"]
    document["artifacts"][0]["url"] = "https://user:secret@example.invalid/x.whl"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(document))
    with pytest.raises(FileFormatError) as info:
        load_plan(path)
    message = str(info.value)
    assert message.startswith(f"{path}: 3 problems")
    assert "artifacts[0].hashes.sha256" in message
    assert "artifacts[0].size: missing required field" in message
    assert "artifacts[0].url" in message


def test_unknown_field_is_named() -> None:
    document = _plan().to_dict()
    document["artifacts"][0]["colour"] = "red"
    with pytest.raises(FileFormatError, match=r"^f.json: artifacts\[0\].colour: unknown field$"):
        validate(document, "plan", "f.json")


def test_not_json_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text("{nope")
    with pytest.raises(FileFormatError) as info:
        load_plan(path)
    assert "\n" not in str(info.value)
    assert str(info.value).startswith(f"{path}: (document): not valid")


def test_every_shipped_schema_is_a_valid_schema() -> None:
    # Readers no longer check the schemas on every run; this does, for each name they may ask.
    from importlib import resources
    from typing import get_args

    from jsonschema import Draft202012Validator

    from fetchplan.schemas import SchemaName

    names = get_args(SchemaName)
    assert "plan" in names
    for name in names:
        text = resources.files("fetchplan.schemas").joinpath(f"{name}.schema.json").read_text()
        Draft202012Validator.check_schema(json.loads(text))


def test_bad_times_and_a_newline_after_a_digest_are_named() -> None:
    document = _plan().to_dict()
    document["created"] = "2026-02-30T00:00:00Z"
    document["artifacts"][0]["hashes"]["sha256"] = "a" * 64 + "\n"
    with pytest.raises(FileFormatError) as info:
        validate(document, "plan", "f.json")
    assert [str(p) for p in info.value.problems] == [
        f"artifacts[0].hashes.sha256: {'a' * 64 + chr(10)!r} does not match '^[0-9a-f]+$'",
        "created: '2026-02-30T00:00:00Z' is not a 'date-time'",
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-01-01T00:00:00Z", True),
        ("2026-01-01t00:00:00z", True),
        ("2026-01-01T00:00:00.123456+05:30", True),
        ("2024-02-29T00:00:00-00:00", True),
        ("2000-02-29T00:00:00Z", True),
        ("2016-12-31T23:59:60Z", True),
        (12, True),
        ("1900-02-29T00:00:00Z", False),
        ("2026-04-31T00:00:00Z", False),
        ("2026-00-01T00:00:00Z", False),
        ("2026-01-00T00:00:00Z", False),
        ("2026-01-01T24:00:00Z", False),
        ("2026-01-01T00:60:00Z", False),
        ("2026-01-01T00:00:61Z", False),
        ("2026-01-01T00:00:00+24:00", False),
        ("2026-01-01T00:00:00+01:60", False),
        ("2026-01-01T00:00:00+0100", False),
        ("2026-01-01T00:00:00", False),
        ("2026-01-01 00:00:00Z", False),
        ("2026-01-01T00:00:00.Z", False),
        ("2026-01-01T00:00Z", False),
        ("2026-01-01T00:00:00Z\n", False),
        ("26-01-01T00:00:00Z", False),
        ("\uff12\uff10\uff12\uff16-01-01T00:00:00Z", False),  # full-width digits
    ],
)
def test_date_time(value: object, expected: bool) -> None:
    assert is_date_time(value) is expected


def test_dollar_anchors_at_the_very_end() -> None:
    assert search_pattern("^[0-9a-f]{8}$", "0123abcd")
    assert not search_pattern("^[0-9a-f]{8}$", "0123abcd\n")
    assert search_pattern(r"^a\$$", "a$")
    assert not search_pattern("^(?!(.*/)?\\.\\.(/|$))", "a/..")


_JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**100), max_value=2**100)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=25,
)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(_JSON_VALUES)
def test_documents_are_indented_as_json_indents_them(document: object) -> None:
    """Written documents are byte for byte what ``json.dumps(indent=2)`` gives (msgspec
    re-indents the compact text; NaN and infinities fall back to json itself)."""
    from fetchplan.schemas import _indented_json

    expected = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    try:
        wanted = expected.encode("utf-8")
    except UnicodeEncodeError:
        with pytest.raises(UnicodeEncodeError):
            _indented_json(document)
        return
    assert _indented_json(document) == wanted
