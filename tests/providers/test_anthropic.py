"""Anthropic Messages on the wire (POST /v1/messages, as docs.anthropic.com specifies)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from llm_sim import DEFAULT_API_KEY
from streams.deadline import Deadline
from streams.errors import (
    AuthenticationError,
    BadRequest,
    InvalidOutput,
    ProviderError,
    ProviderUnavailable,
    QuotaExhausted,
    RateLimited,
)
from streams.providers.base import EnrichRequest
from streams.providers.prompt import system_prompt
from streams.providers.structured import ANTHROPIC, schema_for
from tests.providers.helpers import EXAMPLES, JOB, VALID, Recorder, recorded, response


def _message(content: list[dict[str, Any]], stop: str = "end_turn") -> dict[str, Any]:
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-haiku-4-5-20251001",
        "content": content,
        "stop_reason": stop,
        "usage": {"input_tokens": 100, "output_tokens": 50, "cache_read_input_tokens": 20},
    }


async def test_request_uses_output_config_headers_and_a_top_level_system() -> None:
    recorder = Recorder(200, _message([{"type": "text", "text": VALID}]))
    completion = await recorded("anthropic", recorder).enrich(
        EnrichRequest(job=JOB, max_tokens=300, temperature=0.3), deadline=Deadline.after(5)
    )
    request, body = recorder.requests[0], recorder.sent
    assert request.url.path == "/v1/messages"
    assert request.headers["x-api-key"] == DEFAULT_API_KEY
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in request.headers
    assert body["max_tokens"] == 300
    assert body["temperature"] == 0.3
    # the static part, marked for the prompt cache
    assert body["system"] == [
        {
            "type": "text",
            "text": system_prompt(with_schema=False),
            "cache_control": {"type": "ephemeral"},
        }
    ]
    assert [m["role"] for m in body["messages"]] == ["user"]
    assert body["output_config"] == {
        "format": {"type": "json_schema", "schema": schema_for(ANTHROPIC)}
    }
    assert "tools" not in body
    # cached tokens are outside input_tokens on the wire, inside Usage.input_tokens here
    assert completion.usage.input_tokens == 120
    assert completion.usage.cached_input_tokens == 20
    # 100 at 1.00, 20 cached at 0.10, 50 out at 5.00 (USD per million)
    assert completion.usage.cost_usd == pytest.approx((100 * 1.0 + 20 * 0.10 + 50 * 5.0) / 1e6)


async def test_models_without_structured_outputs_get_a_forced_tool() -> None:
    tool_answer = _message(
        [
            {
                "type": "tool_use",
                "id": "toolu_1",
                "name": "record_enrichment",
                "input": json.loads(VALID),
            }
        ],
        stop="tool_use",
    )
    recorder = Recorder(200, tool_answer)
    completion = await recorded("anthropic", recorder, model="claude-sonnet-4-0").enrich(
        EnrichRequest(job=JOB), deadline=Deadline.after(5)
    )
    body = recorder.sent
    assert body["tool_choice"] == {"type": "tool", "name": "record_enrichment"}
    assert body["tools"][0]["input_schema"] == schema_for(ANTHROPIC)
    assert "output_config" not in body
    assert completion.enrichment.role_family == "data"


async def test_opus_4_7_gets_no_temperature_and_others_stay_within_one() -> None:
    recorder = Recorder(200, _message([{"type": "text", "text": VALID}]))
    await recorded("anthropic", recorder, model="claude-opus-4-7").enrich(
        EnrichRequest(job=JOB, temperature=0.3), deadline=Deadline.after(5)
    )
    assert "temperature" not in recorder.sent
    await recorded("anthropic", recorder).enrich(
        EnrichRequest(job=JOB, temperature=1.7), deadline=Deadline.after(5)
    )
    assert recorder.sent["temperature"] == 1.0


def test_the_vendor_examples_parse() -> None:
    adapter = recorded("anthropic", Recorder(200, {}))
    text = adapter.read(EXAMPLES["anthropic_resp"], status=200)
    assert json.loads(text.text or "")["seniority"] == "senior"
    assert text.usage.input_tokens == 180
    tool = adapter.read(EXAMPLES["anthropic_tool_resp"], status=200)
    assert json.loads(tool.text or "")["seniority"]
    assert tool.finish_reason == "tool_use"
    assert EXAMPLES["anthropic_req"]["output_config"]["format"]["type"] == "json_schema"
    overloaded = adapter.error_for(response(529, EXAMPLES["anthropic_err"]))
    assert type(overloaded) is ProviderUnavailable
    assert "overloaded_error" in str(overloaded)


@pytest.mark.parametrize(
    ("status", "kind", "headers", "error"),
    [
        (400, "invalid_request_error", {}, BadRequest),
        (401, "authentication_error", {}, AuthenticationError),
        (402, "billing_error", {}, QuotaExhausted),
        (403, "permission_error", {}, AuthenticationError),
        (404, "not_found_error", {}, BadRequest),
        (409, "conflict_error", {}, ProviderUnavailable),
        (413, "request_too_large", {}, BadRequest),
        (429, "rate_limit_error", {"retry-after": "7"}, RateLimited),
        (500, "api_error", {}, ProviderUnavailable),
        (529, "overloaded_error", {}, ProviderUnavailable),
    ],
)
def test_every_documented_error_type(
    status: int, kind: str, headers: dict[str, str], error: type[ProviderError]
) -> None:
    body = {"type": "error", "error": {"type": kind, "message": "m"}, "request_id": "req_1"}
    mapped = recorded("anthropic", Recorder(200, {})).error_for(response(status, body, headers))
    assert type(mapped) is error
    assert mapped.retry_after_s == (7.0 if headers else None)


@pytest.mark.parametrize(
    ("stop", "says"),
    [
        ("refusal", "refused"),
        ("max_tokens", "truncated"),
        ("model_context_window_exceeded", "context"),
    ],
)
async def test_stop_reasons_that_are_not_answers(stop: str, says: str) -> None:
    adapter = recorded(
        "anthropic", Recorder(200, _message([{"type": "text", "text": VALID}], stop))
    )
    with pytest.raises(InvalidOutput, match=says):
        await adapter.enrich(EnrichRequest(job=JOB), deadline=Deadline.after(5))
