"""Every field of the plan, manifest and checkpoint formats is described once, in its JSON
Schema, and the models (frozen dataclasses) show that same text: ``@described`` lists the
schema's descriptions in each model's docstring, and every field is a described property."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Iterator
from typing import Any

import pytest

from fetchplan.executor.checkpoint import ArtifactState
from fetchplan.schemas import SchemaName, field_descriptions, manifest, plan, schema_node

DESCRIBED: tuple[SchemaName, ...] = ("plan", "manifest", "checkpoint")

WIRE_ONLY: dict[SchemaName, frozenset[str]] = {
    "plan": frozenset({"format", "version"}),
    "manifest": frozenset({"format", "version"}),
    "checkpoint": frozenset({"v", "crc32"}),
}
"""Properties of a document's root that its model writes as constants rather than fields."""


def _property_nodes(node: Any, at: str) -> Iterator[tuple[str, Any]]:
    """Every node that describes a field: the values of each ``properties``, anywhere but in
    the conditions of ``if`` (which only test a field described elsewhere)."""
    if isinstance(node, list):
        for i, item in enumerate(node):
            yield from _property_nodes(item, f"{at}/{i}")
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        if key == "if":
            continue
        if key == "properties":
            for name, child in value.items():
                yield f"{at}/properties/{name}", child
                yield from _property_nodes(child, f"{at}/properties/{name}")
        else:
            yield from _property_nodes(value, f"{at}/{key}")


@pytest.mark.parametrize("name", DESCRIBED)
def test_every_property_has_a_description(name: SchemaName) -> None:
    nodes = list(_property_nodes(schema_node(name), "#"))
    assert len(nodes) > 8
    undescribed = [at for at, node in nodes if not str(node.get("description", "")).strip()]
    assert undescribed == []


def _models() -> list[type[Any]]:
    found: list[type[Any]] = [ArtifactState]
    for module in (plan, manifest):
        found.extend(
            cls
            for _, cls in inspect.getmembers(module, inspect.isclass)
            if dataclasses.is_dataclass(cls) and cls.__module__ == module.__name__
        )
    return found


def test_the_models_are_all_found() -> None:
    names = {cls.__name__ for cls in _models()}
    assert {"Plan", "Artifact", "Manifest", "ManifestArtifact", "ArtifactState"} <= names
    assert len(names) == 16


@pytest.mark.parametrize("model", _models(), ids=lambda cls: cls.__name__)
def test_each_model_field_is_a_described_property_shown_in_its_help(model: type[Any]) -> None:
    name, pointer = model.__schema_node__
    descriptions = field_descriptions(name, pointer)
    fields = [f.name for f in dataclasses.fields(model)]
    wire_only = WIRE_ONLY[name] if pointer == "" else frozenset()
    assert set(fields) == set(descriptions) - wire_only
    help_text = model.__doc__ or ""
    for field_name in fields:
        assert f"- ``{field_name}``: {descriptions[field_name]}\n" in help_text


def test_the_manifest_describes_its_creator_as_the_plan_does() -> None:
    assert field_descriptions("manifest", "properties/creator") == field_descriptions(
        "plan", "$defs/creator"
    )
