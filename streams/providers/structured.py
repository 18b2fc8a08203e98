"""The Enrichment schema as each vendor's structured output takes it: exactly the keywords it
accepts. A keyword it does not accept is said in words in the field's ``description`` instead
(the model still reads the bound), and every answer is validated here against the whole
contract, so what a vendor does not enforce is enforced anyway.

Which keywords each vendor accepts (their structured-output references):

- OpenAI ``json_schema`` strict: ``pattern`` and ``format`` on strings, ``minimum``,
  ``maximum``, ``exclusiveMinimum``, ``exclusiveMaximum`` and ``multipleOf`` on numbers,
  ``minItems`` and ``maxItems`` on arrays; a schema with any other (``minLength``,
  ``maxLength``, ``uniqueItems``, …) is refused with 400.
- Anthropic ``output_config.format`` (and a tool's ``input_schema``): no numeric, length or
  pattern constraint; ``minItems`` only 0 or 1; a few string ``format``s.
- Gemini ``responseJsonSchema``: ``format``, ``minItems``, ``maxItems``, ``minimum``,
  ``maximum``, and no string constraint.
- llama.cpp's grammar (behind Ollama's ``format`` and most OpenAI-compatible servers): the
  numeric, length, item-count and ``pattern`` keywords, not ``uniqueItems``.
- No enforcement (a schema in the prompt: DeepSeek, ``json_object`` servers): every keyword,
  since only the model reads it.

No vendor that bills the schema as input gets an enum longer than ``MAX_ENUM_SENT`` (the
currency's 180 codes, about 300 tokens a call): the field's pattern and description stand for
it, and the answer is checked here against the list. A local grammar (llama.cpp's) keeps it:
there it costs no tokens, and a tiny model cannot write a code that is not one.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from streams.schemas import enrichment_schema, map_schema

__all__ = [
    "ANTHROPIC",
    "EVERY_KEYWORD",
    "GEMINI",
    "LLAMA_CPP",
    "MAX_ENUM_SENT",
    "OPENAI_STRICT",
    "schema_for",
]

# What every vendor takes: the shape of the answer.
_STRUCTURE = frozenset(
    {"type", "properties", "required", "additionalProperties", "items", "enum", "anyOf"}
)
_ANNOTATIONS = frozenset({"description"})
OPENAI_STRICT = (
    _STRUCTURE
    | _ANNOTATIONS
    | {"pattern", "format", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}
    | {"multipleOf", "minItems", "maxItems"}
)
ANTHROPIC = _STRUCTURE | _ANNOTATIONS | {"format"}
GEMINI = _STRUCTURE | _ANNOTATIONS | {"format", "minimum", "maximum", "minItems", "maxItems"}
LLAMA_CPP = (
    _STRUCTURE
    | _ANNOTATIONS
    | {"pattern", "format", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}
    | {"minItems", "maxItems", "minLength", "maxLength"}
)
EVERY_KEYWORD: frozenset[str] | None = None
MAX_ENUM_SENT = 32

# The keywords a schema of ours may hold beyond the structure, in words.
_SAID = {
    "minimum": "at least {}",
    "maximum": "at most {}",
    "minLength": "at least {} characters",
    "maxLength": "at most {} characters",
    "minItems": "at least {} items",
    "maxItems": "at most {} items",
    "uniqueItems": "no item twice",
    "pattern": "matching {}",
}


@functools.cache
def schema_for(accepted: frozenset[str] | None, *, grammar: bool = False) -> dict[str, Any]:
    """The Enrichment schema with only the keywords in ``accepted`` (None: all of them).
    ``grammar``: for a local decoder that compiles the schema into a grammar and bills no
    tokens for it, so it keeps enums longer than ``MAX_ENUM_SENT``."""
    most = None if grammar else MAX_ENUM_SENT
    keep = functools.partial(_keep, accepted=accepted, most=most)
    return map_schema(copy.deepcopy(enrichment_schema()), keep)


def _keep(
    node: dict[str, Any], *, accepted: frozenset[str] | None, most: int | None
) -> dict[str, Any]:
    """One schema (its children already done) with only the ``accepted`` keywords, the
    others said in its description."""
    kept: dict[str, Any] = {}
    dropped: dict[str, Any] = {}
    for keyword, value in node.items():
        if keyword == "enum" and most is not None and len(value) > most:
            continue  # the field's pattern and description stand for it
        if accepted is not None and keyword not in accepted:
            if keyword not in _SAID:
                raise ValueError(f"the Enrichment schema uses {keyword!r}: say how it is said")
            dropped[keyword] = value
        else:
            kept[keyword] = value
    words = "; ".join(
        said.format(dropped[keyword])
        for keyword, said in _SAID.items()
        if dropped.get(keyword, False) is not False
    )
    if words:
        kept["description"] = f"{kept['description']} ({words})" if "description" in kept else words
    return kept
