"""The OpenAI and DeepSeek adapters over real HTTP against the simulator."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from streams.broker.launcher import free_port
from streams.errors import (
    AuthenticationError,
    BadRequest,
    InvalidOutput,
    ProviderConnectError,
    ProviderTimeout,
    ProviderUnavailable,
    QuotaExhausted,
    RateLimited,
)
from streams.models import RawJob
from streams.providers import EnrichRequest, Provider
from streams.providers.base import retry_after_s
from streams.providers.deepseek import DeepSeekProvider
from streams.providers.openai import OpenAIProvider
from streams.settings import DEFAULT_PRICES, ProviderConfig
from streams.simulator import DEFAULT_API_KEY
from tests.conftest import SimulatorThread

JOB = RawJob(
    job_id="p1",
    title="Senior Data Engineer",
    description="7+ years Python, Spark and Kafka on AWS. Hybrid in Munich. EUR 90-110k per year.",
)
ADAPTERS: dict[str, type[Provider]] = {"openai": OpenAIProvider, "deepseek": DeepSeekProvider}
MODELS = {"openai": "gpt-5.4-mini", "deepseek": "deepseek-v4-flash"}


def _config(
    name: str, base_url: str, *, key: str | None = DEFAULT_API_KEY, model: str | None = None
) -> ProviderConfig:
    return ProviderConfig(
        name=name,
        base_url=base_url,
        api_key=SecretStr(key) if key else None,
        model=model or MODELS[name],
        connect_timeout_s=2.0,
        max_connections=10,
    )


@pytest.fixture(params=["openai", "deepseek"])
async def provider(request: pytest.FixtureRequest, sim: SimulatorThread) -> AsyncIterator[Provider]:
    name = request.param
    url = sim.env()[f"{name.upper()}_BASE_URL"]
    adapter = ADAPTERS[name](_config(name, url), prices=DEFAULT_PRICES)
    yield adapter
    await adapter.aclose()


async def test_enrich_returns_a_valid_enrichment_with_usage_and_cost(provider: Provider) -> None:
    completion = await provider.enrich(EnrichRequest(job=JOB), timeout_s=5)
    assert completion.enrichment.seniority == "senior"
    assert completion.enrichment.remote_policy == "hybrid"
    assert "Spark" in completion.enrichment.skills
    assert completion.enrichment.salary is not None
    assert completion.enrichment.salary.currency == "EUR"
    assert completion.usage.input_tokens > 0
    assert completion.usage.output_tokens > 0
    assert completion.usage.cost_usd > 0
    assert completion.finish_reason == "stop"


async def test_different_jobs_get_different_answers(provider: Provider) -> None:
    other = RawJob(job_id="p2", title="Junior UX Designer", description="Figma. On-site in Lyon.")
    first = await provider.enrich(EnrichRequest(job=JOB), timeout_s=5)
    second = await provider.enrich(EnrichRequest(job=other), timeout_s=5)
    assert first.enrichment != second.enrichment
    assert second.enrichment.seniority == "junior"
    assert second.enrichment.role_family == "design"


async def test_health_checks_key_and_model(provider: Provider, sim: SimulatorThread) -> None:
    assert (await provider.health()).ok
    name = provider.name
    wrong = ADAPTERS[name](
        _config(name, provider.config.base_url, model="no-such-model"), prices={}
    )
    try:
        health = await wrong.health()
        assert not health.ok
        assert "no-such-model" in health.detail
    finally:
        await wrong.aclose()


@pytest.mark.parametrize(
    ("status", "error", "retryable"),
    [
        (429, RateLimited, True),
        (500, ProviderUnavailable, True),
        (503, ProviderUnavailable, True),
        (408, ProviderUnavailable, True),
        (400, BadRequest, False),
        (404, BadRequest, False),
        (422, BadRequest, False),
        (401, AuthenticationError, False),
        (403, AuthenticationError, False),
    ],
)
async def test_status_codes_map_onto_the_taxonomy(
    provider: Provider, sim: SimulatorThread, status: int, error: type[Exception], retryable: bool
) -> None:
    sim.set_faults(provider.name, errors={status: 1.0})
    with pytest.raises(error) as caught:
        await provider.enrich(EnrichRequest(job=JOB), timeout_s=5)
    assert caught.value.retryable is retryable  # type: ignore[attr-defined]
    assert caught.value.status_code == status  # type: ignore[attr-defined]


async def test_retry_after_is_carried(provider: Provider, sim: SimulatorThread) -> None:
    sim.set_faults(provider.name, errors={429: 1.0}, retry_after_s=1.5)
    with pytest.raises(RateLimited) as caught:
        await provider.enrich(EnrichRequest(job=JOB), timeout_s=5)
    assert caught.value.retry_after_s == 1.5


async def test_a_wrong_key_is_an_authentication_error_without_the_key(
    provider: Provider,
) -> None:
    secret = "sk-sentinel-never-print-me-0123456789"
    name = provider.name
    wrong = ADAPTERS[name](_config(name, provider.config.base_url, key=secret), prices={})
    try:
        with pytest.raises(AuthenticationError) as caught:
            await wrong.enrich(EnrichRequest(job=JOB), timeout_s=5)
    finally:
        await wrong.aclose()
    assert secret not in str(caught.value)
    assert secret not in repr(caught.value)
    assert caught.value.status_code == 401


async def test_truncated_output_is_invalid(provider: Provider, sim: SimulatorThread) -> None:
    sim.set_faults(provider.name, outputs={"malformed": 1.0})
    with pytest.raises(InvalidOutput, match="Enrichment schema"):
        await provider.enrich(EnrichRequest(job=JOB), timeout_s=5)


async def test_a_slow_answer_times_out(provider: Provider, sim: SimulatorThread) -> None:
    sim.set_faults(provider.name, latency_ms=2000)
    started = asyncio.get_running_loop().time()
    with pytest.raises(ProviderTimeout):
        await provider.enrich(EnrichRequest(job=JOB), timeout_s=0.3)
    assert asyncio.get_running_loop().time() - started < 1.5


async def test_a_refused_connection_is_retryable() -> None:
    adapter = OpenAIProvider(_config("openai", f"http://127.0.0.1:{free_port()}/v1"), prices={})
    try:
        with pytest.raises(ProviderConnectError) as caught:
            await adapter.enrich(EnrichRequest(job=JOB), timeout_s=2)
    finally:
        await adapter.aclose()
    assert caught.value.retryable


# --- The wire format each vendor documents -------------------------------------------------


class Recorder:
    """An httpx transport that records the request and answers with a canned response."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self.status, self.body, self.headers = status, body, headers or {}
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.status, json=self.body, headers=self.headers)


def _with_transport(name: str, recorder: Recorder, model: str | None = None) -> Provider:
    adapter = ADAPTERS[name](
        _config(name, "http://vendor.invalid/v1", model=model), prices=DEFAULT_PRICES
    )
    adapter._client = httpx.AsyncClient(
        base_url=adapter.config.base_url,
        headers=adapter.auth_headers(),
        transport=httpx.MockTransport(recorder),
    )
    return adapter


def _answer(content: Any, **usage: Any) -> dict[str, Any]:
    return {
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 100, "completion_tokens": 50, **usage},
        "model": "m",
    }


VALID = json.dumps(
    {
        "summary": "s",
        "seniority": "mid",
        "role_family": "data",
        "skills": [],
        "tech_stack": [],
        "years_experience": None,
        "remote_policy": "unknown",
        "salary": None,
        "key_requirements": [],
    }
)


async def test_openai_request_uses_strict_json_schema_and_reasoning_model_rules() -> None:
    recorder = Recorder(200, _answer(VALID))
    adapter = _with_transport("openai", recorder)
    await adapter.enrich(EnrichRequest(job=JOB, max_tokens=300, temperature=0.3), timeout_s=5)
    (request,) = recorder.requests
    body = json.loads(request.content)
    assert request.url.path == "/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {DEFAULT_API_KEY}"
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["strict"] is True
    assert body["max_completion_tokens"] == 300
    assert "max_tokens" not in body
    assert "temperature" not in body, "gpt-5 models reject a custom temperature"

    older = _with_transport("openai", recorder, model="gpt-4.1-mini")
    await older.enrich(EnrichRequest(job=JOB, temperature=0.3), timeout_s=5)
    assert json.loads(recorder.requests[-1].content)["temperature"] == 0.3


async def test_deepseek_request_uses_json_object_with_the_schema_in_the_prompt() -> None:
    recorder = Recorder(200, _answer(VALID, prompt_cache_hit_tokens=40))
    adapter = _with_transport("deepseek", recorder)
    completion = await adapter.enrich(EnrichRequest(job=JOB, max_tokens=300), timeout_s=5)
    body = json.loads(recorder.requests[0].content)
    assert body["response_format"] == {"type": "json_object"}
    assert body["thinking"] == {"type": "disabled"}
    assert body["max_tokens"] == 300
    assert "json" in body["messages"][0]["content"].lower()
    assert '"key_requirements"' in body["messages"][0]["content"]
    assert completion.usage.cached_input_tokens == 40
    # 60 uncached at 0.14, 40 cached at 0.0028, 50 out at 0.28 (USD per million)
    assert completion.usage.cost_usd == pytest.approx((60 * 0.14 + 40 * 0.0028 + 50 * 0.28) / 1e6)


@pytest.mark.parametrize(
    ("name", "status", "body", "error"),
    [
        (
            "openai",
            429,
            {
                "error": {
                    "message": "You exceeded your current quota",
                    "type": "insufficient_quota",
                    "param": None,
                    "code": "insufficient_quota",
                }
            },
            QuotaExhausted,
        ),
        (
            "openai",
            429,
            {
                "error": {
                    "message": "Request too large for gpt-5.4-mini: Requested 300000 > Limit 2000",
                    "type": "tokens",
                    "param": None,
                    "code": "rate_limit_exceeded",
                }
            },
            BadRequest,
        ),
        (
            "deepseek",
            402,
            {
                "error": {
                    "message": "Insufficient Balance",
                    "type": "unknown_error",
                    "param": None,
                    "code": "invalid_request_error",
                }
            },
            QuotaExhausted,
        ),
    ],
)
async def test_errors_that_will_not_clear_are_final(
    name: str, status: int, body: Any, error: type[Exception]
) -> None:
    adapter = _with_transport(name, Recorder(status, body))
    with pytest.raises(error) as caught:
        await adapter.enrich(EnrichRequest(job=JOB), timeout_s=5)
    assert not caught.value.retryable  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("name", "message", "expected"),
    [
        (
            "openai",
            {"role": "assistant", "content": None, "refusal": "I can't help with that."},
            "refused",
        ),
        ("deepseek", {"role": "assistant", "content": "   "}, "blank"),
        ("openai", {"role": "assistant", "content": "not json"}, "schema"),
    ],
)
async def test_bad_answers_are_invalid_output(
    name: str, message: dict[str, Any], expected: str
) -> None:
    body = {"choices": [{"index": 0, "message": message, "finish_reason": "stop"}], "usage": {}}
    adapter = _with_transport(name, Recorder(200, body))
    with pytest.raises(InvalidOutput, match=expected):
        await adapter.enrich(EnrichRequest(job=JOB), timeout_s=5)


async def test_length_finish_reason_is_truncation() -> None:
    body = {
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": VALID},
                "finish_reason": "length",
            }
        ]
    }
    adapter = _with_transport("openai", Recorder(200, body))
    with pytest.raises(InvalidOutput, match="truncated"):
        await adapter.enrich(EnrichRequest(job=JOB), timeout_s=5)


async def test_vendor_text_echoing_the_key_is_redacted() -> None:
    body = {
        "error": {
            "message": f"Incorrect API key provided: {DEFAULT_API_KEY}",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        }
    }
    adapter = _with_transport("openai", Recorder(401, body))
    with pytest.raises(AuthenticationError) as caught:
        await adapter.enrich(EnrichRequest(job=JOB), timeout_s=5)
    assert DEFAULT_API_KEY not in str(caught.value)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after": "2"}, 2.0),
        ({"retry-after": "0.25"}, 0.25),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:10 GMT"}, 10.0),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after": "3600"}, None),
        ({"retry-after": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after_parsing(headers: dict[str, str], expected: float | None) -> None:
    now = 1445412480.0  # 07:28:00 on that day
    assert retry_after_s(httpx.Headers(headers), now=now) == expected
