"""Turns one job into provider attempts, always within the job's deadline.

Order: the job's preferred provider, then the chain (or, with the ``latency`` strategy, the
chain sorted by live latency), skipping disabled providers, open circuits and providers
cooling down after a rate limit. Per provider: bounded retries with exponential backoff and
full jitter that honour the delay the provider asked for; then fallback. Rate limits
(requests and tokens per minute) and a concurrency cap hold however many jobs are in flight.

It knows nothing about Kafka. Time, sleep and randomness are injectable, so tests check exact
backoff sequences without waiting.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from streams.breaker import CircuitBreaker
from streams.errors import (
    BadRequest,
    DeadlineExceeded,
    EnrichmentFailed,
    ProviderError,
    RateLimited,
)
from streams.limits import LimitsConfig, ProviderLimiter, TooLarge
from streams.models import Attempt, ErrorInfo, RawJob
from streams.providers import Completion, EnrichRequest, Provider
from streams.providers.prompt import system_prompt, user_message
from streams.settings import Settings

log = logging.getLogger(__name__)

# An attempt with less time than this left is not started: it could not finish.
MIN_ATTEMPT_S = 0.05
# How often a waiting job or a paused intake looks again (a provider may be re-enabled).
POLL_S = 1.0
LATENCY_SMOOTHING = 0.2  # weight of the newest call in the moving latency average


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """Per provider: how many attempts, and the backoff between them."""

    attempts: int = 2
    initial_backoff_s: float = 0.25
    max_backoff_s: float = 8.0

    def backoff_s(self, retry: int, rng: random.Random) -> float:
        """Full jitter: uniform in [0, min(max, initial * 2**(retry-1))] for retry 1, 2, ..."""
        ceiling = min(self.max_backoff_s, self.initial_backoff_s * 2 ** (retry - 1))
        return rng.uniform(0, ceiling)


@dataclass(frozen=True, kw_only=True)
class Routed:
    completion: Completion
    provider: str
    attempts: list[Attempt]
    latency_ms: float


class Gate:
    """One provider as the router sees it: switched on or off, its circuit, its limits, its
    rate-limit cool-down and its live latency."""

    def __init__(self, provider: Provider, *, breaker: CircuitBreaker, limiter: ProviderLimiter):
        self.provider = provider
        self.breaker = breaker
        self.limiter = limiter
        self.enabled = True
        self.cooling_until = 0.0
        self.rate_limited_streak = 0
        self.latency_ms: float | None = None

    def ready_at(self, now: float) -> float:
        if not self.enabled:
            return math.inf
        return max(now, self.breaker.ready_at(), self.cooling_until)

    def observe(self, latency_ms: float) -> None:
        if self.latency_ms is None:
            self.latency_ms = latency_ms
        else:
            self.latency_ms += LATENCY_SMOOTHING * (latency_ms - self.latency_ms)

    def snapshot(self, now: float) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "circuit": self.breaker.snapshot(),
            "rate_limited_for_s": max(0.0, self.cooling_until - now),
            "latency_ms_avg": self.latency_ms,
            "in_flight": self.limiter.in_flight,
            "limits": self.limiter.config.model_dump(),
        }


@dataclass(kw_only=True)
class _Budget:
    deadline_at: float
    clock: Callable[[], float]
    cut_short: bool = False  # an attempt, a wait or a backoff was skipped for lack of time

    def left(self) -> float:
        return self.deadline_at - self.clock()

    def allows(self, seconds: float) -> bool:
        """Whether ``seconds`` can pass and still leave time for an attempt."""
        if self.left() - seconds < MIN_ATTEMPT_S:
            self.cut_short = True
            return False
        return True


class Router:
    def __init__(
        self,
        settings: Settings,
        providers: Mapping[str, Provider],
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.clock = clock
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.gates: dict[str, Gate] = {}
        self._providers = providers
        self._paused = False
        self.reconfigure(settings)

    # --- configuration, at start and at run time ---------------------------------------------

    def reconfigure(self, settings: Settings) -> None:
        """Apply settings: at start, and for every validated config patch."""
        self.settings = settings
        self.chain = [name for name in settings.llm_provider_chain if name in self._providers]
        self.retry = RetryPolicy(
            attempts=settings.llm_retry_attempts,
            initial_backoff_s=settings.llm_retry_initial_backoff_s,
            max_backoff_s=settings.llm_retry_max_backoff_s,
        )
        for name, provider in self._providers.items():
            gate = self.gates.get(name)
            limits = settings.limits(name)
            if gate is None:
                gate = self.gates[name] = Gate(
                    provider,
                    breaker=CircuitBreaker(clock=self.clock),
                    limiter=self._limiter(limits),
                )
            elif gate.limiter.config != limits:
                gate.limiter = self._limiter(limits)  # calls in flight keep the old one
            breaker = gate.breaker
            breaker.consecutive_failures = settings.llm_breaker_failures
            breaker.failure_ratio = settings.llm_breaker_failure_ratio
            breaker.window = settings.llm_breaker_window
            breaker.cooldown_s = settings.llm_breaker_cooldown_s

    def _limiter(self, limits: LimitsConfig) -> ProviderLimiter:
        return ProviderLimiter(limits, clock=self.clock, sleep=self.sleep)

    def set_enabled(self, name: str, enabled: bool) -> None:
        self.gates[name].enabled = enabled

    def status(self) -> dict[str, dict[str, Any]]:
        now = self.clock()
        return {name: gate.snapshot(now) for name, gate in self.gates.items()}

    # --- routing --------------------------------------------------------------------------

    def order(self, preferred: str | None) -> list[str]:
        """The job's preferred provider first (if it is in the chain), then the chain.

        The ``latency`` strategy sorts the chain by each provider's moving average latency
        (unmeasured providers first, so they get measured). Latency rather than cost, because
        cost per call is already known from the price table and can be expressed by the
        chain's order, while latency moves with the vendor's load, which only live figures
        show."""
        chain: list[str] = list(self.chain)
        if self.settings.llm_routing_strategy == "latency":
            chain.sort(key=lambda name: self.gates[name].latency_ms or 0.0)
        # The chain is also the allow-list: a job cannot route to a provider left out of it.
        first = [preferred] if preferred is not None and preferred in chain else []
        return first + [name for name in chain if name != preferred]

    def next_ready_at(self) -> float:
        """When some provider in the chain can next take a call (inf: all disabled)."""
        now = self.clock()
        return min((self.gates[name].ready_at(now) for name in self.chain), default=math.inf)

    async def wait_for_capacity(self) -> None:
        """Backpressure: return once some provider in the chain can take a call, instead of
        letting new jobs burn their retries into the dead-letter topic."""
        while (gap := self.next_ready_at() - self.clock()) > 0:
            if not self._paused:
                self._paused = True
                log.warning("every provider is disabled, open or rate-limited: pausing intake")
            await self.sleep(min(gap, POLL_S))
        if self._paused:
            self._paused = False
            log.warning("a provider is available again: resuming intake")

    async def enrich(self, job: RawJob) -> Routed:
        """The first valid enrichment, or EnrichmentFailed carrying every attempt."""
        options = job.options
        started = self.clock()
        deadline_s = (
            options.deadline_ms / 1000
            if options and options.deadline_ms
            else self.settings.llm_job_deadline_s
        )
        budget = _Budget(deadline_at=started + deadline_s, clock=self.clock)
        request = EnrichRequest(
            job=job,
            model=options.model if options else None,
            max_tokens=(
                options.max_tokens
                if options and options.max_tokens
                else self.settings.llm_max_output_tokens
            ),
            temperature=(
                options.temperature
                if options and options.temperature is not None
                else self.settings.llm_temperature
            ),
        )
        attempts: list[Attempt] = []
        tries: Counter[str] = Counter()
        failed_for_good: set[str] = set()  # a final error: this job never goes there again
        # Out of retries for now (an outage, or a wait beyond the deadline): the job falls
        # back, and comes back here at this time if nothing else worked by then.
        resting_until: dict[str, float] = {}
        preferred = options.preferred_provider if options else None
        while True:
            now = self.clock()
            usable = [
                name
                for name in self.order(preferred)
                if name not in failed_for_good and self.gates[name].enabled
            ]
            candidates = [name for name in usable if resting_until.get(name, 0.0) <= now]
            if not usable:
                raise self._failure(attempts, budget, deadline_s, "every provider failed")
            if not candidates:
                # Every provider is failing retryably: an outage. Wait for the first to be
                # worth another round rather than dead-letter a job that has time left.
                gap = min(resting_until[name] for name in usable) - now
                if not budget.allows(gap):
                    raise self._failure(attempts, budget, deadline_s, "every provider failed")
                await self.sleep(gap)
                continue
            name = self._pick(candidates)
            if name is None:  # all open or cooling down: wait within the deadline
                wake = min(self.gates[n].ready_at(self.clock()) for n in candidates)
                gap = max(wake - self.clock(), 0.01)
                if not budget.allows(gap):
                    blocked = ", ".join(f"{n} {self._why_waiting(n)}" for n in candidates)
                    raise self._failure(attempts, budget, deadline_s, f"unavailable: {blocked}")
                await self.sleep(min(gap, POLL_S))
                continue
            if resting_until.pop(name, None) is not None:
                tries[name] = 0  # a new round
            tries[name] += 1
            result = await self._attempt(name, request, budget, tries[name], attempts)
            if isinstance(result, Completion):
                return Routed(
                    completion=result,
                    provider=name,
                    attempts=attempts,
                    latency_ms=(self.clock() - started) * 1000,
                )
            if result is None:  # no time left to even start
                raise self._failure(attempts, budget, deadline_s, "no time left")
            if isinstance(result, RateLimited):
                tries[name] -= 1  # waiting out a rate limit is bounded by the deadline instead
                continue
            if not result.retryable:
                failed_for_good.add(name)
                continue
            delay = max(result.retry_after_s or 0.0, self.retry.backoff_s(tries[name], self.rng))
            if tries[name] >= self.retry.attempts or not budget.allows(delay):
                resting_until[name] = self.clock() + delay  # fall back now
                continue
            await self.sleep(delay)

    def _pick(self, candidates: list[str]) -> str | None:
        now = self.clock()
        for name in candidates:
            gate = self.gates[name]
            if gate.cooling_until <= now and gate.breaker.allow():
                return name
        return None

    def _why_waiting(self, name: str) -> str:
        gate = self.gates[name]
        if gate.cooling_until > self.clock():
            return "rate-limited"
        return f"circuit {gate.breaker.state}"

    def _failure(
        self, attempts: list[Attempt], budget: _Budget, deadline_s: float, reason: str
    ) -> EnrichmentFailed:
        last = attempts[-1].error if attempts else None
        detail = f"{reason}; last: {last.type}: {last.message}" if last else reason
        if budget.cut_short:
            detail = str(DeadlineExceeded(f"deadline of {deadline_s:g}s exceeded; {detail}"))
        return EnrichmentFailed(detail, attempts=attempts)

    async def _attempt(
        self,
        name: str,
        request: EnrichRequest,
        budget: _Budget,
        n: int,
        attempts: list[Attempt],
    ) -> Completion | ProviderError | None:
        """One call: wait for the provider's limits within the budget, then call it."""
        gate = self.gates[name]
        provider = gate.provider
        model = request.model or provider.model
        estimate = _estimate_tokens(request)
        began = self.clock()
        try:
            within = max(budget.left() - MIN_ATTEMPT_S, 0.0)
            async with gate.limiter.call(tokens=estimate, within_s=within) as settle:
                if not budget.allows(0):
                    gate.breaker.release()
                    return None
                began = self.clock()
                timeout = min(self.settings.llm_attempt_timeout_s, budget.left())
                completion = await provider.enrich(request, timeout_s=timeout)
                settle(completion.usage.input_tokens + completion.usage.output_tokens)
        except TimeoutError:  # waiting for a slot or for the rate limit ate the budget
            gate.breaker.release()
            budget.cut_short = True
            return None
        except TooLarge as exc:
            gate.breaker.release()
            error: ProviderError = BadRequest(
                f"request exceeds the tokens-per-minute limit ({exc})", provider=name
            )
        except ProviderError as exc:
            error = exc
            if isinstance(exc, RateLimited):
                gate.breaker.release()
                gate.rate_limited_streak += 1
                wait = exc.retry_after_s
                if wait is None:
                    wait = self.retry.backoff_s(gate.rate_limited_streak, self.rng)
                gate.cooling_until = max(gate.cooling_until, self.clock() + wait)
            else:
                gate.breaker.record(failed=True)
        else:
            gate.breaker.record(failed=False)
            gate.rate_limited_streak = 0
            latency_ms = (self.clock() - began) * 1000
            gate.observe(latency_ms)
            attempts.append(
                Attempt(
                    provider=name,
                    model=completion.model,
                    attempt=n,
                    outcome="success",
                    http_status=completion.http_status,
                    latency_ms=latency_ms,
                    usage=completion.usage,
                )
            )
            return completion
        attempts.append(
            Attempt(
                provider=name,
                model=model,
                attempt=n,
                outcome=error.outcome,
                http_status=error.status_code,
                latency_ms=(self.clock() - began) * 1000,
                error=ErrorInfo(type=type(error).__name__, message=str(error)),
            )
        )
        return error


def _estimate_tokens(request: EnrichRequest) -> int:
    """Tokens a call may use, reserved against the tokens-per-minute limit up front (about
    four characters a token, plus the whole output allowance); the rest is given back."""
    prompt = system_prompt(with_schema=True) + user_message(request.job)
    return len(prompt) // 4 + request.max_tokens
