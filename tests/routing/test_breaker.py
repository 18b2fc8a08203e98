"""The circuit breaker on a fake clock: its transitions and its failure-ratio trip."""

from __future__ import annotations

from streams.config.slices import BreakerPolicy
from streams.routing.breaker import CircuitBreaker
from tests.routing.fake_clock import FakeClock


def _state(breaker: CircuitBreaker) -> str:
    return breaker.state


def test_breaker_transitions() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(
        provider="openai",
        clock=clock,
        policy=BreakerPolicy(consecutive_failures=3, failure_ratio=1.0, window=50, cooldown_s=10),
    )
    for _ in range(2):
        assert breaker.allow()
        breaker.record(failed=True)
    breaker.record(failed=False)  # a success resets the streak
    for _ in range(3):
        breaker.record(failed=True)
    assert _state(breaker) == "open"
    assert not breaker.allow()
    clock.now += 10
    assert _state(breaker) == "half_open"
    assert breaker.allow(), "one probe"
    assert not breaker.allow(), "only one"
    breaker.record(failed=True)
    assert _state(breaker) == "open", "a failed probe opens it again"
    clock.now += 10
    assert breaker.allow()
    breaker.record(failed=False)
    assert _state(breaker) == "closed"


def test_breaker_opens_on_a_failure_ratio() -> None:
    breaker = CircuitBreaker(
        provider="openai",
        clock=FakeClock(),
        policy=BreakerPolicy(consecutive_failures=100, failure_ratio=0.5, window=10, cooldown_s=30),
    )
    for n in range(9):
        breaker.record(failed=n % 2 == 0)  # 5 of 9 failed, never 2 in a row
    assert _state(breaker) == "closed", "the ratio is judged over a full window only"
    breaker.record(failed=False)
    assert _state(breaker) == "open", "5 of the last 10 failed"
