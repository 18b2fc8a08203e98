"""Which JSON Schema keywords each vendor's structured output accepts, as the vendors document
them, and the first one a schema uses that it does not (the vendors refuse such a request
with 400 rather than decode without the constraint).

- OpenAI ``json_schema`` with ``strict: true``: strings ``pattern`` and ``format``; numbers
  ``minimum``, ``maximum``, ``exclusiveMinimum``, ``exclusiveMaximum``, ``multipleOf``;
  arrays ``minItems``, ``maxItems``; every object closed (``additionalProperties: false``)
  with every property required. Not ``minLength``, ``maxLength``, ``uniqueItems``,
  ``default`` and the like.
- Anthropic ``output_config.format``: no numeric, length or pattern constraint, ``minItems``
  0 or 1 only, a fixed list of string formats.
- Gemini ``responseJsonSchema``: ``$id``, ``$defs``, ``$ref``, ``$anchor``, ``type``,
  ``format``, ``title``, ``description``, ``enum``, ``items``, ``prefixItems``, ``minItems``,
  ``maxItems``, ``minimum``, ``maximum``, ``anyOf``, ``oneOf``, ``properties``,
  ``additionalProperties``, ``required``, ``propertyOrdering``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

_SHAPE = {"type", "properties", "required", "additionalProperties", "items", "enum", "anyOf"}
_NOTES = {"title", "description", "$ref", "$defs"}
_NESTED_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")


@dataclass(frozen=True)
class Rules:
    keywords: frozenset[str]
    min_items: frozenset[int] | None = None  # the values minItems may take; None: any

    def allows(self, keyword: str, value: Any) -> bool:
        if keyword not in self.keywords:
            return False
        return keyword != "minItems" or self.min_items is None or value in self.min_items


OPENAI_STRICT = Rules(
    frozenset(
        _SHAPE
        | _NOTES
        | {"const", "pattern", "format", "minimum", "maximum", "exclusiveMinimum"}
        | {"exclusiveMaximum", "multipleOf", "minItems", "maxItems"}
    )
)
ANTHROPIC = Rules(
    frozenset(_SHAPE | _NOTES | {"const", "default", "allOf", "format", "minItems"}),
    min_items=frozenset({0, 1}),
)
GEMINI = Rules(
    frozenset(
        _SHAPE
        | _NOTES
        | {"$id", "$anchor", "format", "prefixItems", "minItems", "maxItems", "minimum"}
        | {"maximum", "oneOf", "propertyOrdering"}
    )
)


def refused(schema: Any, rules: Rules) -> tuple[tuple[str, ...], str] | None:
    """(where, keyword) of the first keyword ``schema`` uses that ``rules`` do not allow."""
    return next(_refusals(schema, rules, ()), None)


def _refusals(
    node: Any, rules: Rules, where: tuple[str, ...]
) -> Iterator[tuple[tuple[str, ...], str]]:
    if not isinstance(node, dict):
        return
    for keyword, value in node.items():
        if not rules.allows(keyword, value):
            yield where, keyword
        elif keyword in ("properties", "$defs") and isinstance(value, dict):
            for name, field in value.items():
                yield from _refusals(field, rules, (*where, keyword, name))
        elif keyword == "items":
            yield from _refusals(value, rules, (*where, keyword))
        elif keyword in _NESTED_LISTS and isinstance(value, list):
            for option in value:
                yield from _refusals(option, rules, (*where, keyword))


def not_strict(schema: Any, where: tuple[str, ...] = ()) -> tuple[tuple[str, ...], str] | None:
    """OpenAI strict mode's other rule: (where, what) of the first object that is not closed
    or does not require every property."""
    if not isinstance(schema, dict):
        return None
    if "properties" in schema:
        if schema.get("additionalProperties") is not False:
            return where, "'additionalProperties' is required to be supplied and to be false"
        missing = set(schema["properties"]) - set(schema.get("required") or [])
        if missing:
            return where, (
                "'required' is required to be supplied and to be an array including every key "
                f"in properties. Missing '{sorted(missing)[0]}'"
            )
        for name, field in schema["properties"].items():
            found = not_strict(field, (*where, "properties", name))
            if found:
                return found
    nested = [("items", schema.get("items")), *(("anyOf", o) for o in schema.get("anyOf") or [])]
    for label, option in nested:
        found = not_strict(option, (*where, label))
        if found:
            return found
    return None
