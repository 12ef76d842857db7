"""The compiled validator (fastjsonschema) and jsonschema give every document the same verdict.

Valid documents pass the compiled validator alone (:func:`fetchplan.schemas.validate`), so it
must never accept what jsonschema rejects. The documents are real ones, written by the
commands against a test index, and each is mutated field by field: wrong types, booleans for
integers, numbers below their minimum, empty and malformed strings, unknown and missing fields.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from fetchplan.errors import FileFormatError
from fetchplan.schemas import SchemaName, _fast_validator, _validator, validate
from tests.conftest import MakeIndexServer, RunCli
from tests.support.wheels import Dist

REPO = Path(__file__).resolve().parent.parent
GRAPH = [Dist("app", "1.0", requires=["lib>=1"]), Dist("lib", "1.2")]


def _documents(tmp_path: Path, run_cli: RunCli, url: str) -> dict[SchemaName, list[Any]]:
    def ok(*args: str) -> None:
        done = run_cli(*args)
        assert done.returncode == 0, done.stderr

    ok("plan", "app", "--index-url", url, "-o", "plan.json", "--timings", "pt.json")
    ok("fetch", "plan.json", "--timings", "ft.json", "--progress", "none")
    ok("bundle", "plan.json", "-o", "bundle", "--progress", "none")
    dest = tmp_path / "wheels"
    checkpoints = [
        json.loads(line)
        for path in (dest / ".fetchplan").rglob("*")
        if path.is_file() and path.suffix in (".jsonl", ".json")
        for line in path.read_text().splitlines()
        if line.strip().startswith("{")
    ]
    plans = [json.loads((tmp_path / "plan.json").read_text())]
    for example in sorted((REPO / "plans").glob("*/plan.*")):
        text = example.read_text()
        plans.append(yaml.safe_load(text) if example.suffix == ".yaml" else json.loads(text))
    policies = [
        yaml.safe_load(p.read_text())
        for p in sorted((REPO / "tests" / "data" / "policy").glob("*.yaml"))
    ]
    return {
        "plan": plans,
        "plan-timings": [json.loads((tmp_path / "pt.json").read_text())],
        "manifest": [json.loads((dest / "manifest.json").read_text())],
        "fetch-timings": [json.loads((tmp_path / "ft.json").read_text())],
        "checkpoint": checkpoints,
        "bundle": [json.loads((tmp_path / "bundle" / "bundle.json").read_text())],
        "policy": [p for p in policies if isinstance(p, dict)],
    }


def _paths(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node[:3]):
            yield from _paths(value, (*path, index))


def _replaced(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    changed = copy.deepcopy(document)
    if not path:
        return value
    parent = changed
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = value
    return changed


def _removed(document: Any, path: tuple[Any, ...]) -> Any:
    changed = copy.deepcopy(document)
    parent = changed
    for part in path[:-1]:
        parent = parent[part]
    del parent[path[-1]]
    return changed


def _mutations(document: Any) -> Iterator[tuple[str, Any]]:
    for path, value in _paths(document):
        where = ".".join(map(str, path)) or "(root)"
        if isinstance(value, dict):
            yield f"{where}: unknown field", _replaced(document, path, {**value, "zz_unknown": 1})
            yield f"{where}: a list", _replaced(document, path, [value])
        if path and isinstance(path[-1], str):
            yield f"{where}: missing", _removed(document, path)
        if isinstance(value, bool):
            yield f"{where}: 0 for a boolean", _replaced(document, path, 0)
        elif isinstance(value, int):
            yield f"{where}: true for an integer", _replaced(document, path, True)
            yield f"{where}: negative", _replaced(document, path, -1)
            yield f"{where}: a float", _replaced(document, path, value + 0.5)
            yield f"{where}: a string", _replaced(document, path, str(value))
        elif isinstance(value, str):
            yield f"{where}: empty", _replaced(document, path, "")
            yield f"{where}: a number", _replaced(document, path, 7)
            yield f"{where}: null", _replaced(document, path, None)
            yield f"{where}: not a date", _replaced(document, path, "2026-13-45 nonsense")
            yield f"{where}: odd text", _replaced(document, path, "ZZ not/valid\u202e")
        elif isinstance(value, list):
            yield f"{where}: a string", _replaced(document, path, "x")
            if value:
                yield f"{where}: duplicated", _replaced(document, path, [*value, value[0]])


def _verdicts(document: Any, schema: SchemaName) -> tuple[str | None, bool]:
    """The compiled validator's error (None when it accepts) and jsonschema's verdict."""
    try:
        _fast_validator(schema)(document)
        fast = None
    except Exception as exc:  # noqa: BLE001 - any refusal counts as one
        fast = str(exc)
    slow_ok = not any(True for _ in _validator(schema).iter_errors(document))
    return fast, slow_ok


def test_compiled_and_jsonschema_validators_agree(
    index_server: MakeIndexServer, tmp_path: Path, run_cli: RunCli
) -> None:
    server = index_server(GRAPH)
    documents = _documents(tmp_path, run_cli, server.index_url)
    checked = 0
    stricter: list[str] = []
    for schema, valid in documents.items():
        assert valid, f"no {schema} document to check"
        for document in valid:
            if not any(True for _ in _validator(schema).iter_errors(document)):
                assert _verdicts(document, schema) == (None, True), schema
            for label, mutated in _mutations(document):
                fast, slow_ok = _verdicts(mutated, schema)
                checked += 1
                assert not (fast is None and not slow_ok), (
                    f"{schema}: {label}: the compiled validator accepts what jsonschema rejects"
                )
                if fast is not None and slow_ok:
                    stricter.append(f"{schema}: {label}: {fast}")
    assert checked > 1000
    # The one difference allowed: a date-time format, which jsonschema leaves unchecked
    # without its optional format checkers.
    assert all("must be date-time" in line for line in stricter), stricter


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ({"format": "fetchplan.plan"}, "version: missing required field"),
        ("not an object", "is not of type 'object'"),
    ],
)
def test_an_invalid_document_still_gets_every_problem_named(document: Any, problem: str) -> None:
    with pytest.raises(FileFormatError) as info:
        validate(document, "plan", "p.json")
    assert problem in str(info.value)


def test_a_date_only_the_compiled_validator_checks_is_refused_with_its_path(
    index_server: MakeIndexServer, tmp_path: Path, run_cli: RunCli
) -> None:
    server = index_server(GRAPH)
    done = run_cli("plan", "app", "--index-url", server.index_url, "-o", "plan.json")
    assert done.returncode == 0, done.stderr
    plan = json.loads((tmp_path / "plan.json").read_text())
    plan["created"] = "yesterday"
    with pytest.raises(FileFormatError) as info:
        validate(plan, "plan", "plan.json")
    assert str(info.value).startswith("plan.json")
    assert "created" in str(info.value) and "date-time" in str(info.value)
