"""OpenAI and DeepSeek on the wire: requests as the reference and the official OpenAPI
document say, the vendor examples parse, the special error cases hold."""

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
    QuotaExhausted,
    RateLimited,
)
from streams.providers.base import EnrichRequest
from tests.providers.helpers import (
    EXAMPLES,
    JOB,
    VALID,
    Recorder,
    openapi_validator,
    recorded,
    response,
)

SPEC = "openai-chat-schemas.json"


def _answer(content: Any, **usage: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1764000000,
        "model": "gpt-5.4-mini",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150, **usage},
    }


async def test_openai_request_is_valid_and_follows_the_reasoning_model_rules() -> None:
    recorder = Recorder(200, _answer(VALID))
    adapter = recorded("openai", recorder)
    await adapter.enrich(
        EnrichRequest(job=JOB, max_tokens=300, temperature=0.3), deadline=Deadline.after(5)
    )
    request = recorder.requests[0]
    body = recorder.sent
    openapi_validator(SPEC, "CreateChatCompletionRequest").validate(body)
    assert request.url.path == "/chat/completions"
    assert request.headers["authorization"] == f"Bearer {DEFAULT_API_KEY}"
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["strict"] is True
    assert body["max_completion_tokens"] == 300
    assert "max_tokens" not in body
    assert "temperature" not in body, "gpt-5 models reject a custom temperature"

    older = recorded("openai", recorder, model="gpt-4.1-mini")
    await older.enrich(EnrichRequest(job=JOB, temperature=0.3), deadline=Deadline.after(5))
    assert recorder.sent["temperature"] == 0.3


async def test_deepseek_request_uses_json_object_with_the_schema_in_the_prompt() -> None:
    recorder = Recorder(200, _answer(VALID, prompt_cache_hit_tokens=40))
    adapter = recorded("deepseek", recorder)
    completion = await adapter.enrich(
        EnrichRequest(job=JOB, max_tokens=300), deadline=Deadline.after(5)
    )
    body = recorder.sent
    # DeepSeek = OpenAI's format plus a top-level `thinking` switch (its own extension)
    openapi_validator(SPEC, "CreateChatCompletionRequest").validate(
        {k: v for k, v in body.items() if k != "thinking"}
    )
    assert body["response_format"] == {"type": "json_object"}
    assert body["thinking"] == {"type": "disabled"}
    assert body["max_tokens"] == 300
    assert "json" in body["messages"][0]["content"].lower()
    assert '"key_requirements"' in body["messages"][0]["content"]
    assert completion.usage.cached_input_tokens == 40
    # 60 uncached at 0.14, 40 cached at 0.0028, 50 out at 0.28 (USD per million)
    assert completion.usage.cost_usd == pytest.approx((60 * 0.14 + 40 * 0.0028 + 50 * 0.28) / 1e6)


def test_the_simulators_answers_match_the_official_schema() -> None:
    from llm_sim.openai import OpenAIDialect

    validator = openapi_validator(SPEC, "CreateChatCompletionResponse")
    validator.validate(EXAMPLES["openai_resp"])
    validator.validate(_answer(VALID))
    dialect = OpenAIDialect(api_key="k")
    from llm_sim.dialect import Call

    answer = dialect.answer(
        Call(model="gpt-5.4-mini", body={}, prompt="p", user_text="u"), VALID, truncated=False
    )
    validator.validate(json.loads(answer.body))  # type: ignore[attr-defined]
    openapi_validator(SPEC, "ErrorResponse").validate(EXAMPLES["openai_err"])


@pytest.mark.parametrize("name", ["openai", "deepseek"])
def test_the_vendor_examples_parse(name: str) -> None:
    adapter = recorded(name, Recorder(200, {}))
    answer = adapter.read(EXAMPLES[f"{name}_resp"], status=200)
    assert json.loads(answer.text or "")["seniority"] == "senior"
    assert answer.finish_reason == "stop"
    expected_input = EXAMPLES[f"{name}_resp"]["usage"]["prompt_tokens"]
    assert answer.usage.input_tokens == expected_input
    error = adapter.error_for(response(429 if name == "openai" else 402, EXAMPLES[f"{name}_err"]))
    assert type(error) is (RateLimited if name == "openai" else QuotaExhausted)


QUOTA = {
    "error": {
        "message": "You exceeded your current quota",
        "type": "insufficient_quota",
        "param": None,
        "code": "insufficient_quota",
    }
}
TOO_LARGE = {
    "error": {
        "message": "Request too large for gpt-5.4-mini: Requested 300000 > Limit 2000",
        "type": "tokens",
        "param": None,
        "code": "rate_limit_exceeded",
    }
}
KEY = {
    "error": {
        "message": f"Incorrect API key provided: {DEFAULT_API_KEY}",
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_api_key",
    }
}


@pytest.mark.parametrize(
    ("status", "body", "headers", "error"),
    [
        (429, QUOTA, {}, QuotaExhausted),
        (429, TOO_LARGE, {}, BadRequest),
        (401, KEY, {}, AuthenticationError),
        (400, KEY, {"x-should-retry": "true"}, ProviderError),
        (503, KEY, {"x-should-retry": "false"}, BadRequest),
    ],
)
def test_errors_the_status_alone_does_not_tell(
    status: int, body: Any, headers: dict[str, str], error: type[ProviderError]
) -> None:
    mapped = recorded("openai", Recorder(200, {})).error_for(response(status, body, headers))
    assert isinstance(mapped, error)
    assert mapped.retryable is (headers.get("x-should-retry") == "true")
    assert DEFAULT_API_KEY not in str(mapped)


@pytest.mark.parametrize(
    ("message", "finish", "says"),
    [
        (
            {"role": "assistant", "content": None, "refusal": "I can't help with that."},
            "stop",
            "refused",
        ),
        ({"role": "assistant", "content": VALID}, "length", "truncated"),
        ({"role": "assistant", "content": VALID}, "content_filter", "content filter"),
        ({"role": "assistant", "content": "   "}, "stop", "blank"),
    ],
)
async def test_refusals_and_cut_answers_are_invalid_output(
    message: dict[str, Any], finish: str, says: str
) -> None:
    body = {"choices": [{"index": 0, "message": message, "finish_reason": finish}], "usage": {}}
    adapter = recorded("openai", Recorder(200, body))
    with pytest.raises(InvalidOutput, match=says):
        await adapter.enrich(EnrichRequest(job=JOB), deadline=Deadline.after(5))
