"""The optional core metadata of a plan's artifacts: read from METADATA in PEP 566 JSON form,
carried by the plan (old plans without it stay valid), written into pip reports."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from packaging.utils import NormalizedName

from fetchplan.errors import FileFormatError
from fetchplan.formats import export_plan, import_plan
from fetchplan.planner.metadata import metadata_json
from fetchplan.schemas import validate
from fetchplan.schemas.plan import Artifact, Dependency, Inputs, Plan, Target

RAW = """\
Metadata-Version: 2.4
Name: Zeta.Lib
Version: 3.0rc1
Summary: Zeta, a library
Keywords: fast, small,  json
Author: Zoë Ünicode
License-Expression: MIT
Classifier: Programming Language :: Python
Classifier: Typing :: Typed
Requires-Python: >=3.10
Requires-Dist: attrs>=23
Requires-Dist: tomli; python_version < "3.11"
Requires-Dist: sphinx; extra == "docs"
Provides-Extra: docs
Project-URL: Homepage, https://zeta.example.org
Project-URL: Source, https://code.example.org/zeta
Description: a description in a header, left out too
X-Custom-Header: ignored
Dynamic: license-file

# Zeta

A long description body, left out.
""".encode()


def test_metadata_json_is_pep566_without_description() -> None:
    assert metadata_json(RAW) == {
        "metadata_version": "2.4",
        "name": "Zeta.Lib",
        "version": "3.0rc1",
        "dynamic": ["license-file"],
        "summary": "Zeta, a library",
        "keywords": ["fast", "small", "json"],
        "author": "Zoë Ünicode",
        "license_expression": "MIT",
        "classifier": ["Programming Language :: Python", "Typing :: Typed"],
        "requires_dist": ["attrs>=23", 'tomli; python_version < "3.11"', 'sphinx; extra == "docs"'],
        "requires_python": ">=3.10",
        "project_url": [
            "Homepage, https://zeta.example.org",
            "Source, https://code.example.org/zeta",
        ],
        "provides_extra": ["docs"],
    }
    assert metadata_json(b"Metadata-Version: 2.1\nName: a\nVersion: 1\nKeywords: x y\n")[
        "keywords"
    ] == ["x", "y"]


TARGET = Target(name="default", markers={"python_version": "3.12"}, tags=("py3-none-any",))
BASE = Artifact(
    name=NormalizedName("zeta-lib"),
    version="3.0rc1",
    kind="wheel",
    filename="zeta_lib-3.0rc1-py3-none-any.whl",
    url="https://files.example.org/zeta_lib-3.0rc1-py3-none-any.whl",
    index="https://index.example.org/simple/",
    hashes={"sha256": "a" * 64},
    hash_source="index",
    size=10,
    requires_python=">=3.10",
    dependencies=(Dependency(name=NormalizedName("attrs"), requirement="attrs>=23"),),
    requested=True,
    destination="zeta_lib-3.0rc1-py3-none-any.whl",
)


def _plan(artifact: Artifact) -> Plan:
    return Plan(
        created="2026-01-01T00:00:00Z",
        inputs=Inputs(requirements=("zeta-lib",)),
        targets=(TARGET,),
        indexes=(),
        destination="wheels",
        artifacts=(artifact,),
    )


def test_plan_without_metadata_is_unchanged_and_valid() -> None:
    document = _plan(BASE).to_dict()
    assert "metadata" not in document["artifacts"][0]
    validate(document, "plan", "old.json")
    assert Plan.from_dict(document).artifacts[0].metadata is None


def test_plan_with_metadata_round_trips_and_is_checked() -> None:
    with_metadata = replace(BASE, metadata=metadata_json(RAW))
    document = json.loads(json.dumps(_plan(with_metadata).to_dict()))
    validate(document, "plan", "new.json")
    assert Plan.from_dict(document).artifacts[0] == with_metadata

    bad = json.loads(json.dumps(document))
    bad["artifacts"][0]["metadata"]["requires_dist"] = "attrs>=23"
    del bad["artifacts"][0]["metadata"]["version"]
    with pytest.raises(FileFormatError) as caught:
        validate(bad, "plan", "bad.json")
    paths = {p.path for p in caught.value.problems}
    assert paths == {"artifacts[0].metadata.version", "artifacts[0].metadata.requires_dist"}


def test_pip_report_uses_recorded_metadata_else_falls_back() -> None:
    recorded = replace(BASE, metadata=metadata_json(RAW))
    item = json.loads(export_plan(_plan(recorded), "pip-report"))["install"][0]
    assert item["metadata"] == metadata_json(RAW)  # every declared requirement, as written

    fallback = json.loads(export_plan(_plan(BASE), "pip-report"))["install"][0]
    assert fallback["metadata"] == {
        "metadata_version": "2.1",
        "name": "zeta-lib",
        "version": "3.0rc1",
        "requires_python": ">=3.10",
        "requires_dist": ["attrs>=23"],
    }


def test_pip_report_import_keeps_metadata_it_did_not_make_up() -> None:
    recorded = replace(BASE, metadata=metadata_json(RAW))
    text = export_plan(_plan(recorded), "pip-report")
    assert import_plan(text, "r.json").artifacts[0].metadata == metadata_json(RAW)
    # A fallback the export made up is not recorded as the project's metadata on the way back.
    made_up = export_plan(_plan(BASE), "pip-report")
    assert import_plan(made_up, "r.json").artifacts[0].metadata is None

    # pip's own report: its description is dropped, the rest kept as pip wrote it.
    document = json.loads(text)
    item = document["install"][0]
    del item["fetchplan"]
    del document["fetchplan"]
    item["metadata"]["description"] = "# Zeta\n\nlong text\n"
    back = import_plan(json.dumps(document), "pip.json")
    assert back.artifacts[0].metadata == metadata_json(RAW)
    validate(back.to_dict(), "plan", "back")
    # Metadata of a shape the plan cannot hold is left out rather than failing the import.
    item["metadata"]["classifier"] = [1, 2]
    assert import_plan(json.dumps(document), "pip.json").artifacts[0].metadata is None
