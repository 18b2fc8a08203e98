"""Gemini generateContent on the wire (as ai.google.dev specifies)."""

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
from streams.providers.structured import GEMINI, schema_for
from tests.providers.helpers import EXAMPLES, JOB, VALID, Recorder, recorded, response

RPC = "type.googleapis.com/google.rpc."


def _answer(text: str, finish: str = "STOP", **extra: Any) -> dict[str, Any]:
    return {
        "candidates": [
            {
                "content": {"parts": [{"text": text}], "role": "model"},
                "finishReason": finish,
                "index": 0,
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 100,
            "candidatesTokenCount": 40,
            "thoughtsTokenCount": 10,
        },
        "modelVersion": "gemini-2.5-flash-lite",
        **extra,
    }


async def test_request_uses_response_json_schema_and_the_api_key_header() -> None:
    recorder = Recorder(200, _answer(VALID))
    completion = await recorded("gemini", recorder).enrich(
        EnrichRequest(job=JOB, max_tokens=300, temperature=0.3), deadline=Deadline.after(5)
    )
    request, body = recorder.requests[0], recorder.sent
    assert request.url.path == "/v1beta/models/gemini-2.5-flash-lite:generateContent"
    assert request.headers["x-goog-api-key"] == DEFAULT_API_KEY
    assert "key" not in request.url.params, "the key travels in a header, never in the URL"
    config = body["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseJsonSchema"] == schema_for(GEMINI)
    assert "responseSchema" not in config
    assert config["maxOutputTokens"] == 300
    assert config["temperature"] == 0.3
    assert config["thinkingConfig"] == {"thinkingBudget": 0}
    assert body["systemInstruction"]["parts"][0]["text"]
    assert body["contents"][0]["role"] == "user"
    # thinking is billed as output
    assert completion.usage.output_tokens == 50
    assert completion.usage.reasoning_tokens == 10


def test_thought_parts_are_skipped() -> None:
    data = _answer(VALID)
    data["candidates"][0]["content"]["parts"].insert(0, {"text": "let me think", "thought": True})
    answer = recorded("gemini", Recorder(200, {})).read(data, status=200)
    assert answer.text == VALID


def test_the_vendor_examples_parse() -> None:
    adapter = recorded("gemini", Recorder(200, {}))
    answer = adapter.read(EXAMPLES["gemini_resp"], status=200)
    assert json.loads(answer.text or "")["seniority"] == "senior"
    assert answer.usage.output_tokens == 44 + 162
    limited = adapter.error_for(response(429, EXAMPLES["gemini_err"]))
    assert type(limited) is RateLimited
    assert limited.retry_after_s == 27.0


def _status(code: int, status: str, *details: dict[str, Any], message: str = "m") -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": status, "details": list(details)}}


@pytest.mark.parametrize(
    ("status", "body", "error", "delay"),
    [
        (400, _status(400, "INVALID_ARGUMENT"), BadRequest, None),
        (
            400,
            _status(
                400,
                "INVALID_ARGUMENT",
                {"@type": f"{RPC}ErrorInfo", "reason": "API_KEY_INVALID"},
                message="API key not valid.",
            ),
            AuthenticationError,
            None,
        ),
        (400, _status(400, "FAILED_PRECONDITION"), QuotaExhausted, None),
        (403, _status(403, "PERMISSION_DENIED"), AuthenticationError, None),
        (404, _status(404, "NOT_FOUND"), BadRequest, None),
        (
            429,
            _status(429, "RESOURCE_EXHAUSTED", {"@type": f"{RPC}RetryInfo", "retryDelay": "1.5s"}),
            RateLimited,
            1.5,
        ),
        (
            429,
            _status(
                429,
                "RESOURCE_EXHAUSTED",
                {
                    "@type": f"{RPC}QuotaFailure",
                    "violations": [{"quotaId": "GenerateRequestsPerDayPerProjectPerModel"}],
                },
            ),
            QuotaExhausted,
            None,
        ),
        (500, _status(500, "INTERNAL"), ProviderUnavailable, None),
        (503, _status(503, "UNAVAILABLE"), ProviderUnavailable, None),
        (504, _status(504, "DEADLINE_EXCEEDED"), ProviderUnavailable, None),
    ],
)
def test_every_documented_error(
    status: int, body: Any, error: type[ProviderError], delay: float | None
) -> None:
    mapped = recorded("gemini", Recorder(200, {})).error_for(response(status, body))
    assert type(mapped) is error
    assert mapped.retry_after_s == delay


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ({"promptFeedback": {"blockReason": "SAFETY"}}, "blocked: SAFETY"),
        (_answer(VALID, "MAX_TOKENS"), "truncated"),
        (_answer(VALID, "RECITATION"), "withheld"),
        (_answer("", "STOP"), "blank"),
    ],
)
async def test_blocked_and_cut_answers_are_invalid_output(data: dict[str, Any], says: str) -> None:
    with pytest.raises(InvalidOutput, match=says):
        await recorded("gemini", Recorder(200, data)).enrich(
            EnrichRequest(job=JOB), deadline=Deadline.after(5)
        )
