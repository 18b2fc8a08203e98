"""The router with a fake clock against the simulator: order, retries, backoff, deadline,
circuit breaking, rate limits and backpressure."""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from devstack.harness import SimulatorThread
from streams.config.settings import Settings
from streams.config.slices import LimitsConfig, RetryPolicy
from streams.errors import EnrichmentFailed
from streams.models import JobOptions, RawJob
from streams.providers.base import Provider
from streams.routing.router import Router
from tests.eventually import eventually_async
from tests.routing.fake_clock import FakeClock, router_for
from tests.routing.helpers import route

JOB = RawJob(job_id="r1", title="Backend Engineer", description="Go and Postgres. Remote.")


def test_full_jitter_stays_within_the_exponential_ceiling() -> None:
    policy = RetryPolicy(attempts=6, initial_backoff_s=0.5, max_backoff_s=3.0)
    rng = random.Random(3)
    for retry, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 3.0), (5, 3.0)]:
        samples = [policy.backoff_s(retry, rng) for _ in range(500)]
        assert min(samples) >= 0
        assert max(samples) <= ceiling
        assert max(samples) > ceiling * 0.9, "full jitter reaches up to the ceiling"


async def test_preferred_provider_goes_first(
    base_settings: Settings, providers: dict[str, Provider]
) -> None:
    router = router_for(base_settings, providers, FakeClock())
    job = JOB.model_copy(update={"options": JobOptions(preferred_provider="deepseek")})
    routed = await route(router, job)
    assert routed.provider == "deepseek"
    assert router.order("deepseek") == ["deepseek", "openai"]
    assert router.order("gemini") == ["openai", "deepseek"], "the chain is the allow-list"


async def test_retries_back_off_then_fall_back(
    base_settings: Settings, providers: dict[str, Provider], sim: SimulatorThread
) -> None:
    sim.set_faults("openai", errors={503: 1.0})
    clock = FakeClock()
    router = router_for(
        base_settings,
        providers,
        clock,
        llm_retry_attempts=3,
        llm_retry_initial_backoff_s=1.0,
        llm_retry_max_backoff_s=10,
    )
    routed = await route(router, JOB)
    assert routed.provider == "deepseek"
    assert [(a.provider, a.attempt, a.outcome) for a in routed.attempts] == [
        ("openai", 1, "error"),
        ("openai", 2, "error"),
        ("openai", 3, "error"),
        ("deepseek", 1, "success"),
    ]
    expected = random.Random(1)
    assert clock.sleeps == [expected.uniform(0, 1.0), expected.uniform(0, 2.0)]


async def test_a_rate_limited_provider_cools_down_while_the_job_falls_back(
    base_settings: Settings, providers: dict[str, Provider], sim: SimulatorThread
) -> None:
    sim.set_faults("openai", errors={429: 1.0}, retry_after_s=4)
    clock = FakeClock()
    router = router_for(base_settings, providers, clock)
    routed = await route(router, JOB)
    assert [(a.provider, a.outcome) for a in routed.attempts] == [
        ("openai", "rate_limited"),
        ("deepseek", "success"),
    ]
    assert router.status().providers["openai"].rate_limited_for_s == pytest.approx(4, abs=0.01)
    requests_before = sim.requests()["openai"]
    await route(router, JOB)
    assert sim.requests()["openai"] == requests_before, "no calls while it cools down"


async def test_a_429_storm_waits_within_the_deadline_instead_of_failing(
    base_settings: Settings, providers: dict[str, Provider], sim: SimulatorThread
) -> None:
    # Every provider says "wait 4 s" until the storm ends.
    sim.set_faults("openai", errors={429: 1.0}, retry_after_s=4, match="Storm")
    sim.set_faults("deepseek", errors={429: 1.0}, retry_after_s=4, match="Storm")
    clock = FakeClock(real_pause_s=0.05)
    router = router_for(base_settings, providers, clock, llm_job_deadline_s=30)
    storm = JOB.model_copy(update={"title": "Storm"})
    task = asyncio.create_task(route(router, storm))
    await eventually_async(lambda: _true(len(clock.sleeps) >= 1))
    sim.reset()  # the storm ends while the job waits
    routed = await task
    outcomes = [a.outcome for a in routed.attempts]
    assert outcomes[:2] == ["rate_limited", "rate_limited"]
    assert set(outcomes[:-1]) == {"rate_limited"}
    assert outcomes[-1] == "success"
    assert sum(clock.sleeps) <= 30


async def test_an_outage_of_every_provider_is_waited_out_within_the_deadline(
    base_settings: Settings, providers: dict[str, Provider], sim: SimulatorThread
) -> None:
    sim.set_faults("openai", errors={503: 1.0})
    sim.set_faults("deepseek", errors={500: 1.0})
    # Each fake sleep takes real time too, and the check polls faster than that: under load it
    # still looks while the job waits (it once looked only after the deadline had passed).
    clock = FakeClock(real_pause_s=0.05)
    router = router_for(base_settings, providers, clock, llm_job_deadline_s=60)
    job = asyncio.create_task(route(router, JOB))
    await eventually_async(lambda: _true(clock.now > 1020), every_s=0.01)
    assert not job.done(), "no dead letter while the deadline has time left"
    sim.reset()
    routed = await asyncio.wait_for(job, 10)
    assert routed.attempts[-1].outcome == "success"
    assert {a.provider for a in routed.attempts} == {"openai", "deepseek"}
    assert clock.now - 1000 < 60


async def test_retry_after_beyond_the_deadline_means_fall_back_at_once(
    base_settings: Settings, providers: dict[str, Provider], sim: SimulatorThread
) -> None:
    sim.set_faults("openai", errors={503: 1.0}, retry_after_s=30)
    sim.set_faults("deepseek", errors={503: 1.0}, retry_after_s=30)
    clock = FakeClock()
    router = router_for(
        base_settings, providers, clock, llm_job_deadline_s=10, llm_retry_attempts=5
    )
    with pytest.raises(EnrichmentFailed, match="deadline") as caught:
        await route(router, JOB)
    assert clock.sleeps == [], "a 30 s wait cannot fit in a 10 s deadline"
    assert [a.provider for a in caught.value.attempts] == ["openai", "deepseek"]


async def test_the_job_deadline_overrides_and_bounds_everything(
    base_settings: Settings, providers: dict[str, Provider], sim: SimulatorThread
) -> None:
    sim.set_faults("openai", errors={500: 1.0})
    sim.set_faults("deepseek", errors={500: 1.0})
    clock = FakeClock()
    router = router_for(
        base_settings,
        providers,
        clock,
        llm_job_deadline_s=60,
        llm_retry_attempts=50,
        llm_retry_initial_backoff_s=1.0,
        llm_breaker_failures=1000,
        llm_breaker_window=10_000,
    )
    job = JOB.model_copy(update={"options": JobOptions(deadline_ms=5000)})
    with pytest.raises(EnrichmentFailed, match="deadline"):
        await route(router, job)
    assert sum(clock.sleeps) <= 5.0


async def test_a_final_error_is_not_retried(
    base_settings: Settings, providers: dict[str, Provider], sim: SimulatorThread
) -> None:
    sim.set_faults("openai", errors={400: 1.0})
    router = router_for(base_settings, providers, FakeClock())
    routed = await route(router, JOB)
    assert [(a.provider, a.outcome) for a in routed.attempts] == [
        ("openai", "error"),
        ("deepseek", "success"),
    ]
    assert routed.attempts[0].error is not None
    assert routed.attempts[0].error.type == "BadRequest"


async def _true(value: bool) -> bool:
    return value


async def test_an_open_circuit_is_skipped_and_probed_after_the_cooldown(
    base_settings: Settings, providers: dict[str, Provider], sim: SimulatorThread
) -> None:
    sim.set_faults("openai", errors={502: 1.0})
    clock = FakeClock()
    router = router_for(
        base_settings,
        providers,
        clock,
        llm_retry_attempts=1,
        llm_breaker_failures=3,
        llm_breaker_cooldown_s=30,
    )
    for _ in range(3):
        await route(router, JOB)
    assert router.status().providers["openai"].circuit.state == "open"
    before = sim.requests()["openai"]
    routed = await route(router, JOB)
    assert [a.provider for a in routed.attempts] == ["deepseek"]
    assert sim.requests()["openai"] == before
    sim.reset()
    clock.now += 30
    routed = await route(router, JOB)
    assert routed.provider == "openai", "the half-open probe succeeds"
    assert router.status().providers["openai"].circuit.state == "closed"


async def test_backpressure_waits_until_a_provider_is_back(
    base_settings: Settings, providers: dict[str, Provider]
) -> None:
    clock = FakeClock(real_pause_s=0.01)
    router = router_for(base_settings, providers, clock)
    router.set_enabled("openai", False)
    router.set_enabled("deepseek", False)
    waiting = asyncio.create_task(router.wait_for_capacity())
    await eventually_async(lambda: _true(len(clock.sleeps) >= 3))
    assert not waiting.done(), "intake stays paused while nothing can take a call"
    router.set_enabled("deepseek", True)
    await asyncio.wait_for(waiting, 5)


async def test_the_latency_strategy_prefers_the_faster_provider(
    base_settings: Settings, providers: dict[str, Provider], sim: SimulatorThread
) -> None:
    sim.set_faults("openai", latency_ms=120)
    router = Router(
        base_settings.model_copy(update={"llm_routing_strategy": "latency"}).routing(), providers
    )
    for first in ("openai", "deepseek"):  # both measured: openai slower
        await route(
            router, JOB.model_copy(update={"options": JobOptions(preferred_provider=first)})
        )
    assert router.order(None) == ["deepseek", "openai"]
    routed = await route(router, JOB)
    assert routed.provider == "deepseek"


async def test_rate_and_concurrency_limits_hold_under_200_concurrent_jobs(
    base_settings: Settings, providers: dict[str, Provider], sim: SimulatorThread
) -> None:
    """Real time: 200 jobs at once against 3,000 requests a minute (a bucket of 50 that
    refills at 49.2/s) and 8 concurrent calls; the simulator sees what arrives."""
    sim.set_faults("openai", latency_ms=20)
    settings = base_settings.model_copy(
        update={
            "llm_provider_chain": ["openai"],
            "llm_provider_limits": {"openai": LimitsConfig(rpm=3000, concurrency=8)},
        }
    )
    router = Router(settings.routing(), providers)
    started = time.monotonic()
    jobs = [JOB.model_copy(update={"job_id": f"j{n}"}) for n in range(200)]
    results = await asyncio.gather(*(route(router, job) for job in jobs))
    assert len(results) == 200
    stats = sim.stats()
    assert stats["peak_in_flight"]["openai"] <= 8
    arrivals = sorted(stats["arrivals"]["openai"])
    assert len(arrivals) == 200
    # Arrivals are stamped by the simulator's thread, which shares this process's GIL: under
    # load a few of them are stamped late, together. One round of the concurrency cap covers it.
    for i, t in enumerate(arrivals):
        in_one_second = sum(1 for u in arrivals[i:] if u < t + 1.0)
        assert in_one_second <= 50 + 49.2 + 1 + 8, (
            f"{in_one_second} requests in 1 s from {t - started:.2f}s"
        )
    assert arrivals[-1] - arrivals[0] >= (200 - 50) / 49.2 * 0.9, "the bucket did throttle"


def test_a_clock_that_moves_between_reads_does_not_look_like_paused_intake(
    base_settings: Settings, providers: dict[str, Provider]
) -> None:
    ticks = iter(range(10**6))
    router = Router(base_settings.routing(), providers, clock=lambda: next(ticks) / 1e6)
    status = router.status()
    assert not status.intake_paused
    assert [p.name for p in status.in_chain()] == ["openai", "deepseek"]
    assert status.in_flight == 0


async def test_a_call_cut_off_by_its_cap_carries_an_estimate_of_what_it_is_billed(
    base_settings: Settings, providers: dict[str, Provider], sim: SimulatorThread
) -> None:
    sim.set_faults("openai", latency_ms=3000)
    router = Router(
        base_settings.model_copy(
            update={"llm_attempt_timeout_s": 0.3, "llm_retry_attempts": 1}
        ).routing(),
        providers,
    )
    routed = await route(router, JOB)
    cut, answered = routed.attempts
    assert (cut.provider, cut.outcome) == ("openai", "timeout")
    assert cut.usage.cost_usd == 0, "no answer said what it cost"
    assert cut.estimate is not None
    assert cut.estimate.input_tokens > 100
    assert cut.estimate.output_tokens == base_settings.llm_max_output_tokens
    assert cut.estimate.cost_usd > 0
    assert answered.estimate is None
