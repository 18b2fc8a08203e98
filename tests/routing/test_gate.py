"""One provider's gate: what it lets through, when, and what it says about itself."""

from __future__ import annotations

import math
import random
from collections.abc import AsyncIterator

import pytest

from streams.config.settings import Settings
from streams.config.slices import BreakerPolicy, LimitsConfig, RetryPolicy
from streams.deadline import Deadline
from streams.errors import ProviderUnavailable, RateLimited
from streams.providers.build import build_providers
from streams.routing.breaker import CircuitBreaker
from streams.routing.gate import Gate
from streams.routing.limits import ProviderLimiter
from tests.routing.fake_clock import FakeClock

POLICY = BreakerPolicy(consecutive_failures=2, failure_ratio=1.0, window=10, cooldown_s=30)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def gate(clock: FakeClock) -> AsyncIterator[Gate]:
    provider = build_providers(Settings().provider)["openai"]
    yield Gate(
        provider,
        breaker=CircuitBreaker(provider="openai", clock=clock, policy=POLICY),
        limiter=ProviderLimiter(LimitsConfig(concurrency=4), clock=clock, sleep=clock.sleep),
        retry=RetryPolicy(attempts=2, initial_backoff_s=1, max_backoff_s=8),
        clock=clock,
        rng=random.Random(1),
    )
    await provider.aclose()


async def _fail(gate: Gate, clock: FakeClock, error: Exception) -> None:
    with pytest.raises(type(error)):
        async with gate.call(tokens=1, deadline=Deadline.after(60, clock=clock)):
            raise error


async def test_a_rate_limit_cools_the_gate_down_for_the_asked_delay(
    gate: Gate, clock: FakeClock
) -> None:
    await _fail(gate, clock, RateLimited("429", provider="openai", retry_after_s=4))
    assert not gate.admit()
    assert gate.why_waiting() == "rate-limited"
    assert gate.ready_at(clock.now) == pytest.approx(clock.now + 4)
    status = gate.status(in_chain=True, now=clock.now)
    assert status.rate_limited_for_s == pytest.approx(4)
    assert status.circuit.state == "closed", "busy is not broken"
    clock.now += 4
    assert gate.admit()


async def test_failures_open_the_circuit_and_the_status_says_so(
    gate: Gate, clock: FakeClock
) -> None:
    for _ in range(2):
        await _fail(gate, clock, ProviderUnavailable("503", provider="openai"))
    status = gate.status(in_chain=False, now=clock.now)
    assert status.circuit.state == "open"
    assert status.limits_here.concurrency == 4
    assert not status.in_chain
    assert gate.why_waiting() == "circuit open"
    assert gate.ready_at(clock.now) == pytest.approx(clock.now + 30)


def test_switched_off_or_over_budget_is_never_ready(gate: Gate, clock: FakeClock) -> None:
    gate.enabled = False
    assert math.isinf(gate.ready_at(clock.now))
    gate.enabled, gate.over_budget = True, True
    assert math.isinf(gate.ready_at(clock.now))
    assert not gate.status(in_chain=True, now=clock.now).usable
