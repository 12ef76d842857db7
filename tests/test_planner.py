"""The planner end to end against real loopback servers: the in-process index server (with its
switches and byte counter), nginx (real Range/ETag handling) and pypiserver (its own pages)."""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import replace
from pathlib import Path

import pytest

from fetchplan.cache import ArtifactCache
from fetchplan.errors import FetchplanError, HashMismatch, InputError
from fetchplan.pipconfig import PipSettings, pip_default_index
from fetchplan.planner.api import PlanOptions, PlanResult, make_plan
from fetchplan.planner.resolve import NoMatchingVersion
from fetchplan.schemas import dumps_document, validate
from fetchplan.schemas.plan import Plan
from tests.conftest import MakeIndex, MakeIndexServer, MakeNginxServer, MakePypiServer
from tests.support.index import IndexOptions
from tests.support.servers import Formats
from tests.support.wheels import Dist, build_wheel

TARGET = {"python_version": "3.11", "platforms": ("manylinux_2_17_x86_64",)}
BIG = 1_000_000


def _dists(padding: int = 0) -> list[Dist]:
    return [
        Dist("app", "1.0", requires=["lib>=1", "util[fast]"], padding=padding),
        Dist("lib", "1.0", padding=padding),
        Dist("lib", "2.0", requires=["base"], padding=padding),
        Dist("util", "0.5", extras={"fast": ["speed"]}, padding=padding),
        Dist("speed", "3.0", padding=padding),
        Dist("base", "1.1", padding=padding),
    ]


EXPECTED = {"app": "1.0", "lib": "2.0", "util": "0.5", "speed": "3.0", "base": "1.1"}


def _options(tmp_path: Path, index_url: str | None, **kw: object) -> PlanOptions:
    base = PlanOptions(
        requirements=("app",),
        index_url=index_url,
        output=tmp_path / "out" / "plan.json",
        dest=tmp_path / "out" / "wheels",
        cache_dir=tmp_path / "cache",
        isolated=True,
        timeout=10.0,
        backoff=0.0,
        **TARGET,  # type: ignore[arg-type]
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def _check(result: PlanResult, files: dict[str, bytes] | None = None) -> Plan:
    plan = result.plan
    dumps_document(plan.to_dict(), "plan", "plan.json")
    validate(result.timings.to_dict(), "plan-timings", "timings.json")
    assert {a.name: a.version for a in plan.artifacts} == EXPECTED
    assert plan.destination == "wheels"
    for artifact in plan.artifacts:
        assert artifact.destination == artifact.filename
        if files is not None:
            data = files[artifact.filename]
            assert artifact.size == len(data)
            assert artifact.sha256 == hashlib.sha256(data).hexdigest()
    return plan


def _files(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (root / "files").iterdir() if p.suffix == ".whl"}


def test_range_requests_spare_whole_wheels(
    make_index: MakeIndex, index_server: MakeIndexServer, tmp_path: Path
) -> None:
    root = make_index(_dists(BIG), IndexOptions(metadata_files=False))
    server = index_server(root)
    result = make_plan(_options(tmp_path, server.index_url))
    plan = _check(result, _files(root))
    planned = sum(a.size or 0 for a in plan.artifacts)
    received = server.bytes_sent("/files/")
    assert planned > 5 * BIG
    assert received < planned / 10, (received, planned)
    assert not [r for r in server.requests("/files/") if r.range is None]
    sources = result.timings.to_dict()["metadata"]
    assert set(sources) == {"range"} and sources["range"]["count"] == len(EXPECTED)
    # The timings count the same bytes as the server, request by request.
    recorded = [r for r in result.timings.requests if r.phase == "metadata"]
    assert sum(r.bytes for r in recorded) == received == sources["range"]["bytes"]
    assert len(recorded) == len(server.requests("/files/")) == sources["range"]["requests"]


def test_pep658_metadata_means_no_wheel_request(
    make_index: MakeIndex, index_server: MakeIndexServer, tmp_path: Path
) -> None:
    root = make_index(_dists())
    server = index_server(root)
    result = make_plan(_options(tmp_path, server.index_url))
    _check(result, _files(root))
    assert [r.path for r in server.requests(".whl") if not r.path.endswith(".metadata")] == []
    assert set(result.timings.to_dict()["metadata"]) == {"pep658"}


def test_no_range_support_downloads_whole_wheels_into_the_cache(
    make_index: MakeIndex, index_server: MakeIndexServer, tmp_path: Path
) -> None:
    root = make_index(_dists(), IndexOptions(metadata_files=False))
    server = index_server(root)
    server.options.ranges = False
    result = make_plan(_options(tmp_path, server.index_url))
    plan = _check(result, _files(root))
    assert set(result.timings.to_dict()["metadata"]) == {"whole"}
    # What was downloaded whole is not downloaded again: the cache satisfies it.
    assert all(
        a.satisfied_by is not None and a.satisfied_by.source == "cache" for a in plan.artifacts
    )
    cache = ArtifactCache(tmp_path / "cache")
    assert all(a.sha256 is not None and cache.get(a.sha256) for a in plan.artifacts)


@pytest.mark.parametrize("formats", ["html", "json"])
def test_html_only_and_json_only_give_the_same_plan(
    make_index: MakeIndex, index_server: MakeIndexServer, tmp_path: Path, formats: Formats
) -> None:
    root = make_index(_dists())
    server = index_server(root)
    server.options.formats = formats
    plan = _check(make_plan(_options(tmp_path, server.index_url)), _files(root))
    if formats == "html":
        # HTML carries no sizes (PEP 700 is JSON only) and PEP 658 gives no total: HEAD did.
        assert len(server.requests()) > 0
        assert len([r for r in server.requests() if r.method == "HEAD"]) == len(EXPECTED)
    else:
        assert [r for r in server.requests() if r.method == "HEAD"] == []
    accepts = {r.headers.get("accept", "") for r in server.requests("/simple/")}
    assert all(a.startswith("application/vnd.pypi.simple.v1+json") for a in accepts)
    assert all(a.url.startswith(server.url + "/files/") for a in plan.artifacts)


def test_slow_index_is_fetched_in_parallel(
    make_index: MakeIndex, index_server: MakeIndexServer, tmp_path: Path
) -> None:
    leaves = [Dist(f"leaf{i}", "1.0", requires=[f"twig{i}"]) for i in range(6)]
    twigs = [Dist(f"twig{i}", "1.0") for i in range(6)]
    root_dist = Dist("root", "1.0", requires=[f"leaf{i}" for i in range(6)])
    server = index_server(make_index([root_dist, *leaves, *twigs]))
    delay = 0.25
    server.options.delay = delay
    started = time.monotonic()
    result = make_plan(_options(tmp_path, server.index_url, requirements=("root",), jobs=8))
    elapsed = time.monotonic() - started
    assert len(result.plan.artifacts) == 13
    requests = len(server.requests())
    assert requests >= 26  # a page and a metadata file per project
    # Depth 3 (root, leaves, twigs), two round trips each: about 6 delays, not 26.
    assert elapsed < requests * delay / 2, (elapsed, requests)
    records = result.timings.requests
    threads = {r.thread for r in records}
    assert len(threads) > 2
    overlapping = max(
        sum(1 for other in records if other.start < r.end and other.end > r.start) for r in records
    )
    assert overlapping >= 4
    assert {r.phase for r in records} == {"index", "metadata"}


def test_nginx_real_ranges(
    make_index: MakeIndex, nginx_server: MakeNginxServer, tmp_path: Path
) -> None:
    root = make_index(_dists(BIG), IndexOptions(metadata_files=False))
    server = nginx_server(root)
    result = make_plan(_options(tmp_path, server.index_url))
    plan = _check(result, _files(root))
    server.wait_for_requests(len(result.timings.requests))
    files = server.requests("/files/")
    assert files and all(r.status == 206 and r.range for r in files)
    planned = sum(a.size or 0 for a in plan.artifacts)
    assert server.bytes_sent("/files/") < planned / 10


def test_pypiserver_pages(pypiserver: MakePypiServer, tmp_path: Path) -> None:
    server = pypiserver(_dists())
    packages = {p.name: p.read_bytes() for p in server.packages.iterdir()}
    result = make_plan(_options(tmp_path, server.index_url))
    plan = _check(result, packages)
    assert all(a.hash_source == "index" for a in plan.artifacts)
    assert all("/packages/" in a.url for a in plan.artifacts)
    assert set(result.timings.to_dict()["metadata"]) <= {"range", "whole"}


def test_satisfied_by_checks_hashes(
    make_index: MakeIndex, index_server: MakeIndexServer, tmp_path: Path
) -> None:
    root = make_index(_dists())
    server = index_server(root)
    files = _files(root)
    dest = tmp_path / "out" / "wheels"
    dest.mkdir(parents=True)
    (dest / "app-1.0-py3-none-any.whl").write_bytes(files["app-1.0-py3-none-any.whl"])
    (dest / "lib-2.0-py3-none-any.whl").write_bytes(b"not the real wheel")
    cache = ArtifactCache(tmp_path / "cache")
    speed = root / "files" / "speed-3.0-py3-none-any.whl"
    cache.add(speed, hashlib.sha256(speed.read_bytes()).hexdigest())
    plan = _check(make_plan(_options(tmp_path, server.index_url)), files)
    status = {a.name: a.satisfied_by.source if a.satisfied_by else None for a in plan.artifacts}
    assert status == {
        "app": "destination",
        "lib": None,
        "util": None,
        "speed": "cache",
        "base": None,
    }


def test_compute_hashes_when_the_index_has_none(
    make_index: MakeIndex,
    index_server: MakeIndexServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    root = make_index(_dists(), IndexOptions(hashes=False))
    server = index_server(root)
    with caplog.at_level(logging.WARNING, logger="fetchplan"):
        plan = _check(make_plan(_options(tmp_path, server.index_url)))
    assert all(a.hashes == {} and a.hash_source is None for a in plan.artifacts)
    assert all(a.satisfied_by is None for a in plan.artifacts)
    assert "--compute-hashes" in caplog.text
    plan = _check(
        make_plan(_options(tmp_path, server.index_url, compute_hashes=True)), _files(root)
    )
    assert all(a.hash_source == "computed" for a in plan.artifacts)
    assert all(
        a.satisfied_by is not None and a.satisfied_by.source == "cache" for a in plan.artifacts
    )


def test_credentials_from_url_and_netrc_stay_out_of_the_plan(
    make_index: MakeIndex,
    index_server: MakeIndexServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = index_server(make_index(_dists()))
    server.options.auth = ("alice", "s3cret-pw")
    url = server.index_url.replace("http://", "http://alice:s3cret-pw@")
    plan = _check(make_plan(_options(tmp_path, url)))
    document = dumps_document(plan.to_dict(), "plan", "plan.json").decode()
    assert "s3cret" not in document and "alice" not in document
    assert plan.indexes[0].url == server.index_url
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login alice password s3cret-pw\n")
    monkeypatch.setenv("NETRC", str(netrc))
    plan = _check(make_plan(_options(tmp_path, server.index_url)))
    assert "s3cret" not in dumps_document(plan.to_dict(), "plan", "plan.json").decode()


def test_same_inputs_same_plan(
    make_index: MakeIndex, index_server: MakeIndexServer, tmp_path: Path
) -> None:
    server = index_server(make_index(_dists()))
    first = make_plan(_options(tmp_path, server.index_url, jobs=1)).plan
    second = make_plan(_options(tmp_path, server.index_url, jobs=8)).plan
    assert dumps_document(
        {**first.to_dict(), "created": "2000-01-01T00:00:00Z"}, "plan", "a.json"
    ) == dumps_document({**second.to_dict(), "created": "2000-01-01T00:00:00Z"}, "plan", "a.json")


def test_plain_http_needs_trusted_host(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"http://index\.example\.invalid/simple/.*--trusted-host"):
        make_plan(_options(tmp_path, "http://index.example.invalid/simple/"))


def test_first_index_has_the_project_then_requirement_hashes(
    make_index: MakeIndex, index_server: MakeIndexServer, tmp_path: Path
) -> None:
    root = make_index(_dists())
    server = index_server(root)
    files = _files(root)
    good = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    lines = [
        f"{name}=={version} --hash=sha256:{good[f'{name}-{version}-py3-none-any.whl']}"
        for name, version in EXPECTED.items()
    ]
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("\n".join(lines) + "\n")
    plan = _check(
        make_plan(_options(tmp_path, server.index_url, requirements=(), requirement_files=(reqs,)))
    )
    assert {a.name for a in plan.artifacts if a.requested} == set(EXPECTED)
    reqs.write_text("\n".join(lines[:-1]) + "\n")  # base has no --hash now
    with pytest.raises(InputError, match=r"hash-checking mode: base 1\.1 has no --hash"):
        make_plan(_options(tmp_path, server.index_url, requirements=(), requirement_files=(reqs,)))
    reqs.write_text(f"lib==2.0 --hash=sha256:{'0' * 64}\nbase\n")
    with pytest.raises(InputError, match="must be pinned"):
        make_plan(_options(tmp_path, server.index_url, requirements=(), requirement_files=(reqs,)))
    reqs.write_text(f"base==1.1 --hash=sha256:{'0' * 64}\n")
    with pytest.raises(NoMatchingVersion, match="--hash"):
        make_plan(_options(tmp_path, server.index_url, requirements=(), requirement_files=(reqs,)))


def test_requirement_hash_for_a_file_without_index_hash(
    make_index: MakeIndex, index_server: MakeIndexServer, tmp_path: Path
) -> None:
    root = make_index([Dist("base", "1.1")], IndexOptions(hashes=False))
    server = index_server(root)
    digest = hashlib.sha256(_files(root)["base-1.1-py3-none-any.whl"]).hexdigest()
    result = make_plan(
        _options(
            tmp_path, server.index_url, requirements=("base==1.1",), cache_dir=None, no_cache=True
        )
    )
    assert result.plan.artifacts[0].hash_source is None
    reqs = tmp_path / "r.txt"
    reqs.write_text(f"base==1.1 --hash=sha256:{digest}\n")
    plan = make_plan(
        _options(tmp_path, server.index_url, requirements=(), requirement_files=(reqs,))
    ).plan
    assert plan.artifacts[0].hash_source == "requirements"
    assert plan.artifacts[0].sha256 == digest
    reqs.write_text(f"base==1.1 --hash=sha256:{'0' * 64}\n")
    with pytest.raises(HashMismatch):
        make_plan(
            _options(
                tmp_path,
                server.index_url,
                requirements=(),
                requirement_files=(reqs,),
                compute_hashes=True,
            )
        )


def test_index_settings_from_pip_environment_and_default(
    make_index: MakeIndex, tmp_path: Path
) -> None:
    root = make_index(_dists())
    simple = (root / "simple").as_uri()
    plan = _check(
        make_plan(
            _options(
                tmp_path,
                index_url=None,
                pip_settings=PipSettings(index_url=simple),
                isolated=False,
            )
        )
    )
    assert [i.url for i in plan.indexes] == [simple + "/"]
    from fetchplan.planner.api import find_sources
    from fetchplan.planner.reqfile import RequirementOptions

    default = find_sources(PlanOptions(isolated=True), RequirementOptions())
    assert [s.url for s in default.indexes] == [pip_default_index().rstrip("/") + "/"]
    assert default.indexes[0].url.startswith("https://")
    from_file = find_sources(
        PlanOptions(isolated=True, index_url=simple),
        RequirementOptions(
            index_url="https://other.example.test/simple", extra_index_urls=(simple,)
        ),
    )
    assert [s.url for s in from_file.indexes] == [
        "https://other.example.test/simple/",
        simple + "/",
    ]


def test_destination_is_relative_to_the_plan(tmp_path: Path, make_index: MakeIndex) -> None:
    simple = (make_index([Dist("base", "1.1")]) / "simple").as_uri()
    deep = tmp_path / "a" / "b" / "plan.json"
    plan = make_plan(
        _options(tmp_path, simple, requirements=("base",), output=deep, dest=None)
    ).plan
    assert plan.destination == "wheels"
    plan = make_plan(
        _options(tmp_path, simple, requirements=("base",), output=deep, dest=tmp_path / "w")
    ).plan
    assert plan.destination == "../../w"


def test_find_links_only_with_no_index(tmp_path: Path) -> None:
    flat = tmp_path / "flat"
    for dist in _dists():
        build_wheel(flat, dist)
    result = make_plan(
        _options(
            tmp_path,
            index_url=None,
            no_index=True,
            find_links=(str(flat),),
        )
    )
    plan = _check(result)
    assert [i.kind for i in plan.indexes] == ["find-links"]
    assert all(a.hash_source == "computed" and a.url.startswith("file:") for a in plan.artifacts)
    assert set(result.timings.to_dict()["metadata"]) == {"local"}


def test_trusted_host_allows_plain_http() -> None:
    from fetchplan.planner.api import find_sources
    from fetchplan.planner.reqfile import RequirementOptions

    plain = "http://mirror.example.test:8080/simple"
    with pytest.raises(InputError):
        find_sources(PlanOptions(isolated=True, index_url=plain), RequirementOptions())
    for trusted in ("mirror.example.test", "mirror.example.test:8080"):
        sources = find_sources(
            PlanOptions(isolated=True, index_url=plain, trusted_hosts=(trusted,)),
            RequirementOptions(),
        )
        assert sources.indexes[0].url == plain + "/"
    # A requirements file may trust a host too, as with pip.
    sources = find_sources(
        PlanOptions(isolated=True, index_url=plain),
        RequirementOptions(trusted_hosts=("mirror.example.test",)),
    )
    assert sources.trusted_hosts == ("mirror.example.test",)


@pytest.mark.parametrize("metadata_files", [True, False])
def test_metadata_disagreeing_with_the_file_name_is_an_error(
    index_server: MakeIndexServer, tmp_path: Path, metadata_files: bool
) -> None:
    liar = build_wheel(
        tmp_path / "d",
        Dist("lib", "1.0"),
        metadata_override=Dist("lib", "6.6").metadata(),
    )
    from tests.support.index import write_index

    write_index(tmp_path / "idx", [liar], IndexOptions(metadata_files=metadata_files))
    server = index_server(tmp_path / "idx")
    with pytest.raises(FetchplanError) as caught:
        make_plan(_options(tmp_path, server.index_url, requirements=("lib",)))
    message = str(caught.value)
    assert "lib-1.0-py3-none-any.whl" in message and "6.6" in message
    assert "\n" not in message
