"""JSON Schema documents generated from the models.

Two uses: the published contracts in ``schemas/`` (one file per message and version, with
``$id`` and the version), and the Enrichment schema sent to providers in the strict form every
vendor's structured output takes (each vendor then gets the keywords it accepts:
``streams.providers.structured``).

A message's earlier versions stay in ``schemas/`` as they were published: records written
under them are still on the topics, and their readers keep them.

Every change of a schema's form (strict for vendors, inlined for registries, a vendor's
keywords) goes through one walker, ``map_schema``, that knows which keywords hold schemas; the
fields a consumer compares are listed by ``leaf_fields``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from streams.enrichment import Enrichment, EnrichmentV1
from streams.models import TOPIC_MESSAGES

__all__ = [
    "contract",
    "contract_file",
    "enrichment_schema",
    "leaf_fields",
    "map_schema",
    "stale_contracts",
    "write_contracts",
]

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def contract(name: str) -> dict[str, Any]:
    """The published schema of one message, e.g. ``contract("raw-job")``."""
    model = TOPIC_MESSAGES[name]
    version = model.contract_version
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": f"urn:llm-provider-streams:schema:{name}:v{version}",
        "version": version,
        **model.model_json_schema(mode="serialization"),
    }


def contract_file(name: str) -> str:
    """The file name of a message's current contract, e.g. ``enriched-job.v3.json``."""
    return f"{name}.v{TOPIC_MESSAGES[name].contract_version}.json"


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def write_contracts(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name in TOPIC_MESSAGES:
        path = directory / contract_file(name)
        path.write_text(render(contract(name)), encoding="utf-8")
        written.append(path)
    return written


def stale_contracts(directory: Path) -> list[str]:
    """File names in ``directory`` that differ from what the models generate."""
    stale = []
    for name in TOPIC_MESSAGES:
        path = directory / contract_file(name)
        if not path.exists() or path.read_text(encoding="utf-8") != render(contract(name)):
            stale.append(path.name)
    return stale


# The keywords whose values are schemas: one, a list of them, or a map of names to them.
_ONE = ("items", "additionalProperties", "not", "contains")
_LIST = ("anyOf", "oneOf", "allOf", "prefixItems")
_MAP = ("properties", "patternProperties", "$defs")

Hook = Callable[[dict[str, Any]], dict[str, Any]]


def map_schema(
    schema: dict[str, Any], hook: Hook = dict, *, inline_refs: bool = False
) -> dict[str, Any]:
    """``schema`` with every schema in it (itself included) passed through ``hook``, the
    innermost first, so a hook sees its children already mapped. ``inline_refs``: each
    ``$ref`` into the schema's ``$defs`` is replaced by that definition (its siblings merged
    over it), and ``$defs`` dropped."""
    definitions = schema.get("$defs", {}) if inline_refs else {}

    def walk(node: dict[str, Any]) -> dict[str, Any]:
        ref = node.get("$ref", "")
        if ref.startswith("#/$defs/") and inline_refs:
            siblings = {key: value for key, value in node.items() if key != "$ref"}
            return walk(definitions[ref.removeprefix("#/$defs/")]) | walk(siblings)
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "$defs" and inline_refs:
                continue
            if key in _ONE and isinstance(value, dict):
                out[key] = walk(value)
            elif key in _LIST:
                out[key] = [walk(item) for item in value]
            elif key in _MAP:
                out[key] = {name: walk(item) for name, item in value.items()}
            else:
                out[key] = value
        return hook(out)

    return walk(schema)


def leaf_fields(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Each field that is not an object, with its dotted path (``salary.currency``), in a
    schema without ``$ref`` (``enrichment_schema``'s)."""
    types = schema.get("type", [])
    if "object" in ({types} if isinstance(types, str) else set(types)):
        for name, child in schema["properties"].items():
            yield from leaf_fields(child, f"{path}.{name}" if path else name)
    else:
        yield path, schema


@cache
def enrichment_schema(version: type[EnrichmentV1] = Enrichment) -> dict[str, Any]:
    """The Enrichment schema (the current version unless another is named; every keyword) in
    the strict form: no $ref, no titles or defaults, every object closed and fully required,
    nullable values as ``"type": [X, "null"]``."""
    return map_schema(version.model_json_schema(), _strict, inline_refs=True)


def _strict(node: Mapping[str, Any]) -> dict[str, Any]:
    out = {key: value for key, value in node.items() if key not in ("title", "default")}
    if "anyOf" in out:
        out = _merge_nullable(out)
    if out.get("type") == "object":
        out["required"] = list(out.get("properties", {}))
        out["additionalProperties"] = False
    return out


def _merge_nullable(node: dict[str, Any]) -> dict[str, Any]:
    """``anyOf: [S, {type: null}]`` becomes S with ``null`` added to its type (and enum)."""
    options = node["anyOf"]
    others = [o for o in options if o != {"type": "null"}]
    if len(options) != 2 or len(others) != 1 or "type" not in others[0]:
        return node
    merged = {k: v for k, v in node.items() if k != "anyOf"}
    merged.update(others[0])
    merged["type"] = [others[0]["type"], "null"]
    if "enum" in merged:
        merged["enum"] = [*merged["enum"], None]
    return merged
