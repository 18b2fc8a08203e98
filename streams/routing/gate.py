"""One provider as the router sees it: switched on or off, its circuit, its limits, its
rate-limit cool-down, its daily budget and its live latency, entered for each call as one
``async with gate.call(...)``."""

from __future__ import annotations

import math
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from streams.config.slices import RetryPolicy
from streams.deadline import Deadline
from streams.errors import ProviderError, RateLimited
from streams.providers.base import Provider
from streams.routing.breaker import CircuitBreaker
from streams.routing.budget import Budget
from streams.routing.limits import ProviderLimiter
from streams.routing.status import BudgetStatus, CircuitStatus, LimitsStatus, ProviderStatus

__all__ = ["Gate"]

LATENCY_SMOOTHING = 0.2  # weight of the newest call in the moving latency average


class Gate:
    def __init__(
        self,
        provider: Provider,
        *,
        breaker: CircuitBreaker,
        limiter: ProviderLimiter,
        retry: RetryPolicy,
        clock: Callable[[], float],
        rng: random.Random,
    ) -> None:
        self.provider = provider
        self.breaker = breaker
        self.limiter = limiter
        self.retry = retry  # its backoff paces the cool-down after a 429 without Retry-After
        self.enabled = True
        self.budget = Budget()
        self.over_budget = False  # its own budget or the service's: set by the router
        self.cooling_until = 0.0
        self.rate_limited_streak = 0
        self.latency_ms: float | None = None
        self._clock = clock
        self._rng = rng

    def ready_at(self, now: float) -> float:
        if not self.enabled or self.over_budget:
            return math.inf  # until switched on, or a budget is raised or the day turns
        return max(now, self.breaker.ready_at(), self.cooling_until)

    def admit(self) -> bool:
        """Whether a call may go ahead now (in half-open, this caller becomes the probe)."""
        return not self.over_budget and self.cooling_until <= self._clock() and self.breaker.allow()

    def why_waiting(self) -> str:
        if self.over_budget:
            return "over budget"
        if self.cooling_until > self._clock():
            return "rate-limited"
        return f"circuit {self.breaker.state}"

    @asynccontextmanager
    async def call(
        self, *, tokens: int, deadline: Deadline
    ) -> AsyncIterator[Callable[[int], None]]:
        """Wait for the provider's limits within the deadline, then hold them for one call
        (after ``admit``). What the block raises, or that it raised nothing, is the call's
        verdict for the breaker and the cool-down. Yields ``settle`` (see the limiter)."""
        try:
            async with self.limiter.call(tokens=tokens, deadline=deadline) as settle:
                yield settle
        except RateLimited as exc:
            self.breaker.release()  # the vendor is up, only busy: not a failure
            self._cool_down(exc.retry_after_s)
            raise
        except ProviderError:
            self.breaker.record(failed=True)
            raise
        except BaseException:  # no verdict: out of time, cancelled, or never sent
            self.breaker.release()
            raise
        self.breaker.record(failed=False)
        self.rate_limited_streak = 0

    def observe(self, latency_ms: float) -> None:
        if self.latency_ms is None:
            self.latency_ms = latency_ms
        else:
            self.latency_ms += LATENCY_SMOOTHING * (latency_ms - self.latency_ms)

    def status(self, *, in_chain: bool, now: float) -> ProviderStatus:
        breaker = self.breaker
        return ProviderStatus(
            name=self.provider.name,
            model=self.provider.model,
            in_chain=in_chain,
            enabled=self.enabled,
            circuit=CircuitStatus(
                state=breaker.state,
                consecutive_failures=breaker.consecutive_failures,
                recent_failure_ratio=breaker.recent_failure_ratio,
            ),
            rate_limited_for_s=max(0.0, self.cooling_until - now),
            latency_ms_avg=self.latency_ms,
            in_flight=self.limiter.in_flight,
            limits=LimitsStatus.model_validate(self.limiter.config.model_dump()),
            limits_here=LimitsStatus.model_validate(self.limiter.effective()),
            budget=BudgetStatus(
                daily_usd=self.budget.daily_usd,
                spent_today_usd=self.budget.spent_today_usd,
                over_budget=self.over_budget,
            ),
        )

    def _cool_down(self, retry_after_s: float | None) -> None:
        self.rate_limited_streak += 1
        wait = retry_after_s
        if wait is None:
            wait = self.retry.backoff_s(self.rate_limited_streak, self._rng)
        self.cooling_until = max(self.cooling_until, self._clock() + wait)
