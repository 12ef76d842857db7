"""The fast validator (fastjsonschema) and the complete one (jsonschema) give the same verdicts.

``fetchplan.schemas.validate`` trusts fastjsonschema's "valid" and runs jsonschema only to list
the problems of a document fastjsonschema rejected. So every document the tests can make, and
thousands of mutations of them, must get the same verdict from both; and neither may accept a
document that stock jsonschema (its own ``pattern`` and format checks) rejects.
"""

from __future__ import annotations

import copy
import datetime as dt
import importlib
import json
import math
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, get_args

import pytest
import yaml
from packaging.utils import NormalizedName

from fetchplan import schemas
from fetchplan.errors import FileFormatError
from fetchplan.executor.checkpoint import ArtifactState, encode_record
from fetchplan.executor.context import FileTiming
from fetchplan.executor.download import Verified
from fetchplan.executor.protocol import Validator
from fetchplan.executor.summary import Failure, FetchResult
from fetchplan.planner.timings import Timings
from fetchplan.schemas import SchemaName, parse_document, validate
from fetchplan.schemas.bundle import Bundle, BundleIndex, FileRef
from fetchplan.schemas.manifest import Manifest, ManifestArtifact, PlanRef, Shard
from fetchplan.schemas.plan import (
    Artifact,
    AttestationBundle,
    Dependency,
    IndexRef,
    Inputs,
    Plan,
    ProjectStatus,
    SatisfiedBy,
    Target,
)

REPO = Path(__file__).resolve().parent.parent
SHA = "0123456789abcdef" * 4
WHEN = "2026-01-01T00:00:00Z"
BASE = "http://127.0.0.1:1"

Where = tuple[str | int, ...]


# -- valid documents ------------------------------------------------------------------------


def _artifact(name: str, *, rich: bool) -> Artifact:
    filename = f"{name}-1.0-py3-none-any.whl"
    if not rich:
        return Artifact(
            name=NormalizedName(name),
            version="1.0",
            kind="wheel",
            filename=filename,
            url=f"{BASE}/files/{filename}",
            index=f"{BASE}/simple/",
            hashes={},
            hash_source=None,
            size=None,
            destination=filename,
        )
    metadata: dict[str, Any] = {
        "metadata_version": "2.4",
        "name": name,
        "version": "1.0",
        "summary": "A demo",
        "requires_python": ">=3.9",
        "requires_dist": ["other>=1", "extra-dep; extra == 'speed'"],
        "provides_extra": ["speed"],
        "classifier": [f"Programming Language :: Python :: 3.{m}" for m in range(8, 14)],
        "project_url": ["Home, https://example.invalid/"],
        "license_expression": "MIT",
        "author": "Someone",
    }
    return Artifact(
        name=NormalizedName(name),
        version="1.0",
        kind="sdist",
        filename=f"{name}-1.0.tar.gz",
        url=f"{BASE}/files/{name}-1.0.tar.gz",
        index=f"{BASE}/simple/",
        hashes={"sha256": SHA, "md5": "0" * 32},
        hash_source="index",
        size=0,
        requires_python=">=3.9",
        yanked=True,
        yanked_reason="broken",
        upload_time="2025-06-01T10:00:00.123456Z",
        provenance=f"{BASE}/provenance",
        attestations=(
            AttestationBundle(
                publisher={"kind": "GitHub", "repository": "o/r", "workflow": "w.yml"},
                predicate_types=("https://predicates.test/publish/v1",),
            ),
        ),
        project_status=ProjectStatus(status="archived", reason="superseded"),
        dependencies=(Dependency(name=NormalizedName("other"), requirement="other>=1"),),
        requested=True,
        extras=("speed",),
        build_dependency=True,
        targets=("default",),
        build_targets=("default",),
        destination=f"{name}-1.0.tar.gz",
        satisfied_by=SatisfiedBy(source="cache", sha256=SHA),
        metadata=metadata,
    )


def _plans() -> Iterator[tuple[str, Any]]:
    for path in sorted((REPO / "plans").glob("*/plan.*")):
        document = parse_document(path.read_text("utf-8"), path.name)
        yield f"plans/{path.parent.name}", document
    options = {
        "pre": True,
        "prefer_binary": False,
        "only_binary": [":all:"],
        "no_binary": ["demo"],
        "no_index": False,
        "index_strategy": "unsafe-best-match",
        "compute_hashes": True,
        "trusted_hosts": ["127.0.0.1"],
        "build_deps": False,
    }
    rich = Plan(
        created="2026-02-28T23:59:59.5+01:00",
        inputs=Inputs(requirements=("demo[speed]>=1",), constraints=("other<2",), options=options),
        targets=(
            Target(name="default", markers={"python_version": "3.11"}, tags=("py3-none-any",)),
            Target(name="win", markers={}, tags=("cp311-cp311-win_amd64", "py3-none-any")),
        ),
        indexes=(IndexRef(url=f"{BASE}/simple/"), IndexRef(url="file:///x/", kind="find-links")),
        destination="wheels",
        artifacts=(_artifact("demo", rich=True), _artifact("other", rich=False)),
    )
    yield "model, every field", rich.to_dict()
    bare = Plan(
        created=WHEN,
        inputs=Inputs(requirements=("other",)),
        targets=(Target(name="t", markers={}, tags=("py3-none-any",)),),
        indexes=(IndexRef(url=f"{BASE}/simple/"),),
        destination="wheels",
        artifacts=(_artifact("other", rich=False),),
    )
    yield "model, nulls", bare.to_dict()
    minimal = Plan(
        created=WHEN,
        inputs=Inputs(requirements=()),
        targets=(Target(name="t", markers={}, tags=("py3-none-any",)),),
        indexes=(),
        destination=".",
        artifacts=(),
    )
    yield "model, minimal", minimal.to_dict()


def _manifests() -> Iterator[tuple[str, Any]]:
    artifact = ManifestArtifact(
        name=NormalizedName("demo"),
        version="1.0",
        filename="demo-1.0-py3-none-any.whl",
        path="wheels/demo-1.0-py3-none-any.whl",
        sha256=SHA,
        size=0,
        url="file:///srv/demo-1.0-py3-none-any.whl",
        source="mirror",
        verified_at="2026-01-01T00:00:00.000001Z",
    )
    plan = PlanRef(sha256=SHA, path="plan.json")
    yield (
        "sharded",
        Manifest(
            created=WHEN, plan=plan, shard=Shard(index=1, count=2), artifacts=(artifact,)
        ).to_dict(),
    )
    yield "empty", Manifest(created=WHEN, plan=plan, artifacts=()).to_dict()


def _checkpoints() -> Iterator[tuple[str, Any]]:
    partial = ArtifactState(
        artifact="demo-1.0-py3-none-any.whl",
        state="partial",
        sha256=SHA,
        size=10,
        url=f"{BASE}/files/demo-1.0-py3-none-any.whl",
        bytes=5,
        validator=Validator("etag", '"abc"'),
        source="resumed",
        time="2026-01-01T00:00:00.000000Z",
    )
    yield "partial", json.loads(encode_record(partial))
    failed = ArtifactState(
        artifact="x.whl",
        state="failed",
        sha256=None,
        size=None,
        url="file:///x.whl",
        reason="HTTP 404",
        time=WHEN,
    )
    yield "failed", json.loads(encode_record(failed))


def _policies() -> Iterator[tuple[str, Any]]:
    for path in sorted((REPO / "tests" / "data" / "policy").glob("*.yaml")):
        case = yaml.safe_load(path.read_text("utf-8"))
        if isinstance(case, dict) and "policy" in case and path.name != "bad.yaml":
            yield f"tests/data/policy/{path.name}", case["policy"]
    yield (
        "every rule",
        {
            "version": 1,
            "allowed_schemes": ["https", "file"],
            "allowed_hosts": ["*.example.invalid", "127.0.0.1:8000", "[::1]"],
            "allowed_indexes": [f"{BASE}/simple/"],
            "require_hashes": True,
            "yanked": "forbid",
            "sdists": {"default": "forbid", "allow": ["demo"], "forbid": ["Bad_Name.x"]},
            "max_file_size": 100,
            "max_total_size": " 1.5 GiB ",
            "deny": ["demo<1"],
            "pins": ["other==1.0"],
        },
    )


def _plan_timings() -> Iterator[tuple[str, Any]]:
    ticks = iter(range(1000))
    timings = Timings(clock=lambda: float(next(ticks)))
    with timings.phase("index"):
        timings.record_request("GET", f"{BASE}/simple/demo/", 200, timings.now(), 1234)
    with timings.phase("metadata"):
        timings.record_request("GET", f"{BASE}/files/demo.metadata", None, timings.now(), 0)
    timings.record_request("READ", "", 0, timings.now(), 10)
    timings.add_task("index", 0.25, requests=1, received=1234)
    timings.add_metadata("pep658", 0.5, 1, 100)
    timings.set_resolver(cpu_seconds=0.01, started=timings.now(), ended=timings.now(), rounds=3)
    timings.finish()
    yield "recorded", timings.to_dict()
    yield "empty", Timings(clock=lambda: 0.0).to_dict()


def _fetch_timings() -> Iterator[tuple[str, Any]]:
    artifact = _artifact("demo", rich=True)
    timing = FileTiming(
        destination=artifact.destination,
        host="127.0.0.1:1",
        size=10,
        start=0.5,
        end=1.25,
        worker="w-0",
        connections=[50000, 50000],
        phases=[("download", 0.5, 1.0), ("verify", 1.0, 1.25)],
        tries=2,
        retries=1,
        network_bytes=10,
        source="downloaded",
    )
    failed = FileTiming(destination="x.whl", host="127.0.0.1:1", size=None, error="HTTP 404")
    verified = Verified(
        artifact=artifact,
        path=Path("wheels") / artifact.destination,
        sha256=SHA,
        size=10,
        source="downloaded",
        verified_at=WHEN,
        timing=timing,
    )
    result = FetchResult(
        plan_sha256=SHA,
        plan_path=Path("plan.json"),
        destination=Path("wheels"),
        manifest_path=None,
        verified=(verified,),
        failures=(Failure("x.whl", "x", "1.0", f"{BASE}/x.whl", "HTTP 404", failed),),
        skipped=0,
        interrupted=False,
        started_at=WHEN,
        wall_seconds=2.0,
        jobs=4,
        per_host=2,
        shard=(2, 3),
    )
    yield "run", result.timings_document()


def _bundles() -> Iterator[tuple[str, Any]]:
    bundle = Bundle(
        created=WHEN,
        plan=FileRef(path="plan.json", sha256=SHA),
        manifest=FileRef(path="wheels/manifest.json", sha256=SHA),
        index=BundleIndex(path="simple", projects=("demo", "other-thing")),
        readme="README.txt",
    )
    yield "bundle", bundle.to_dict()


def _journals() -> Iterator[tuple[str, Any]]:
    site = "/venv/lib/python3.12/site-packages"
    yield (
        "upgrade",
        {
            "format": 1,
            "id": "0123456789ab",
            "aside": [
                {"path": f"{site}/demo-1.0.dist-info", "backup": f"{site}/x.old", "tree": True},
                {"path": "/venv/bin/demo", "backup": "/venv/bin/demo.old", "tree": False},
            ],
            "made": [{"top": "/venv/include/site", "deepest": "/venv/include/site/python3.12"}],
            "in": [
                {"src": "/venv/.fetchplan-staging-1/0/demo", "dst": f"{site}/demo", "tree": True}
            ],
            "prune": [f"{site}/demo"],
            "staging": ["/venv/.fetchplan-staging-1"],
        },
    )
    yield (
        "empty",
        {
            "format": 1,
            "id": "abcdef01",
            "aside": [],
            "made": [],
            "in": [],
            "prune": [],
            "staging": [],
        },
    )


def _store_entries() -> Iterator[tuple[str, Any]]:
    from fetchplan.install.store import ScriptSpec, StoreEntry, StoreFile

    entry = StoreEntry(
        directory=Path("entry"),
        sha256=SHA,
        filename="demo-1.0-py3-none-any.whl",
        name="demo",
        version="1.0",
        dist_info="demo-1.0.dist-info",
        root_scheme="purelib",
        files=(
            StoreFile("demo/__init__.py", "purelib", "demo/__init__.py", "A" * 43, 10, False),
            StoreFile("demo-1.0.data/scripts/run", "scripts", "run", "b" * 43, 0, True),
        ),
        scripts=(ScriptSpec("demo", "demo", "main", "console"),),
    )
    yield "store entry", entry.to_dict()


VALID: dict[SchemaName, Callable[[], Iterator[tuple[str, Any]]]] = {
    "plan": _plans,
    "manifest": _manifests,
    "checkpoint": _checkpoints,
    "policy": _policies,
    "plan-timings": _plan_timings,
    "fetch-timings": _fetch_timings,
    "bundle": _bundles,
    "install-journal": _journals,
    "store-entry": _store_entries,
}


# -- mutations ------------------------------------------------------------------------------

# Values put in place of every value of a document: each JSON type, numbers at the edges of
# minimum and integer, and what YAML's safe loader makes beyond JSON (times, dates, bytes, sets).
PROBES: tuple[Any, ...] = (
    None,
    True,
    False,
    0,
    1,
    -1,
    1.0,
    2.5,
    -0.5,
    math.nan,
    math.inf,
    10**30,
    "x",
    [],
    [None],
    ["x"],
    [1, True],
    {},
    {"colour": "red"},
    dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    dt.date(2026, 1, 1),
    b"bytes",
    {"a", "b"},
)

# Put in place of every string (and null): the edges of the patterns, formats, enums, consts
# and minLength of the schemas.
STRING_PROBES: tuple[str, ...] = (
    "",
    "demo",
    "Demo",
    "demo-",
    "a b",
    "x\n",
    SHA,
    SHA + "\n",
    SHA.upper(),
    "g" * 64,
    SHA[:8],
    SHA[:8] + "\n",
    WHEN,
    WHEN + "\n",
    "2026-01-01t00:00:00z",
    "2026-01-01T00:00:00.5-05:30",
    "2024-02-29T23:59:60Z",
    "2026-02-29T00:00:00Z",
    "2026-13-01T00:00:00Z",
    "2026-01-01 00:00:00Z",
    "2026-01-01T00:00:00",
    "2026-01-01T00:00:00+0100",
    "2026-01-01T24:00:00Z",
    f"{BASE}/x.whl",
    "https://user:secret@example.invalid/x",
    "file:///x",
    "ftp://x/",
    "../x",
    "a/../b",
    "/abs",
    "a\\b",
    "a\x00b",
    "py3-none-any",
    "10MB",
    "10 parsecs",
    "*.example.invalid",
    "wheel",
    "sdist",
    "index",
    "cache",
    "downloaded",
    "partial",
    "etag",
    "allow",
    "fetchplan.plan",
)

# Keys added to every object: unknown fields, and names that propertyNames patterns refuse.
EXTRA_KEYS: tuple[Any, ...] = ("colour", "", "Bad-Key", "sha256", 1)


def _walk(node: Any, where: Where = ()) -> Iterator[tuple[Where, Any]]:
    """Every value of the document with its path."""
    yield where, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, (*where, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, (*where, index))


def _edit(document: Any, where: Where, change: Callable[[Any], Any]) -> Any:
    """A copy of ``document`` whose value at ``where`` is ``change(value)``.

    Only the containers on the way are copied: the rest is shared with ``document``.
    """
    if not where:
        return change(document)
    head, rest = where[0], where[1:]
    copied = dict(document) if isinstance(document, dict) else list(document)
    copied[head] = _edit(document[head], rest, change)  # type: ignore[index]
    return copied


def _constant(value: Any) -> Callable[[Any], Any]:
    return lambda _: value


def _without(key: Any) -> Callable[[Any], Any]:
    return lambda d: {x: y for x, y in d.items() if x != key}


def _with(key: str) -> Callable[[Any], Any]:
    return lambda d: {**d, key: "x"}


def _mutations(document: Any) -> Iterator[tuple[str, Any]]:
    for where, value in _walk(document):
        at = schemas.dotted_path(where) or "(document)"
        probes = PROBES + STRING_PROBES if value is None or isinstance(value, str) else PROBES
        for probe in probes:
            if probe is not value:
                yield f"{at} = {probe!r}", _edit(document, where, _constant(probe))
        if isinstance(value, dict):
            for key in value:
                yield (
                    f"{at}: without {key!r}",
                    _edit(document, where, _without(key)),
                )
            for extra in EXTRA_KEYS:
                yield (
                    f"{at}: with {extra!r}",
                    _edit(document, where, _with(extra)),
                )
        elif isinstance(value, list):
            yield f"{at}: empty", _edit(document, where, lambda _: [])
            if value:
                yield f"{at}: first twice", _edit(document, where, lambda v: [v[0], *v])


def _small(document: Any, limit: int = 1) -> Any:
    """The document with at most ``limit`` items in each list, and in each long map of strings
    (a target's markers), so that its mutations stay few."""
    if isinstance(document, dict):
        named = {k: v for k, v in document.items() if not isinstance(v, str | int | float)}
        scalars = [(k, v) for k, v in document.items() if k not in named]
        if len(scalars) > 8 and all(isinstance(v, str) for _, v in scalars):
            # A map of strings (target markers): a few entries show the same as all.
            scalars = scalars[:limit]
        return {**{k: _small(v, limit) for k, v in named.items()}, **dict(scalars)}
    if isinstance(document, list):
        return [_small(value, limit) for value in document[:limit]]
    return document


# -- the verdicts ---------------------------------------------------------------------------


def _fast_accepts(name: SchemaName, document: Any) -> bool:
    """Like validate: any exception of the generated code is no "valid"."""
    try:
        schemas._fast_validator(name)(document)
    except Exception:  # noqa: BLE001
        return False
    return True


def _complete_accepts(name: SchemaName, document: Any) -> bool:
    return bool(schemas._validator(name).is_valid(document))


@cache
def _stock(name: SchemaName) -> Any:
    from jsonschema import Draft202012Validator, FormatChecker

    text = resources.files("fetchplan.schemas").joinpath(f"{name}.schema.json").read_text()
    return Draft202012Validator(json.loads(text), format_checker=FormatChecker())


def _stock_accepts(name: SchemaName, document: Any) -> bool:
    """The verdict of jsonschema as it comes, with every format check it has."""
    return bool(_stock(name).is_valid(document))


def _assert_json_native(node: Any, where: str) -> None:
    # fastjsonschema takes tuples for arrays, jsonschema does not: no document of ours has one
    # (JSON and YAML parsers make lists, and every to_dict writes lists).
    if isinstance(node, dict):
        for key, value in node.items():
            assert isinstance(key, str), where
            _assert_json_native(value, where)
    elif isinstance(node, list):
        for value in node:
            _assert_json_native(value, where)
    else:
        assert node is None or isinstance(node, str | int | float | bool), (where, node)


# Built like plans/basic (same fields, same kinds of values once parsed): their mutations would
# add time, not cases.
NOT_MUTATED = {"plans/constrained", "plans/prereleases", "plans/windows"}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(VALID))
def test_the_validators_agree(name: SchemaName) -> None:
    valid = list(VALID[name]())
    assert valid
    rejected = 0
    checked = 0
    for label, document in valid:
        _assert_json_native(document, label)
        assert _fast_accepts(name, document), label
        assert _complete_accepts(name, document), label
        validate(document, name, label)
        if label in NOT_MUTATED:
            continue
        mutations = [(label, document), *_mutations(_small(document))]
        for change, mutated in mutations:
            fast = _fast_accepts(name, mutated)
            complete = _complete_accepts(name, mutated)
            assert fast == complete, (label, change, fast, complete)
            if fast:
                assert _stock_accepts(name, mutated), (label, change)
            else:
                rejected += 1
            checked += 1
    assert checked > 500
    assert rejected > checked / 2


# Named cases of what the mutations cover, so that a change that breaks one is plain to see:
# (schema, dotted path, new value or DELETE, why the document is refused).
DELETE = object()
TOTAL = {"count": 0, "seconds": 0.0, "requests": 0, "bytes": 0}
REFUSED: list[tuple[SchemaName, str, Any, str]] = [
    ("plan", "artifacts[0].size", "10", "a string for an integer"),
    ("plan", "artifacts[0].size", True, "a boolean for an integer"),
    ("plan", "artifacts[0].size", -1, "below the minimum"),
    ("plan", "artifacts[0].size", 1.5, "a fraction for an integer"),
    ("plan", "artifacts[0].yanked", 0, "an integer for a boolean"),
    ("plan", "artifacts[0].hashes.sha256", "XYZ", "not hex"),
    ("plan", "artifacts[0].satisfied_by.sha256", SHA.upper(), "upper-case hex"),
    ("plan", "artifacts[0].satisfied_by.sha256", SHA + "\n", "a newline after the digest"),
    ("plan", "artifacts[0].name", "Demo", "not normalized"),
    ("plan", "artifacts[0].url", "https://u:p@example.invalid/x", "credentials in a URL"),
    ("plan", "artifacts[0].kind", "egg", "not in the enum"),
    ("plan", "artifacts[0].filename", "", "empty where minLength is 1"),
    ("plan", "artifacts[0].destination", DELETE, "a required field missing"),
    ("plan", "artifacts[0].colour", "red", "an unknown field"),
    ("plan", "artifacts[0].metadata.Summary", "x", "a metadata name out of its pattern"),
    ("plan", "targets", [], "fewer items than minItems"),
    ("plan", "version", 2, "not the const"),
    ("plan", "version", True, "a boolean for the const 1"),
    ("plan", "format", "fetchplan.manifest", "not the const"),
    ("plan", "created", "2026-01-01 00:00:00Z", "a space for the T"),
    ("plan", "created", "2026-02-29T00:00:00Z", "a day that 2026 has not"),
    ("plan", "created", "2026-01-01T00:00:00+0100", "an offset without its colon"),
    ("plan", "created", "2026-01-01T00:00:00", "no offset"),
    ("plan", "created", "yesterday", "not a time"),
    ("checkpoint", "time", WHEN + "\n", "a newline after the time"),
    ("checkpoint", "crc32", "0000000G", "not hex"),
    ("checkpoint", "validator.kind", "md5", "not in the enum"),
    ("bundle", "index.projects", ["demo", "demo"], "items not unique"),
    ("bundle", "readme", "../README", "a '..' component"),
    ("policy", "max_file_size", -1, "below the minimum of the integer branch of oneOf"),
    ("policy", "max_file_size", "10 parsecs", "neither branch of oneOf"),
    ("plan-timings", "metadata.carrier-pigeon", TOTAL, "a key out of propertyNames"),
    ("fetch-timings", "shard.index", 0, "below the minimum"),
    ("fetch-timings", "wall_seconds", False, "a boolean for a number"),
]


def _set(document: Any, dotted: str, value: Any) -> Any:
    parts: list[str | int] = []
    for piece in dotted.replace("]", "").split("."):
        name, *indices = piece.split("[")
        parts.append(name)
        parts.extend(int(i) for i in indices)
    parent = copy.deepcopy(document)
    root = parent
    for part in parts[:-1]:
        parent = parent[part]
    if value is DELETE:
        del parent[parts[-1]]
    else:
        parent[parts[-1]] = value
    return root


@pytest.mark.parametrize(
    ("name", "dotted", "value", "why"), REFUSED, ids=[f"{c[0]}:{c[3]}" for c in REFUSED]
)
def test_both_refuse(name: SchemaName, dotted: str, value: Any, why: str) -> None:
    _, document = next(iter(VALID[name]()))
    if name == "plan":
        document = next(d for lbl, d in _plans() if lbl == "model, every field")
    mutated = _set(document, dotted, value)
    assert not _fast_accepts(name, mutated), why
    assert not _complete_accepts(name, mutated), why
    with pytest.raises(FileFormatError) as info:
        validate(mutated, name, "f.json")
    assert info.value.problems


def test_a_failing_file_lists_every_problem_with_its_path(tmp_path: Path) -> None:
    document = next(d for label, d in _plans() if label == "model, every field")
    document["created"] = "2026-02-30T00:00:00Z"
    document["artifacts"][0]["size"] = True
    document["artifacts"][0]["hashes"]["sha256"] = SHA + "\n"
    document["artifacts"][1]["colour"] = "red"
    del document["artifacts"][1]["url"]
    document["targets"][1]["tags"] = []
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(document))
    with pytest.raises(FileFormatError) as info:
        schemas.load_document(path, "plan")
    problems = [str(p) for p in info.value.problems]
    assert problems == [
        "artifacts[0].hashes.sha256: '0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
        "abcdef\\n' does not match '^[0-9a-f]+$'",
        "artifacts[0].size: True is not of type 'integer', 'null'",
        "artifacts[1].colour: unknown field",
        "artifacts[1].url: missing required field",
        "created: '2026-02-30T00:00:00Z' is not a 'date-time'",
        "targets[1].tags: [] should be non-empty",
    ]


def test_when_they_disagree_the_file_is_still_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    class Lenient:
        def iter_errors(self, document: Any) -> Iterator[Any]:
            return iter(())

    monkeypatch.setattr(schemas, "_validator", lambda name: Lenient())
    document = _manifests().__next__()[1]
    document["artifacts"][0]["size"] = "ten"
    with pytest.raises(FileFormatError) as info:
        validate(document, "manifest", "m.json")
    assert str(info.value) == "m.json: artifacts[0].size: must be integer"
    document = {"format": "fetchplan.manifest"}
    with pytest.raises(FileFormatError, match=r"^m\.json: \(document\): must contain "):
        validate(document, "manifest", "m.json")


def test_every_schema_compiles_for_both() -> None:
    for name in get_args(SchemaName):
        assert name in VALID
        schemas._fast_validator(name)
        schemas._compiled_validator(name)  # what a schema changed since its generation gets
        schemas._validator(name)


def test_the_generated_validators_are_those_of_the_shipped_schemas() -> None:
    import fastjsonschema

    from fetchplan.schemas import _generate

    for name in get_args(SchemaName):
        module = importlib.import_module(schemas.generated_module(name))
        assert schemas.fast_inputs_sha256(name) == module.INPUTS_SHA256, (
            f"{name}.schema.json changed: run python -m fetchplan.schemas._generate"
        )
        # Another fastjsonschema version writes other code for the same inputs; the digest
        # above and the verdicts of every test here hold whichever code is shipped.
        if module.VERSION == fastjsonschema.VERSION:
            assert _generate.generated_path(name).read_text() == _generate.generated_source(name)


def test_the_digest_of_a_generated_validator_covers_what_it_is_generated_from(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = schemas.fast_inputs_sha256("policy")
    monkeypatch.setattr(schemas, "_FAST_DRAFT", "http://json-schema.org/draft-04/schema#")
    assert schemas.fast_inputs_sha256("policy") != before
    monkeypatch.undo()
    monkeypatch.setattr(schemas, "FAST_FORMATS", {})
    assert schemas.fast_inputs_sha256("policy") != before
    monkeypatch.undo()
    monkeypatch.setattr(schemas, "FAST_USE_DEFAULT", True)
    assert schemas.fast_inputs_sha256("policy") != before


def test_the_generated_validators_are_used_without_compiling(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import fastjsonschema

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("compiled at run time")

    monkeypatch.setattr(fastjsonschema, "compile", refuse)
    monkeypatch.setattr(schemas, "_fast_validators", {})
    for name in get_args(SchemaName):
        for _where, document in VALID[name]():
            validate(document, name, "f.json")
    with pytest.raises(FileFormatError, match="missing required field"):
        validate({}, "plan", "p.json")


def _compiles(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """The ``$id`` of every schema fastjsonschema compiles from now on, in order."""
    import fastjsonschema

    compiled: list[object] = []
    real = fastjsonschema.compile

    def counting(*args: Any, **kwargs: Any) -> Any:
        compiled.append(args[0]["$id"])
        return real(*args, **kwargs)

    monkeypatch.setattr(fastjsonschema, "compile", counting)
    return compiled


def test_a_generated_validator_whose_schema_changed_is_not_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module = importlib.import_module(schemas.generated_module("manifest"))
    monkeypatch.setattr(module, "INPUTS_SHA256", "0" * 64)
    monkeypatch.setattr(schemas, "_fast_validators", {})
    compiled = _compiles(monkeypatch)
    validate(next(_manifests())[1], "manifest", "m.json")
    assert compiled == ["fetchplan:manifest/v1"]


def test_validators_compile_once_across_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(schemas, "_fast_validators", {})
    monkeypatch.setattr(schemas, "_fast_locks", {})
    monkeypatch.setattr(schemas, "_generated_validator", lambda name: None)
    compiled = _compiles(monkeypatch)
    start = threading.Barrier(4)

    def prepare() -> None:
        start.wait()
        schemas.prepare_validator("manifest")

    threads = [threading.Thread(target=prepare) for _ in range(3)]
    for thread in threads:
        thread.start()
    start.wait()
    validate(next(_manifests())[1], "manifest", "m.json")
    for thread in threads:
        thread.join()
    assert compiled == ["fetchplan:manifest/v1"]


def test_the_success_path_imports_no_jsonschema() -> None:
    code = (
        "import sys, pathlib\n"
        "import fetchplan.schemas as s\n"
        "assert 'fastjsonschema' not in sys.modules, 'imported with fetchplan.schemas'\n"
        "s.prepare_validator('plan')\n"
        "s.load_document(pathlib.Path(sys.argv[1]), 'plan')\n"
        "assert 'jsonschema' not in sys.modules, 'imported on success'\n"
        "try:\n"
        "    s.validate({}, 'plan', 'p.json')\n"
        "except Exception as exc:\n"
        "    assert 'missing required field' in str(exc), exc\n"
        "assert 'jsonschema' in sys.modules\n"
    )
    plan = REPO / "plans" / "basic" / "plan.json"
    subprocess.run([sys.executable, "-c", code, str(plan)], check=True, cwd=REPO)


def test_a_yaml_set_is_a_problem_of_the_file_not_a_crash(tmp_path: Path) -> None:
    # fastjsonschema's uniqueItems hashes the items and raises TypeError on a set; the file is
    # then judged by jsonschema, which names the problem.
    path = tmp_path / "policy.yaml"
    path.write_text("allowed_schemes: [!!set {https: null}, https]\n")
    with pytest.raises(FileFormatError) as info:
        schemas.load_document(path, "policy")
    assert [p.path for p in info.value.problems] == ["allowed_schemes[0]"]
