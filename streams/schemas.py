"""JSON Schema documents generated from the models.

Two uses: the published contracts in ``schemas/`` (one file per message and version, with
``$id`` and the version), and the Enrichment schema sent to providers in the strict form every
vendor's structured output takes (each vendor then gets the keywords it accepts:
``streams.providers.structured``).

A message's earlier versions stay in ``schemas/`` as they were published: records written
under them are still on the topics, and their readers keep them.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from streams.enrichment import Enrichment, EnrichmentV1
from streams.models import TOPIC_MESSAGES

__all__ = [
    "contract",
    "contract_file",
    "enrichment_schema",
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
    """The file name of a message's current contract, e.g. ``enriched-job.v2.json``."""
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


@cache
def enrichment_schema(version: type[EnrichmentV1] = Enrichment) -> dict[str, Any]:
    """The Enrichment schema (the current version unless another is named; every keyword) in
    the strict form: no $ref, no titles or defaults, every object closed and fully required,
    nullable values as ``"type": [X, "null"]``."""
    raw = version.model_json_schema()
    definitions = raw.pop("$defs", {})

    def strict(node: Any) -> Any:
        if isinstance(node, list):
            return [strict(item) for item in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            return strict(definitions[node["$ref"].rsplit("/", 1)[-1]])
        out = {k: strict(v) for k, v in node.items() if k not in ("title", "default")}
        if "anyOf" in out:
            out = _merge_nullable(out)
        if out.get("type") == "object":
            out["required"] = list(out.get("properties", {}))
            out["additionalProperties"] = False
        return out

    result: dict[str, Any] = strict(raw)
    return result


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
