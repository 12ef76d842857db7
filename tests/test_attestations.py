"""PEP 740 attestations: a real provenance object verified offline, and what plan, audit,
policy and diff make of it.

The provenance object (``tests/data/pep740``) is the one the public index publishes for the
real sdist ``pypi_attestations-0.0.19.tar.gz``; the sdist itself is taken by name from
``$FETCHPLAN_TEST_TOOLS`` (``.ci/run`` downloads it, as it does pip and setuptools). The tests
serve both from their own loopback index, with small wheels of our own standing in for the
sdist's dependencies. Every in-process verification runs under the suite's socket guard
(``tests/support/netguard.py``): Sigstore's trust root is the one ``sigstore`` ships, and
nothing but loopback is reached.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.utils import NormalizedName
from pypi_attestations import AttestationType

from fetchplan.planner.api import PlanOptions, make_plan
from fetchplan.planner.attestations import (
    AttestationFailure,
    attest_artifacts,
    verify_provenance,
)
from fetchplan.planner.index import parse_html_page, parse_json_page
from fetchplan.review.diff import diff_plans, render_diff
from fetchplan.review.policy import check_policy, policy_from_dict
from fetchplan.schemas.plan import Artifact, AttestationBundle, Plan, load_plan, write_plan
from tests.conftest import MakeIndexServer, RunCli
from tests.support.airgap import run_without_network
from tests.support.index import IndexOptions, write_index
from tests.support.servers import ServerOptions
from tests.support.wheels import Dist, build_wheel

DATA = Path(__file__).parent / "data" / "pep740"
SDIST = "pypi_attestations-0.0.19.tar.gz"
SDIST_SHA256 = "9bb1add04b1b4e182be6b0b80931593f7a291eb49d69b4fd728a5d4cbcdc4bd3"
PROVENANCE = (DATA / f"{SDIST}.provenance").read_bytes()
PUBLISH_V1 = AttestationType.PYPI_PUBLISH_V1.value  # the index's "publish" predicate, v1
IDENTITY = "github:trailofbits/pypi-attestations:release.yml"
# The sdist's dependencies (its PKG-INFO), as small wheels of our own.
STAND_INS = [
    Dist("cryptography", "44.0.0"),
    Dist("packaging", "24.2"),
    Dist("pyasn1", "0.6.1"),
    Dist("pydantic", "2.10.0"),
    Dist("sigstore", "3.5.3"),
    Dist("sigstore-protobuf-specs", "0.3.2"),
]


@pytest.fixture(scope="session")
def attested_sdist(test_tools: Path) -> Path:
    """The real sdist, from the test tools (never skipped)."""
    path = test_tools / SDIST
    if not path.is_file():
        pytest.fail(f"{path}: missing; run `bash .ci/run` once (it downloads it by name)")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert digest == SDIST_SHA256, f"{path} is not the file the provenance attests"
    return path


@dataclass(frozen=True)
class Setup:
    sdist: Path
    tools: list[Path]
    cache: Path
    """One cache for the module: the sdist's metadata is prepared (a setuptools build) once."""


@pytest.fixture(scope="module")
def setup(
    attested_sdist: Path, build_tools: list[Path], tmp_path_factory: pytest.TempPathFactory
) -> Setup:
    return Setup(attested_sdist, build_tools, tmp_path_factory.mktemp("cache"))


def _index(
    tmp_path: Path,
    sdist: Path,
    tools: list[Path],
    provenance: bytes = PROVENANCE,
    extra: tuple[Dist, ...] = (),
) -> Path:
    dists = tmp_path / "dists"
    wheels = [build_wheel(dists, d) for d in (*STAND_INS, *extra)]
    root = tmp_path / "index"
    write_index(root, [sdist, *wheels, *tools], IndexOptions(provenance={SDIST: provenance}))
    return root


def _options(url: str, plan: Path, cache: Path, *reqs: str, **more: Any) -> PlanOptions:
    return PlanOptions(
        requirements=reqs or ("pypi-attestations==0.0.19",),
        index_url=url,
        isolated=True,
        cache_dir=cache,
        output=plan,
        **more,
    )


def _tampered(change: str) -> bytes:
    """The provenance object with one thing changed: a byte of the signed statement, or the
    publisher's repository or workflow."""
    document = json.loads(PROVENANCE)
    bundle = document["attestation_bundles"][0]
    if change == "envelope":
        envelope = bundle["attestations"][0]["envelope"]
        statement = bytearray(base64.b64decode(envelope["statement"]))
        statement[statement.index(b"publish")] ^= 0x01  # "publish" -> "qublish"
        envelope["statement"] = base64.b64encode(bytes(statement)).decode()
    elif change == "repository":
        bundle["publisher"]["repository"] = "trailofbits/not-pypi-attestations"
    elif change == "workflow":
        bundle["publisher"]["workflow"] = "other.yml"
    return json.dumps(document).encode()


# -- the library's verification, offline --------------------------------------------------


def test_real_provenance_verifies_offline(attested_sdist: Path) -> None:
    bundles = verify_provenance(PROVENANCE, SDIST, SDIST_SHA256)
    assert [b.to_dict() for b in bundles] == [
        {
            "publisher": {
                "kind": "GitHub",
                "environment": None,
                "repository": "trailofbits/pypi-attestations",
                "workflow": "release.yml",
            },
            "predicate_types": [PUBLISH_V1],
        }
    ]
    assert bundles[0].identity == IDENTITY


def test_one_changed_byte_of_the_file_fails(attested_sdist: Path) -> None:
    data = bytearray(attested_sdist.read_bytes())
    data[len(data) // 2] ^= 0xFF
    with pytest.raises(ValueError, match="subject does not match distribution digest") as info:
        verify_provenance(PROVENANCE, SDIST, hashlib.sha256(data).hexdigest())
    assert str(info.value).startswith(f"attestation 0 of bundle 0 (publisher {IDENTITY}): ")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("envelope", "(?i)signature"),
        ("repository", "(?i)repository|certificate"),
        ("workflow", r"Build Config URI .* does not match expected Trusted Publisher"),
    ],
)
def test_a_changed_envelope_or_another_publisher_fails(change: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason) as info:
        verify_provenance(_tampered(change), SDIST, SDIST_SHA256)
    assert "\n" not in str(info.value)
    assert str(info.value).startswith("attestation 0 of bundle 0 (publisher github:trailofbits/")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{", "not a PEP 740 provenance object"),
        (b'{"version": 1, "attestation_bundles": []}', "holds no attestation bundle"),
        (
            b'{"version": 1, "attestation_bundles": [{"publisher": {"kind": "GitHub", '
            b'"repository": "a/b", "workflow": "w.yml"}, "attestations": []}]}',
            r"bundle 0 \(github:a/b:w.yml\) holds no attestation",
        ),
    ],
)
def test_what_is_no_provenance_is_named(body: bytes, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        verify_provenance(body, SDIST, SDIST_SHA256)


def test_attest_artifacts_reports_each_file_on_one_line() -> None:
    sdist = replace(
        _artifact("pypi-attestations", "https://index.test/p/1"),
        version="0.0.19",
        kind="sdist",
        filename=SDIST,
        hashes={"sha256": SDIST_SHA256},
    )
    hostile = json.loads(PROVENANCE)
    hostile["attestation_bundles"][0]["publisher"]["repository"] = "evil/\x1b[2Jrepo\nok"
    bodies = {
        "https://index.test/p/1": PROVENANCE,
        "https://index.test/p/2": json.dumps(hostile).encode(),
    }

    def get(url: str) -> bytes:
        if url not in bodies:
            raise ValueError(f"provenance {url} answered HTTP 404 Not Found")
        return bodies[url]

    artifacts = (
        sdist,
        replace(sdist, provenance="https://index.test/p/2"),
        replace(sdist, provenance="https://index.test/p/3"),
        replace(sdist, hashes={}),
        _artifact("plain", None),
    )
    done, problems = attest_artifacts(artifacts, get)
    assert done[0].attestations is not None and done[0].attestations[0].identity == IDENTITY
    assert done[1:] == artifacts[1:]  # failed or unattested files are left as they were
    reasons = [p.reason for p in problems]
    assert len(reasons) == 3 and all(r.isprintable() for r in reasons)
    assert reasons[0].startswith("attestation 0 of bundle 0 (publisher github:evil/\\x1b[2Jrepo")
    assert reasons[1] == "provenance https://index.test/p/3 answered HTTP 404 Not Found"
    assert reasons[2] == "the plan has no sha256 of the file to verify against"


def test_provenance_url_only_from_json_pages_of_api_1_3() -> None:
    page = {
        "meta": {"api-version": "1.3"},
        "name": "demo",
        "files": [
            {
                "filename": "demo-1.0.tar.gz",
                "url": "../../files/demo-1.0.tar.gz",
                "hashes": {},
                "provenance": "../../integrity/demo/1.0/demo-1.0.tar.gz/provenance",
            }
        ],
    }
    url = "https://user:secret@index.test/simple/demo/"
    (link,) = parse_json_page(json.dumps(page), url, url, NormalizedName("demo"))
    assert link.provenance == "https://index.test/integrity/demo/1.0/demo-1.0.tar.gz/provenance"
    page["meta"] = {"api-version": "1.1"}
    (older,) = parse_json_page(json.dumps(page), url, url, NormalizedName("demo"))
    assert older.provenance is None


@pytest.mark.parametrize(
    ("version", "attribute", "expected"),
    [
        ("1.3", "../../integrity/demo/1.0/demo-1.0.tar.gz/provenance", True),
        ("1.4", "https://other.test/p", "https://other.test/p"),
        ("1.1", "../../integrity/demo/1.0/demo-1.0.tar.gz/provenance", None),
        (None, "../../integrity/demo/1.0/demo-1.0.tar.gz/provenance", None),
        ("1.3", "", None),
        ("1.3", "javascript:alert(1)", None),
    ],
)
def test_html_pages_name_provenance_by_data_provenance(
    version: str | None, attribute: str, expected: str | bool | None
) -> None:
    """PEP 740's ``data-provenance`` attribute is read as the JSON page's ``provenance`` key:
    joined to the page, credentials dropped, only on a page of repository version 1.3 on."""
    meta = "" if version is None else f'<meta name="pypi:repository-version" content="{version}">'
    html = (
        f"<html><head>{meta}</head><body>"
        f'<a href="../../files/demo-1.0.tar.gz" data-provenance="{attribute}">x</a></body></html>'
    )
    url = "https://user:secret@index.test/simple/demo/"
    (link,) = parse_html_page(html, url, url, NormalizedName("demo"))
    if expected is True:
        expected = "https://index.test/integrity/demo/1.0/demo-1.0.tar.gz/provenance"
    assert link.provenance == expected


# -- planning, auditing, policies ----------------------------------------------------------


def test_plan_records_the_verified_publisher_and_policies_check_it(
    tmp_path: Path,
    setup: Setup,
    index_server: MakeIndexServer,
    run_cli: RunCli,
) -> None:
    server = index_server(_index(tmp_path, setup.sdist, setup.tools))
    plan_path = tmp_path / "plan.json"
    result = make_plan(_options(server.index_url, plan_path, setup.cache, attestations=True))
    write_plan(plan_path, result.plan)
    (sdist,) = (a for a in result.plan.artifacts if a.filename == SDIST)
    assert sdist.provenance == server.file_url(f"{SDIST}.provenance")
    assert sdist.attestations is not None
    assert [b.identity for b in sdist.attestations] == [IDENTITY]
    assert sdist.attestations[0].predicate_types == (PUBLISH_V1,)
    assert server.requests(f"/files/{SDIST}.provenance")
    # Written and read back, the plan keeps what was verified.
    reread = load_plan(plan_path)[0]
    assert next(a for a in reread.artifacts if a.filename == SDIST) == sdist
    others = [a for a in reread.artifacts if a.filename != SDIST]
    assert others and all(a.attestations is None and a.provenance is None for a in others)

    audit = run_cli("audit", plan_path, "--format", "json")
    assert audit.returncode == 0, audit.stderr
    found = json.loads(audit.stdout)["audit"]["attestations"]
    assert [(n["filename"], n["identities"]) for n in found["verified"]] == [(SDIST, [IDENTITY])]
    assert {n["filename"] for n in found["unattested"]} == {a.filename for a in others}
    assert found["failed"] == []
    text = run_cli("audit", plan_path).stdout
    assert re.search(rf" {re.escape(SDIST)} +{re.escape(IDENTITY)} +{PUBLISH_V1}\n", text)
    # show: a PUBLISHER column, the verified identity on the sdist's row, "-" on the others.
    shown = run_cli("show", plan_path)
    assert shown.returncode == 0, shown.stderr
    rows = shown.stdout.splitlines()
    assert rows[0].split() == ["NAME", "VERSION", "SIZE", "HOST", "STATUS", "PUBLISHER"]
    table = rows[1 : rows.index("")]
    (mine,) = (row for row in table if row.startswith("pypi-attestations "))
    assert re.match(rf"pypi-attestations +0\.0\.19 .* \(sdist\) +{re.escape(IDENTITY)}$", mine)
    assert len(table) == len(reread.artifacts)
    assert all(row.endswith(" -") for row in table if row != mine)

    allowed = {"publishers": {"pypi-attestations": ["github:TrailOfBits/pypi-attestations"]}}
    assert check_policy(reread, policy_from_dict(allowed, "p.yaml")) == []
    workflow = {"publishers": {"pypi-*": [IDENTITY]}}
    assert check_policy(reread, policy_from_dict(workflow, "p.yaml")) == []
    other = {"publishers": {"pypi-attestations": ["github:someone/else", f"{IDENTITY}x"]}}
    (violation,) = check_policy(reread, policy_from_dict(other, "p.yaml"))
    assert str(violation) == (
        f"{SDIST}: publishers: attested by {IDENTITY}, not by an allowed publisher "
        f"(github:someone/else, {IDENTITY}x)"
    )
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump(other))
    refused = run_cli("fetch", plan_path, "--policy", policy)
    assert refused.returncode != 0
    assert f"fetchplan: policy: {violation}" in refused.stderr.splitlines()
    assert not (tmp_path / "wheels" / SDIST).exists()
    audited = run_cli("audit", plan_path, "--policy", policy, "--format", "json")
    assert audited.returncode == 1
    assert json.loads(audited.stdout)["violations"][0]["rule"] == "publishers"


def test_an_html_index_names_provenance_and_the_plan_verifies_it(
    tmp_path: Path, setup: Setup, index_server: MakeIndexServer
) -> None:
    """An index serving only PEP 503 HTML pages: its ``data-provenance`` attribute is taken,
    the provenance fetched and verified as from a JSON page."""
    server = index_server(
        _index(tmp_path, setup.sdist, setup.tools), options=ServerOptions(formats="html")
    )
    result = make_plan(
        _options(server.index_url, tmp_path / "plan.json", setup.cache, attestations=True)
    )
    (sdist,) = (a for a in result.plan.artifacts if a.filename == SDIST)
    assert sdist.provenance == server.file_url(f"{SDIST}.provenance")
    assert sdist.attestations is not None
    assert [b.identity for b in sdist.attestations] == [IDENTITY]
    pages = server.requests("/simple/pypi-attestations/")
    assert pages and all(r.status == 200 for r in pages)
    assert not server.requests("index.json")
    assert server.requests(f"/files/{SDIST}.provenance")


@pytest.mark.parametrize("change", ["file", "envelope", "workflow"])
def test_plan_fails_naming_the_file_and_the_reason(
    change: str,
    tmp_path: Path,
    setup: Setup,
    index_server: MakeIndexServer,
) -> None:
    sdist = setup.sdist
    if change == "file":
        # The gzip header's modification time: another sha256, the same archive inside.
        data = bytearray(setup.sdist.read_bytes())
        data[4] ^= 0x01
        sdist = tmp_path / "changed" / SDIST
        sdist.parent.mkdir()
        sdist.write_bytes(bytes(data))
    provenance = PROVENANCE if change == "file" else _tampered(change)
    server = index_server(_index(tmp_path, sdist, setup.tools, provenance))
    plan_path = tmp_path / "plan.json"
    with pytest.raises(AttestationFailure) as info:
        make_plan(_options(server.index_url, plan_path, setup.cache, attestations=True))
    (problem,) = info.value.problems
    assert (problem.project, problem.version, problem.filename) == (
        "pypi-attestations",
        "0.0.19",
        SDIST,
    )
    assert str(info.value).startswith(f"{SDIST}: attestations: attestation 0 of bundle 0 ")
    assert "\n" not in str(info.value)
    assert not plan_path.exists()


def test_audit_verifies_an_existing_plan_and_lists_failures(
    tmp_path: Path,
    setup: Setup,
    index_server: MakeIndexServer,
    run_cli: RunCli,
) -> None:
    root = _index(tmp_path, setup.sdist, setup.tools)
    server = index_server(root)
    plan_path = tmp_path / "plan.json"
    write_plan(plan_path, make_plan(_options(server.index_url, plan_path, setup.cache)).plan)
    plan = load_plan(plan_path)[0]
    written = plan_path.read_bytes()
    (sdist,) = (a for a in plan.artifacts if a.filename == SDIST)
    assert sdist.provenance is not None and sdist.attestations is None

    audit = run_cli("audit", plan_path, "--attestations", "--format", "json")
    assert audit.returncode == 0, audit.stderr
    found = json.loads(audit.stdout)["audit"]["attestations"]
    assert [n["identities"] for n in found["verified"]] == [[IDENTITY]]
    assert plan_path.read_bytes() == written  # the plan is left as it was

    # The index now serves another envelope for the same file.
    (root / "files" / f"{SDIST}.provenance").write_bytes(_tampered("envelope"))
    failed = run_cli("audit", plan_path, "--attestations", "--format", "json")
    assert failed.returncode == 1
    report = json.loads(failed.stdout)["audit"]["attestations"]
    assert report["verified"] == []
    (failure,) = report["failed"]
    assert failure["filename"] == SDIST
    assert failure["detail"].startswith(f"attestation 0 of bundle 0 (publisher {IDENTITY}): ")
    lines = failed.stderr.splitlines()
    assert [line for line in lines if SDIST in line] == [
        f"fetchplan: {SDIST}: attestations: {failure['detail']}"
    ]
    text = run_cli("audit", plan_path, "--attestations").stdout
    assert "ATTESTATIONS THAT FAILED TO VERIFY (1):" in text

    (root / "files" / f"{SDIST}.provenance").unlink()
    gone = run_cli("audit", plan_path, "--attestations", "--format", "json")
    (failure,) = json.loads(gone.stdout)["audit"]["attestations"]["failed"]
    assert failure["detail"].endswith(f"/files/{SDIST}.provenance answered HTTP 404 Not Found")


def test_a_bundle_carries_provenance_and_audit_verifies_it_offline(
    tmp_path: Path,
    setup: Setup,
    index_server: MakeIndexServer,
    run_cli: RunCli,
    *,
    fetchplan_cmd: list[str],
    cli_env: dict[str, str],
) -> None:
    root = _index(tmp_path, setup.sdist, setup.tools)
    server = index_server(root)
    plan_path = tmp_path / "plan.json"
    write_plan(plan_path, make_plan(_options(server.index_url, plan_path, setup.cache)).plan)
    # The index cannot serve the provenance: no bundle, one line naming the file.
    held = root / "files" / f"{SDIST}.provenance"
    held.rename(tmp_path / "held")
    failed = run_cli("bundle", plan_path, "-o", tmp_path / "failed", "--progress", "none")
    assert failed.returncode != 0
    assert f"{SDIST}: provenance: provenance " in failed.stderr
    assert "answered HTTP 404" in failed.stderr
    assert not (tmp_path / "failed" / "bundle.json").exists()
    (tmp_path / "held").rename(held)

    for output in ("bundle", "bundle.tar"):
        made = run_cli("bundle", plan_path, "-o", tmp_path / output, "--progress", "none")
        assert made.returncode == 0, made.stderr
    server.close()
    bundle, tar = tmp_path / "bundle", tmp_path / "bundle.tar"
    description = json.loads((bundle / "bundle.json").read_text())
    assert description["provenance"] == [
        {
            "filename": SDIST,
            "path": f"provenance/{SDIST}.json",
            "sha256": hashlib.sha256(PROVENANCE).hexdigest(),
        }
    ]
    assert (bundle / "provenance" / f"{SDIST}.json").read_bytes() == PROVENANCE
    for where in (bundle, tar):
        checked = run_without_network([*fetchplan_cmd, "verify", str(where)], cli_env, tmp_path)
        assert checked.returncode == 0, checked.stderr
        audit = run_without_network(
            [*fetchplan_cmd, "audit", str(where), "--attestations", "--format", "json"],
            cli_env,
            tmp_path,
        )
        assert audit.returncode == 0, audit.stderr
        found = json.loads(audit.stdout)["audit"]["attestations"]
        assert [(n["filename"], n["identities"]) for n in found["verified"]] == [
            (SDIST, [IDENTITY])
        ]
        assert found["failed"] == []

    # One changed byte of the carried object: verify and audit each name the file.
    carried = bundle / "provenance" / f"{SDIST}.json"
    carried.write_bytes(PROVENANCE.replace(b"{", b" {", 1))
    checked = run_cli("verify", bundle)
    assert checked.returncode != 0
    assert f"{carried}: sha256 mismatch" in checked.stderr + checked.stdout
    audit = run_cli("audit", bundle, "--attestations", "--format", "json")
    assert audit.returncode == 1
    (failure,) = json.loads(audit.stdout)["audit"]["attestations"]["failed"]
    assert failure["detail"].startswith(f"{carried}: sha256 ")
    assert failure["detail"].endswith(" bundle.json records")
    # bundle.json pointing the object at another file of the bundle (its plan).
    carried.write_bytes(PROVENANCE)
    moved = dict(description, provenance=[dict(description["provenance"][0])])
    moved["provenance"][0]["path"] = "plan.json"
    (bundle / "bundle.json").write_text(json.dumps(moved))
    audit = run_cli("audit", bundle, "--attestations", "--format", "json")
    assert audit.returncode == 1
    (failure,) = json.loads(audit.stdout)["audit"]["attestations"]["failed"]
    assert failure["detail"] == (
        f"bundle.json: provenance path 'plan.json' is not 'provenance/{SDIST}.json'"
    )
    (bundle / "bundle.json").write_text(json.dumps(description))
    # Without --attestations the bundle's plan is audited as a plan file is.
    plain = run_cli("audit", bundle, "--format", "json")
    assert plain.returncode == 0, plain.stderr
    assert (
        json.loads(plain.stdout)["audit"]
        == json.loads(run_cli("audit", plan_path, "--format", "json").stdout)["audit"]
    )


def test_a_policy_requiring_attestations_fails_for_a_project_without_any(
    tmp_path: Path,
    setup: Setup,
    index_server: MakeIndexServer,
    run_cli: RunCli,
) -> None:
    server = index_server(_index(tmp_path, setup.sdist, setup.tools, extra=(Dist("plain", "1.0"),)))
    plan_path = tmp_path / "plan.json"
    options = _options(
        server.index_url, plan_path, setup.cache, "pypi-attestations==0.0.19", "plain"
    )
    write_plan(plan_path, make_plan(replace(options, attestations=True)).plan)
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump({"require_attestations": ["pypi-attestations", "plain"]}))
    refused = run_cli("fetch", plan_path, "--policy", policy)
    assert refused.returncode != 0
    assert (
        "fetchplan: policy: plain-1.0-py3-none-any.whl: require_attestations: no verified "
        "attestations: the index named no PEP 740 provenance for it"
    ) in refused.stderr.splitlines()
    assert not any(SDIST in line for line in refused.stderr.splitlines())
    audited = run_cli("audit", plan_path, "--policy", policy, "--format", "json")
    assert audited.returncode == 1
    assert [(v["rule"], v["project"]) for v in json.loads(audited.stdout)["violations"]] == [
        ("require_attestations", "plain")
    ]
    # A plan made without --attestations has nothing verified: the sdist breaks it too.
    write_plan(plan_path, make_plan(options).plan)
    unverified = check_policy(
        load_plan(plan_path)[0], policy_from_dict({"require_attestations": True}, "p")
    )
    assert {v.project for v in unverified} >= {"pypi-attestations", "plain"}
    assert any("were not verified" in v.message for v in unverified)


# -- diff -------------------------------------------------------------------------------------


def _artifact(name: str, provenance: str | None, *identities: tuple[str, str]) -> Artifact:
    return Artifact(
        name=NormalizedName(name),
        version="1.0",
        kind="wheel",
        filename=f"{name}-1.0-py3-none-any.whl",
        url=f"https://files.test/{name}-1.0-py3-none-any.whl",
        index="https://index.test/simple/",
        hashes={"sha256": "0" * 64},
        hash_source="index",
        size=1,
        provenance=provenance,
        attestations=tuple(
            AttestationBundle(
                publisher={"kind": "GitHub", "repository": repo, "workflow": wf},
                predicate_types=(PUBLISH_V1,),
            )
            for repo, wf in identities
        )
        or None,
        destination=f"{name}-1.0-py3-none-any.whl",
    )


def _plan(*artifacts: Artifact) -> Plan:
    base = load_plan(Path(__file__).parent / "data" / "policy" / "plan.json")[0]
    return replace(base, artifacts=artifacts)


def test_diff_warns_when_a_publisher_changes_or_attestations_disappear(
    tmp_path: Path, run_cli: RunCli
) -> None:
    url = "https://index.test/integrity/x/provenance"
    old = _plan(
        _artifact("moved", url, ("org/moved", "release.yml")),
        _artifact("dropped", url, ("org/dropped", "release.yml")),
        _artifact("unverified", url, ("org/unverified", "release.yml")),
        _artifact("steady", url, ("org/steady", "release.yml")),
    )
    new = _plan(
        _artifact("moved", url, ("evil/moved", "release.yml")),
        _artifact("dropped", None),
        _artifact("unverified", url),
        _artifact("steady", url, ("org/steady", "release.yml")),
    )
    diff = diff_plans(old, new)
    assert [(c.project, c.kind, c.old, c.new) for c in diff.attestations] == [
        ("dropped", "disappeared", ("github:org/dropped:release.yml",), ()),
        (
            "moved",
            "publisher_changed",
            ("github:org/moved:release.yml",),
            ("github:evil/moved:release.yml",),
        ),
        ("unverified", "disappeared", ("github:org/unverified:release.yml",), ()),
    ]
    text = render_diff(diff)
    assert text.startswith("WARNING: 3 project(s) changed PEP 740 publisher")
    assert "PUBLISHER CHANGED" in text and "DISAPPEARED" in text
    assert diff.to_dict()["attestation_changes"][1]["kind"] == "publisher_changed"
    assert diff_plans(old, old).attestations == ()
    write_plan(tmp_path / "old.json", old)
    write_plan(tmp_path / "new.json", new)
    shown = run_cli("diff", tmp_path / "old.json", tmp_path / "new.json")
    assert shown.returncode == 1
    assert shown.stdout.startswith("WARNING: 3 project(s) changed PEP 740 publisher")


def test_run_verifies_and_refuses_a_plan_that_breaks_the_policy(
    tmp_path: Path, setup: Setup, index_server: MakeIndexServer, run_cli: RunCli
) -> None:
    root = _index(tmp_path, setup.sdist, setup.tools, extra=(Dist("plain", "1.0"),))
    server = index_server(root)
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        yaml.safe_dump(
            {
                "require_attestations": ["plain"],
                "publishers": {"pypi-attestations": ["github:trailofbits/other"]},
            }
        )
    )
    refused = run_cli(
        "run", "pypi-attestations==0.0.19", "plain", "--index-url", server.index_url,
        "--isolated", "--cache-dir", setup.cache, "--attestations", "--policy", policy,
        "--venv", tmp_path / "venv", "--progress", "none", "-o", "plan.json",
    )  # fmt: skip
    assert refused.returncode != 0
    lines = [line for line in refused.stderr.splitlines() if line.startswith("fetchplan: policy:")]
    assert lines == [
        "fetchplan: policy: plain-1.0-py3-none-any.whl: require_attestations: no verified "
        "attestations: the index named no PEP 740 provenance for it",
        f"fetchplan: policy: {SDIST}: publishers: attested by {IDENTITY}, not by an allowed "
        "publisher (github:trailofbits/other)",
    ]
    # The plan run wrote records what was verified; nothing was fetched.
    plan = load_plan(tmp_path / "plan.json")[0]
    assert [b.identity for a in plan.artifacts for b in a.attestations or ()] == [IDENTITY]
    assert not [r for r in server.requests("/files/plain-") if r.path.endswith(".whl")]


def test_exports_carry_the_verified_publishers() -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator
    from packaging.pylock import Pylock

    from fetchplan.formats import export_plan
    from fetchplan.formats.cyclonedx import dumps_cyclonedx

    url = "https://index.test/integrity/x/provenance"
    plan = _plan(
        replace(
            _artifact("signed", url, ("org/signed", "release.yml"), ("org/signed", "release.yml")),
            requested=True,
        ),
        replace(_artifact("plain", None), requested=True),
    )
    lock = Pylock.from_dict(tomllib.loads(export_plan(plan, "pylock")))
    identities = {p.name: p.attestation_identities for p in lock.packages}
    assert identities == {
        "plain": None,
        "signed": [{"kind": "GitHub", "repository": "org/signed", "workflow": "release.yml"}],
    }
    text = dumps_cyclonedx(plan)
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    properties = {
        component["name"]: [
            p["value"] for p in component["properties"] if p["name"].endswith("publisher")
        ]
        for component in json.loads(text)["components"]
    }
    assert properties == {"plain": [], "signed": ["github:org/signed:release.yml"]}
