"""The one JSON Schema walker: it maps every schema inside a schema, and only schemas."""

from __future__ import annotations

from typing import Any

from streams.schemas import leaf_fields, map_schema

SCHEMA: dict[str, Any] = {
    "$defs": {
        "Money": {"type": "object", "title": "Money", "properties": {"amount": {"type": "number"}}}
    },
    "type": "object",
    "title": "Job",
    "properties": {
        # a field named like a keyword is a field, not a keyword
        "title": {"type": "string", "title": "Title"},
        "salary": {"$ref": "#/$defs/Money", "description": "per year"},
        "tags": {"type": "array", "items": {"type": "string", "title": "Tag"}},
        "kind": {"anyOf": [{"type": "string", "enum": ["a", "title"]}, {"type": "null"}]},
    },
    "required": ["title"],
}


def _untitled(node: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in node.items() if key != "title"}


def test_the_hook_sees_every_schema_and_nothing_else() -> None:
    mapped = map_schema(SCHEMA, _untitled, inline_refs=True)
    assert "$defs" not in mapped
    assert set(mapped["properties"]) == {"title", "salary", "tags", "kind"}
    assert mapped["properties"]["title"] == {"type": "string"}
    assert mapped["properties"]["salary"] == {
        "type": "object",
        "properties": {"amount": {"type": "number"}},
        "description": "per year",
    }
    assert mapped["properties"]["tags"]["items"] == {"type": "string"}
    assert mapped["properties"]["kind"]["anyOf"][0]["enum"] == ["a", "title"]
    assert mapped["required"] == ["title"]


def test_without_inlining_refs_stay_and_definitions_are_mapped_too() -> None:
    mapped = map_schema(SCHEMA, _untitled)
    assert mapped["properties"]["salary"]["$ref"] == "#/$defs/Money"
    assert "title" not in mapped["$defs"]["Money"]


def test_leaf_fields_are_named_by_their_dotted_path() -> None:
    inlined = map_schema(SCHEMA, inline_refs=True)
    assert [path for path, _ in leaf_fields(inlined)] == [
        "title",
        "salary.amount",
        "tags",
        "kind",
    ]
