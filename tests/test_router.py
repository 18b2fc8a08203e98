"""The router with a fake clock against the simulator: order, retries, backoff, deadline."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import pytest

from streams.errors import EnrichmentFailed
from streams.models import JobOptions, RawJob
from streams.providers import Provider, build_providers
from streams.router import RetryPolicy, Router
from streams.settings import Settings, load_settings
from tests.conftest import SimulatorThread

JOB = RawJob(job_id="r1", title="Backend Engineer", description="Go and Postgres. Remote.")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def router_settings(sim: SimulatorThread, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name, value in sim.env().items():
        monkeypatch.setenv(name, value)
    return load_settings()


@pytest.fixture
async def providers(router_settings: Settings) -> AsyncIterator[dict[str, Provider]]:
    built = build_providers(router_settings)
    yield built
    for provider in built.values():
        await provider.aclose()


def _router(providers: dict[str, Provider], clock: FakeClock, **options: object) -> Router:
    return Router(
        providers=providers,
        chain=["openai", "deepseek"],
        clock=clock,
        sleep=clock.sleep,
        rng=random.Random(1),
        **options,  # type: ignore[arg-type]
    )


def test_full_jitter_stays_within_the_exponential_ceiling() -> None:
    policy = RetryPolicy(attempts=6, initial_backoff_s=0.5, max_backoff_s=3.0)
    rng = random.Random(3)
    for retry, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 3.0), (5, 3.0)]:
        samples = [policy.backoff_s(retry, rng) for _ in range(500)]
        assert min(samples) >= 0
        assert max(samples) <= ceiling
        assert max(samples) > ceiling * 0.9, "full jitter reaches up to the ceiling"


async def test_preferred_provider_goes_first(providers: dict[str, Provider]) -> None:
    router = _router(providers, FakeClock())
    job = JOB.model_copy(update={"options": JobOptions(preferred_provider="deepseek")})
    routed = await router.enrich(job)
    assert routed.provider == "deepseek"
    assert router.order("deepseek") == ["deepseek", "openai"]


async def test_retries_back_off_then_fall_back(
    providers: dict[str, Provider], sim: SimulatorThread
) -> None:
    sim.set_faults("openai", errors={503: 1.0})
    clock = FakeClock()
    router = _router(
        providers, clock, retry=RetryPolicy(attempts=3, initial_backoff_s=1.0, max_backoff_s=10)
    )
    routed = await router.enrich(JOB)
    assert routed.provider == "deepseek"
    assert [(a.provider, a.attempt, a.outcome) for a in routed.attempts] == [
        ("openai", 1, "error"),
        ("openai", 2, "error"),
        ("openai", 3, "error"),
        ("deepseek", 1, "success"),
    ]
    expected = random.Random(1)
    assert clock.sleeps == [expected.uniform(0, 1.0), expected.uniform(0, 2.0)]


async def test_retry_after_is_honoured(
    providers: dict[str, Provider], sim: SimulatorThread
) -> None:
    sim.set_faults("openai", errors={429: 1.0}, retry_after_s=4)
    clock = FakeClock()
    router = _router(providers, clock, retry=RetryPolicy(attempts=2, initial_backoff_s=0.1))
    routed = await router.enrich(JOB)
    assert clock.sleeps == [4.0]
    assert [a.outcome for a in routed.attempts] == ["rate_limited", "rate_limited", "success"]


async def test_no_backoff_outlives_the_deadline(
    providers: dict[str, Provider], sim: SimulatorThread
) -> None:
    sim.set_faults("openai", errors={429: 1.0}, retry_after_s=30)
    sim.set_faults("deepseek", errors={429: 1.0}, retry_after_s=30)
    clock = FakeClock()
    router = _router(providers, clock, deadline_s=10, retry=RetryPolicy(attempts=5))
    with pytest.raises(EnrichmentFailed) as caught:
        await router.enrich(JOB)
    assert clock.sleeps == [], "a 30 s wait cannot fit in a 10 s deadline: fall back at once"
    assert [a.provider for a in caught.value.attempts] == ["openai", "deepseek"]


async def test_the_job_deadline_overrides_and_stops_attempts(
    providers: dict[str, Provider], sim: SimulatorThread
) -> None:
    sim.set_faults("openai", errors={500: 1.0})
    sim.set_faults("deepseek", errors={500: 1.0})
    clock = FakeClock()
    router = _router(
        providers, clock, deadline_s=60, retry=RetryPolicy(attempts=50, initial_backoff_s=1.0)
    )
    job = JOB.model_copy(update={"options": JobOptions(deadline_ms=5000)})
    with pytest.raises(EnrichmentFailed, match="deadline"):
        await router.enrich(job)
    assert sum(clock.sleeps) <= 5.0


async def test_a_final_error_is_not_retried(
    providers: dict[str, Provider], sim: SimulatorThread
) -> None:
    sim.set_faults("openai", errors={400: 1.0})
    routed = await _router(providers, FakeClock()).enrich(JOB)
    assert [(a.provider, a.outcome) for a in routed.attempts] == [
        ("openai", "error"),
        ("deepseek", "success"),
    ]
    assert routed.attempts[0].error is not None
    assert routed.attempts[0].error.type == "BadRequest"
