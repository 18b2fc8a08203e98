"""Ollama /api/chat on the wire, validated against Ollama's official OpenAPI document."""

from __future__ import annotations

import json

import httpx
import pytest

from devstack.harness import SimulatorThread
from llm_sim.dialect import Call
from llm_sim.ollama import OllamaDialect
from streams.deadline import Deadline
from streams.errors import BadRequest, InvalidOutput, ProviderUnavailable, RateLimited
from streams.providers.base import EnrichRequest
from streams.providers.structured import LLAMA_CPP, schema_for
from tests.providers.helpers import (
    EXAMPLES,
    JOB,
    VALID,
    Recorder,
    openapi_validator,
    recorded,
    response,
)

SPEC = "ollama-chat-schemas.json"


def _answer(content: str, done_reason: str = "stop") -> dict[str, object]:
    return {
        "model": "llama3.2",
        "created_at": "2026-11-24T12:00:00Z",
        "message": {"role": "assistant", "content": content},
        "done": True,
        "done_reason": done_reason,
        "eval_count": 30,
    }


async def test_request_is_valid_non_streaming_with_the_schema_as_format() -> None:
    recorder = Recorder(200, _answer(VALID))
    completion = await recorded("ollama", recorder).enrich(
        EnrichRequest(job=JOB, max_tokens=300, temperature=0.3), deadline=Deadline.after(5)
    )
    body = recorder.sent
    openapi_validator(SPEC, "ChatRequest").validate(body)
    assert recorder.requests[0].url.path == "/api/chat"
    assert body["stream"] is False
    assert body["format"] == schema_for(
        LLAMA_CPP, grammar=True
    )  # the keywords its grammar enforces
    assert body["options"] == {"num_predict": 300, "temperature": 0.3}
    assert completion.usage.input_tokens == 0, "prompt_eval_count may be missing"
    assert completion.usage.output_tokens == 30
    assert completion.usage.cost_usd == 0


def test_examples_and_simulator_answers_match_the_official_schema() -> None:
    validator = openapi_validator(SPEC, "ChatResponse")
    validator.validate(EXAMPLES["ollama_resp"])
    openapi_validator(SPEC, "ChatRequest").validate(EXAMPLES["ollama_req"])
    call = Call(model="llama3.2", body={"stream": False}, prompt="p", user_text="u")
    answer = OllamaDialect(api_key="").answer(call, VALID, truncated=False)
    validator.validate(json.loads(answer.body))  # type: ignore[attr-defined]
    openapi_validator(SPEC, "ErrorResponse").validate(EXAMPLES["ollama_err"])
    parsed = recorded("ollama", Recorder(200, {})).read(EXAMPLES["ollama_resp"], status=200)
    assert json.loads(parsed.text or "")["seniority"] == "senior"
    assert parsed.usage.input_tokens == 96


def test_the_simulator_streams_ndjson_unless_told_not_to(sim: SimulatorThread) -> None:
    url = sim.env()["OLLAMA_BASE_URL"] + "/api/chat"
    body = {"model": "llama3.2", "messages": [{"role": "user", "content": "Title: x"}]}
    streamed = httpx.post(url, json=body)
    lines = [json.loads(line) for line in streamed.text.splitlines()]
    assert streamed.headers["content-type"].startswith("application/x-ndjson")
    assert [line["done"] for line in lines] == [False, True]
    validator = openapi_validator(SPEC, "ChatResponse")
    for line in lines:
        validator.validate(line)


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, BadRequest),
        (404, BadRequest),
        (429, RateLimited),
        (500, ProviderUnavailable),
        (502, ProviderUnavailable),
    ],
)
def test_errors(status: int, error: type[Exception]) -> None:
    mapped = recorded("ollama", Recorder(200, {})).error_for(
        response(status, {"error": "model 'x' not found"})
    )
    assert type(mapped) is error
    assert "model 'x' not found" in str(mapped)


async def test_truncation_and_errors_inside_a_200() -> None:
    with pytest.raises(InvalidOutput, match="truncated"):
        await recorded("ollama", Recorder(200, _answer(VALID, "length"))).enrich(
            EnrichRequest(job=JOB), deadline=Deadline.after(5)
        )
    with pytest.raises(ProviderUnavailable, match="error in answer"):
        await recorded("ollama", Recorder(200, {"error": "llama runner crashed"})).enrich(
            EnrichRequest(job=JOB), deadline=Deadline.after(5)
        )
