"""Every adapter over real HTTP against the simulator: answers, health, the error taxonomy,
bad output, timeouts. The same tests run for every registered provider."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from devstack.broker.launcher import free_port
from devstack.harness import SimulatorThread
from streams.deadline import Deadline
from streams.errors import (
    AuthenticationError,
    BadRequest,
    DeadlineExceeded,
    InvalidOutput,
    ProviderConnectError,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    QuotaExhausted,
    RateLimited,
    failed_attempt,
)
from streams.models import RawJob
from streams.providers.base import EnrichRequest, Provider
from streams.providers.build import adapter_for
from streams.vocab import PROVIDER_NAMES
from tests.providers.helpers import JOB, config

PROVIDERS: list[str] = list(PROVIDER_NAMES)


def _adapter(sim: SimulatorThread, name: str, **options: object) -> Provider:
    url = sim.env()[f"{name.upper()}_BASE_URL"]
    return adapter_for(name)(config(name, url, **options))  # type: ignore[arg-type]


@pytest.fixture(params=PROVIDERS)
async def provider(request: pytest.FixtureRequest, sim: SimulatorThread) -> AsyncIterator[Provider]:
    adapter = _adapter(sim, request.param)
    yield adapter
    await adapter.aclose()


async def test_enrich_returns_a_valid_enrichment_with_usage_and_cost(provider: Provider) -> None:
    completion = await provider.enrich(EnrichRequest(job=JOB), deadline=Deadline.after(5))
    assert completion.enrichment.seniority == "senior"
    assert completion.enrichment.remote_policy == "hybrid"
    assert "Spark" in completion.enrichment.skills
    assert completion.enrichment.salary is not None
    assert completion.enrichment.salary.currency == "EUR"
    assert completion.usage.input_tokens > 0
    assert completion.usage.output_tokens > 0
    if provider.name not in ("ollama", "compatible"):  # self-hosted: zero unless priced
        assert completion.usage.cost_usd > 0


async def test_different_jobs_get_different_answers(provider: Provider) -> None:
    other = RawJob(job_id="p2", title="Junior UX Designer", description="Figma. On-site in Lyon.")
    first = await provider.enrich(EnrichRequest(job=JOB), deadline=Deadline.after(5))
    second = await provider.enrich(EnrichRequest(job=other), deadline=Deadline.after(5))
    assert first.enrichment != second.enrichment
    assert second.enrichment.seniority == "junior"
    assert second.enrichment.role_family == "design"


async def test_health_checks_the_model(provider: Provider, sim: SimulatorThread) -> None:
    assert (await provider.health()).ok
    wrong = _adapter(sim, provider.name, model="no-such-model")
    try:
        health = await wrong.health()
    finally:
        await wrong.aclose()
    assert not health.ok
    assert "no-such-model" in health.detail


@pytest.mark.parametrize("name", [p for p in PROVIDERS if p != "ollama"])  # local: no key
async def test_a_wrong_key_is_an_authentication_error_without_the_key(
    sim: SimulatorThread, name: str
) -> None:
    secret = "sk-sentinel-never-print-me-0123456789"
    wrong = _adapter(sim, name, key=secret)
    try:
        with pytest.raises(AuthenticationError) as caught:
            await wrong.enrich(EnrichRequest(job=JOB), deadline=Deadline.after(5))
        health = await wrong.health()
    finally:
        await wrong.aclose()
    assert secret not in str(caught.value)
    assert secret not in repr(caught.value)
    assert not health.ok
    assert secret not in health.detail


# How each vendor's documented error statuses map onto the exception hierarchy.
ERROR_ROWS: list[tuple[str, int, type[ProviderError]]] = [
    (provider, status, error)
    for provider in PROVIDERS
    for status, error in [
        (400, BadRequest),
        (404, BadRequest),
        (408, ProviderUnavailable),
        (409, ProviderUnavailable),
        (422, BadRequest),
        (429, RateLimited),
        (500, ProviderUnavailable),
        (502, ProviderUnavailable),
        (503, ProviderUnavailable),
        (504, ProviderUnavailable),
    ]
] + [
    ("openai", 401, AuthenticationError),
    ("openai", 403, AuthenticationError),
    ("anthropic", 401, AuthenticationError),
    ("anthropic", 402, QuotaExhausted),
    ("anthropic", 403, AuthenticationError),
    ("anthropic", 413, BadRequest),
    ("anthropic", 529, ProviderUnavailable),
    ("gemini", 403, AuthenticationError),
    ("deepseek", 401, AuthenticationError),
    ("deepseek", 402, QuotaExhausted),
]


@pytest.mark.parametrize(("name", "status", "error"), ERROR_ROWS)
async def test_injected_statuses_map_onto_the_taxonomy(
    sim: SimulatorThread, name: str, status: int, error: type[ProviderError]
) -> None:
    sim.set_faults(name, errors={status: 1.0})
    adapter = _adapter(sim, name)
    try:
        with pytest.raises(error) as caught:
            await adapter.enrich(EnrichRequest(job=JOB), deadline=Deadline.after(5))
    finally:
        await adapter.aclose()
    assert type(caught.value) is error
    assert caught.value.status_code == status
    assert caught.value.retryable is (status in (408, 409, 429) or status >= 500)


async def test_the_asked_retry_delay_is_carried(provider: Provider, sim: SimulatorThread) -> None:
    sim.set_faults(provider.name, errors={429: 1.0}, retry_after_s=1.5)
    with pytest.raises(RateLimited) as caught:
        await provider.enrich(EnrichRequest(job=JOB), deadline=Deadline.after(5))
    assert caught.value.retry_after_s == 1.5


@pytest.mark.parametrize(
    ("output", "says"),
    [
        ("malformed", "Enrichment schema"),
        ("schema_invalid", "Enrichment schema"),
        ("truncated", "truncated"),
        ("blank", "blank"),
    ],
)
async def test_bad_answers_are_invalid_output(
    provider: Provider, sim: SimulatorThread, output: str, says: str
) -> None:
    sim.set_faults(provider.name, outputs={output: 1.0})
    with pytest.raises(InvalidOutput, match=says) as caught:
        await provider.enrich(EnrichRequest(job=JOB), deadline=Deadline.after(5))
    assert not caught.value.retryable
    # An answer all the same: the vendor bills its tokens, and the attempt says so.
    billed = caught.value.usage
    assert billed is not None
    assert billed.input_tokens > 0
    attempt = failed_attempt(
        caught.value, provider=provider.name, model="m", attempt=1, latency_ms=1
    )
    assert attempt.usage == billed


async def test_a_hanging_answer_times_out(provider: Provider, sim: SimulatorThread) -> None:
    sim.set_faults(provider.name, hang_rate=1.0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(ProviderTimeout):  # the attempt's own timeout: worth a retry
        await provider.enrich(EnrichRequest(job=JOB), deadline=Deadline.after(30).capped(0.3))
    assert loop.time() - started < 1.5
    with pytest.raises(DeadlineExceeded, match=r"deadline of 0\.3s"):  # the job's: the end
        await provider.enrich(EnrichRequest(job=JOB), deadline=Deadline.after(0.3))
    assert loop.time() - started < 3


async def test_faults_are_repeatable_with_the_seed(sim: SimulatorThread) -> None:
    async def outcomes() -> list[str]:
        sim.set_faults("gemini", errors={500: 0.5})  # reseeds the dice
        adapter = _adapter(sim, "gemini")
        seen = []
        try:
            for _ in range(12):
                try:
                    await adapter.enrich(EnrichRequest(job=JOB), deadline=Deadline.after(5))
                    seen.append("ok")
                except ProviderUnavailable:
                    seen.append("500")
        finally:
            await adapter.aclose()
        return seen

    first = await outcomes()
    assert await outcomes() == first
    assert "ok" in first
    assert "500" in first


@pytest.mark.parametrize("name", PROVIDERS)
async def test_a_refused_connection_is_retryable(name: str) -> None:
    adapter = adapter_for(name)(config(name, f"http://127.0.0.1:{free_port()}", prices={}))
    try:
        with pytest.raises(ProviderConnectError) as caught:
            await adapter.enrich(EnrichRequest(job=JOB), deadline=Deadline.after(2))
    finally:
        await adapter.aclose()
    assert caught.value.retryable
