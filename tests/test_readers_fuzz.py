"""Every document reader, fed schema-valid and mutated documents: success or our own error.

Seeds are real documents (a plan, the manifest, checkpoint and timings of a real fetch, a
policy, the three export formats, PEP 691 and PEP 503 pages). Hypothesis mutates them as
values (a field replaced, removed or added: huge integers, deep nesting, strings with
newlines, surrogates or brackets) and as text (characters inserted, the end cut off, YAML
aliases), renders them as JSON, YAML or TOML where the reader takes it, and accepts only a
result or a :class:`~fetchplan.errors.FetchplanError` whose message names the file. Seeded
and derandomized: every run tries the same examples.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from packaging.utils import NormalizedName

from fetchplan.errors import FetchplanError, FileFormatError
from fetchplan.executor.checkpoint import parse_journal
from fetchplan.executor.plancheck import read_plan
from fetchplan.executor.run import FetchOptions, execute_plan
from fetchplan.executor.summary import write_timings
from fetchplan.formats import Format, export_plan, import_plan
from fetchplan.planner.index import parse_html_page, parse_json_page
from fetchplan.report import events_from_timings
from fetchplan.review.policy import load_policy
from fetchplan.schemas import parse_document
from fetchplan.schemas.manifest import load_manifest
from fetchplan.schemas.plan import load_plan
from tests.support.faults import FaultServer, PlanFile, write_plan

T = TypeVar("T")


class Draw(Protocol):
    """What ``_as_text`` calls: ``st.DataObject.draw`` as well as a composite's ``draw``
    (hypothesis' own ``st.DrawFn`` also wants a ``__signature__``, which a bound method lacks)."""

    def __call__(self, strategy: st.SearchStrategy[T], label: Any = None, /) -> T: ...


EXAMPLES = 200
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PAGE_URL = "http://127.0.0.1:1/simple/demo0/"
INDEX = "http://127.0.0.1:1/simple/"
PROJECT = NormalizedName("demo0")

# -- seeds ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Real documents of every kind, from one real fetch over loopback."""
    root = tmp_path_factory.mktemp("seeds")
    data = b"fuzz" * 1000
    with FaultServer() as server:
        url = server.add("/files/demo0-1.0-py3-none-any.whl", data)
        plan_path = write_plan(
            root / "plan.json", [PlanFile(url, data, "demo0-1.0-py3-none-any.whl")]
        )
        options = FetchOptions(cache_dir=root / "cache", use_pip_config=False)
        result = execute_plan(plan_path, options)
    assert result.ok, result.failures
    write_timings(root / "timings.json", result)
    plan, _ = load_plan(plan_path)
    dest = root / "wheels"
    return {
        "plan": json.loads(plan_path.read_text()),
        "manifest": json.loads((dest / "manifest.json").read_text()),
        "timings": json.loads((root / "timings.json").read_text()),
        "journal": (dest / ".fetchplan" / "state.jsonl").read_bytes(),
        "policy": yaml.safe_load(
            (Path(__file__).parent / "data" / "policy" / "hosts.yaml").read_text()
        )["policy"],
        "pip-report": json.loads(export_plan(plan, "pip-report")),
        "pylock": export_plan(plan, "pylock"),
        "requirements": export_plan(plan, "requirements"),
        "json-page": {
            "meta": {"api-version": "1.1"},
            "name": "demo0",
            "files": [
                {
                    "filename": "demo0-1.0-py3-none-any.whl",
                    "url": "../../files/demo0-1.0-py3-none-any.whl",
                    "hashes": {"sha256": "ab" * 32},
                    "size": 4000,
                    "requires-python": ">=3.8",
                    "yanked": False,
                }
            ],
            "versions": ["1.0"],
        },
        "html-page": (
            '<html><body><a href="../../files/demo0-1.0-py3-none-any.whl#sha256='
            + "ab" * 32
            + '" data-requires-python="&gt;=3.8">demo0-1.0-py3-none-any.whl</a></body></html>'
        ),
    }


# -- mutations --------------------------------------------------------------------------------

ODD_STRINGS = st.sampled_from(
    [
        "",
        "1.0\n--extra-index-url http://evil.test/",
        "http://[::1",
        "http://h:port/",
        "../../etc/passwd",
        "\x00",
        "\ud800",
        "a" * 300,
        "é",
        "&a",
        "*a",
        "0" * 5000,
    ]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**128, max_value=2**400)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | ODD_STRINGS
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def _slots(document: Any) -> Iterator[tuple[Any, Any]]:
    """Every (container, key) of ``document``, depth first."""
    stack = [document]
    while stack:
        node = stack.pop()
        items = (
            node.items()
            if isinstance(node, dict)
            else enumerate(node)
            if isinstance(node, list)
            else ()
        )
        for key, value in items:
            yield node, key
            if isinstance(value, dict | list):
                stack.append(value)


@st.composite
def mutated(draw: st.DrawFn, seed: Any) -> Any:
    """``seed`` with up to three values replaced, removed or added."""
    document = copy.deepcopy(seed)
    for _ in range(draw(st.sampled_from([0, 0, 1, 1, 1, 2, 3]))):
        slots = list(_slots(document))
        if not slots:
            break
        container, key = draw(st.sampled_from(slots))
        action = draw(
            st.sampled_from(["same-kind", "same-kind", "replace", "remove", "add", "nest"])
        )
        if action == "same-kind":
            # Mostly still schema-valid: a string for a string, a number for a number.
            old = container[key]
            if isinstance(old, str):
                container[key] = draw(ODD_STRINGS | st.text(max_size=12) | st.just(old + "\n"))
            elif isinstance(old, bool) or old is None:
                container[key] = draw(st.booleans() | st.none())
            elif isinstance(old, int | float):
                container[key] = draw(st.integers(-1, 2**70))
        elif action == "replace":
            container[key] = draw(VALUES)
        elif action == "remove":
            del container[key]
        elif action == "add" and isinstance(container, dict):
            container[draw(st.text(max_size=8))] = draw(VALUES)
        elif action == "nest":
            value: Any = container[key]
            for _ in range(draw(st.sampled_from([2, 70, 5000]))):
                value = [value]
            container[key] = value
    return document


@st.composite
def text_mutated(draw: st.DrawFn, text: str) -> str:
    """``text`` with a fragment inserted at some place, or cut short."""
    if not text:
        return text
    at = draw(st.integers(0, len(text)))
    if draw(st.booleans()):
        return text[:at]
    fragment = draw(
        st.sampled_from(["[", "{", "]", "\n", '"', "'", ": ", "- ", "&a ", "*a", "=", "#", "\\"])
        | st.text(max_size=5)
        | st.just("[" * 3000)
        | st.just("9" * 5000)
    )
    return text[:at] + fragment + text[at:]


def _render(document: Any, kind: str) -> str | None:
    """``document`` as JSON or YAML text; None when it cannot be (a surrogate, say)."""
    try:
        if kind == "yaml":
            return yaml.safe_dump(document, allow_unicode=True)
        return json.dumps(document, ensure_ascii=False)
    except (ValueError, TypeError, yaml.YAMLError, RecursionError):
        return None


# -- the property -----------------------------------------------------------------------------


def _accepts(call: Callable[[], object], filename: str | None) -> None:
    """``call`` succeeds or raises one of our errors, whose first line names ``filename``."""
    try:
        call()
        event("accepted")
    except FetchplanError as exc:
        event(f"refused: {type(exc).__name__}")
        first = str(exc).splitlines()[0] if str(exc) else ""
        assert first, repr(exc)
        if filename is not None and isinstance(exc, FileFormatError):
            assert first.startswith(filename), first


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def _write(directory: Path, name: str, text: str) -> Path | None:
    path = directory / name
    try:
        path.write_text(text, "utf-8")
    except UnicodeEncodeError:
        return None
    return path


def _as_text(draw: Draw, seed: Any, kind: str) -> str | None:
    if isinstance(seed, str):
        text: str | None = seed
    else:
        text = _render(draw(mutated(seed)), kind)
    if text is not None and draw(st.integers(0, 2)) == 0:
        text = draw(text_mutated(text))
    return text


def _timings(path: Path) -> object:
    return events_from_timings(parse_document(path.read_text(), str(path)), str(path))


FILE_READERS: dict[str, tuple[str, Callable[[Path], object]]] = {
    "plan": ("plan", load_plan),
    "plan-executor": ("plan", lambda p: read_plan(p, allow_unhashed=True)),
    "manifest": ("manifest", load_manifest),
    "policy": ("policy", load_policy),
    "timings": (
        "timings",
        lambda p: events_from_timings(parse_document(p.read_text(), str(p)), str(p)),
    ),
}


@pytest.mark.parametrize("reader", list(FILE_READERS))
@FUZZ
@given(kind=st.sampled_from(["json", "yaml"]), data=st.data())
def test_file_readers(
    reader: str, kind: str, data: st.DataObject, seeds: dict[str, Any], workdir: Path
) -> None:
    seed_name, read = FILE_READERS[reader]
    text = _as_text(data.draw, seeds[seed_name], kind)
    if text is None:
        return
    path = _write(workdir, f"{reader}.{kind}", text)
    if path is None:
        return
    _accepts(lambda: read(path), str(path))


@FUZZ
@given(data=st.data())
def test_plans_read_are_exported_or_refused(
    data: st.DataObject, seeds: dict[str, Any], workdir: Path
) -> None:
    text = _as_text(data.draw, seeds["plan"], "json")
    path = None if text is None else _write(workdir, "export.json", text)
    if path is None:
        return
    try:
        plan, _ = load_plan(path)
    except FetchplanError:
        return
    formats: tuple[Format, ...] = ("requirements", "pylock", "pip-report")
    for fmt in formats:
        _accepts(functools.partial(export_plan, plan, fmt), None)


IMPORTS = {"pip-report": "report.json", "pylock": "pylock.toml", "requirements": "requirements.txt"}


@pytest.mark.parametrize("fmt", list(IMPORTS))
@FUZZ
@given(data=st.data())
def test_imports(fmt: str, data: st.DataObject, seeds: dict[str, Any]) -> None:
    text = _as_text(data.draw, seeds[fmt], "json")
    if text is None:
        return
    name = IMPORTS[fmt]
    _accepts(lambda: import_plan(text, name, created="2026-01-01T00:00:00Z"), name)


@FUZZ
@given(data=st.data())
def test_checkpoint_journal(data: st.DataObject, seeds: dict[str, Any]) -> None:
    lines = seeds["journal"].decode().splitlines()
    record = json.loads(lines[-1])
    text = _render(data.draw(mutated(record)), "json")
    if text is None:
        return
    if data.draw(st.booleans()):
        text = data.draw(text_mutated(text))
    journal = "\n".join([*lines, text]) + "\n"
    try:
        raw = journal.encode("utf-8")
    except UnicodeEncodeError:
        return
    states, _ = parse_journal(raw)  # bad records are ignored, never raised
    assert states


@FUZZ
@given(data=st.data())
def test_index_pages(data: st.DataObject, seeds: dict[str, Any]) -> None:
    text = _as_text(data.draw, seeds["json-page"], "json")
    if text is not None:
        _accepts(lambda: parse_json_page(text, PAGE_URL, INDEX, PROJECT), None)
    html = data.draw(text_mutated(seeds["html-page"]))
    _accepts(lambda: parse_html_page(html, PAGE_URL, INDEX, PROJECT), None)


def test_the_seeds_are_valid(seeds: dict[str, Any], workdir: Path) -> None:
    """Unmutated, every seed is read without error: the property tests start from valid."""
    for reader, (seed_name, read) in FILE_READERS.items():
        path = _write(workdir, f"seed-{reader}.json", json.dumps(seeds[seed_name]))
        assert path is not None
        read(path)
    for fmt, name in IMPORTS.items():
        seed = seeds[fmt]
        import_plan(seed if isinstance(seed, str) else json.dumps(seed), name)
    assert parse_json_page(json.dumps(seeds["json-page"]), PAGE_URL, INDEX, PROJECT)
