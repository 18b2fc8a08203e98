"""Each vendor's structured output gets exactly the keywords it accepts; the rest is said in
words, and the whole contract is enforced on the answer here."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from streams.providers.structured import (
    ANTHROPIC,
    EVERY_KEYWORD,
    GEMINI,
    LLAMA_CPP,
    MAX_ENUM_SENT,
    OPENAI_STRICT,
    schema_for,
)
from streams.schemas import enrichment_schema


def keywords(node: Any) -> Iterator[str]:
    """Every keyword a schema uses (property names are not keywords)."""
    for keyword, value in node.items():
        yield keyword
        if keyword == "properties":
            for field in value.values():
                yield from keywords(field)
        elif keyword == "items":
            yield from keywords(value)
        elif keyword == "anyOf":
            for option in value:
                yield from keywords(option)


@pytest.mark.parametrize("accepted", [OPENAI_STRICT, ANTHROPIC, GEMINI, LLAMA_CPP])
def test_a_vendor_gets_only_what_it_accepts(accepted: frozenset[str]) -> None:
    assert set(keywords(schema_for(accepted))) <= accepted


def test_what_a_vendor_does_not_take_is_said_in_words() -> None:
    fields = schema_for(ANTHROPIC)["properties"]
    assert "at most 25 items; no item twice" in fields["skills"]["description"]
    assert fields["skills"]["items"]["description"] == "at most 60 characters"
    assert "at least 0; at most 50" in fields["years_experience"]["description"]
    assert fields["summary"]["description"] == "Two sentences at most. (at most 500 characters)"


def test_each_vendor_keeps_the_bounds_it_enforces() -> None:
    openai, gemini, llama = (
        schema_for(k)["properties"] for k in (OPENAI_STRICT, GEMINI, LLAMA_CPP)
    )
    assert openai["skills"]["maxItems"] == gemini["skills"]["maxItems"] == 25
    assert "maxLength" not in openai["summary"]
    assert "uniqueItems" not in openai["skills"]
    assert openai["years_experience"]["maximum"] == gemini["years_experience"]["maximum"] == 50
    assert llama["summary"]["maxLength"] == 500
    assert "uniqueItems" not in llama["skills"]
    currency = openai["salary"]["properties"]["currency"]
    assert currency["pattern"] == "^[A-Z]{3}$"
    assert "enum" not in currency, "180 codes would cost about 300 prompt tokens a call"
    grammar = schema_for(LLAMA_CPP, grammar=True)["properties"]["salary"]["properties"]
    assert "EUR" in grammar["currency"]["enum"], "a local grammar bills no tokens for it"
    assert None in grammar["currency"]["enum"]


def test_a_schema_in_the_prompt_has_every_keyword_but_a_long_enum() -> None:
    whole, sent = enrichment_schema(), schema_for(EVERY_KEYWORD)
    assert sent["properties"]["skills"] == whole["properties"]["skills"]
    assert whole["properties"]["skills"]["uniqueItems"] is True
    currency = whole["properties"]["salary"]["properties"]["currency"]
    assert len(currency["enum"]) > MAX_ENUM_SENT  # the contract has the list
    assert "enum" not in sent["properties"]["salary"]["properties"]["currency"]
    assert sent["properties"]["seniority"] == whole["properties"]["seniority"]
