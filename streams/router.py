"""Turns one job into provider attempts: ordered fallback, bounded retries with exponential
backoff and full jitter, and a deadline that no attempt or backoff outlives.

It knows nothing about Kafka. Time, sleep and randomness are injectable, so tests check exact
backoff sequences without waiting.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

from streams.errors import DeadlineExceeded, EnrichmentFailed, ProviderError
from streams.models import Attempt, ErrorInfo, RawJob
from streams.providers import Completion, EnrichRequest, Provider
from streams.settings import Settings

# An attempt with less time than this left is not started: it could not finish.
MIN_ATTEMPT_S = 0.05


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


@dataclass(kw_only=True)
class _Budget:
    deadline_at: float
    clock: Callable[[], float]
    cut_short: bool = False  # an attempt or a backoff was skipped for lack of time

    def left(self) -> float:
        return self.deadline_at - self.clock()

    def allows(self, seconds: float) -> bool:
        """Whether ``seconds`` can pass and still leave time for an attempt."""
        if self.left() - seconds < MIN_ATTEMPT_S:
            self.cut_short = True
            return False
        return True


@dataclass(kw_only=True)
class Router:
    providers: Mapping[str, Provider]
    chain: Sequence[str]
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    attempt_timeout_s: float = 30.0
    deadline_s: float = 45.0
    max_tokens: int = 1024
    temperature: float | None = 0.2
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    rng: random.Random = field(default_factory=random.Random)

    @classmethod
    def from_settings(cls, settings: Settings, providers: Mapping[str, Provider]) -> Router:
        return cls(
            providers=providers,
            chain=settings.llm_provider_chain,
            retry=RetryPolicy(
                attempts=settings.llm_retry_attempts,
                initial_backoff_s=settings.llm_retry_initial_backoff_s,
                max_backoff_s=settings.llm_retry_max_backoff_s,
            ),
            attempt_timeout_s=settings.llm_attempt_timeout_s,
            deadline_s=settings.llm_job_deadline_s,
            max_tokens=settings.llm_max_output_tokens,
            temperature=settings.llm_temperature,
        )

    def order(self, preferred: str | None) -> list[str]:
        """The job's preferred provider first, then the configured chain."""
        first = [preferred] if preferred is not None and preferred in self.providers else []
        return first + [name for name in self.chain if name != preferred]

    async def enrich(self, job: RawJob) -> Routed:
        """The first valid enrichment, or EnrichmentFailed carrying every attempt."""
        options = job.options
        started = self.clock()
        deadline_s = (
            options.deadline_ms / 1000 if options and options.deadline_ms else self.deadline_s
        )
        budget = _Budget(deadline_at=started + deadline_s, clock=self.clock)
        request = EnrichRequest(
            job=job,
            model=options.model if options else None,
            max_tokens=(options.max_tokens if options and options.max_tokens else self.max_tokens),
            temperature=(
                options.temperature
                if options and options.temperature is not None
                else self.temperature
            ),
        )
        attempts: list[Attempt] = []
        for name in self.order(options.preferred_provider if options else None):
            completion = await self._try_provider(self.providers[name], request, budget, attempts)
            if completion is not None:
                return Routed(
                    completion=completion,
                    provider=name,
                    attempts=attempts,
                    latency_ms=(self.clock() - started) * 1000,
                )
        last = attempts[-1].error if attempts else None
        reason = f"last: {last.type}: {last.message}" if last else "no provider was tried"
        if budget.cut_short:
            exceeded = DeadlineExceeded(f"deadline of {deadline_s:g}s exceeded; {reason}")
            raise EnrichmentFailed(str(exceeded), attempts=attempts)
        raise EnrichmentFailed(f"every provider failed; {reason}", attempts=attempts)

    async def _try_provider(
        self,
        provider: Provider,
        request: EnrichRequest,
        budget: _Budget,
        attempts: list[Attempt],
    ) -> Completion | None:
        model = request.model or provider.model
        for n in range(1, self.retry.attempts + 1):
            if not budget.allows(0):
                return None
            began = self.clock()
            try:
                completion = await provider.enrich(
                    request, timeout_s=min(self.attempt_timeout_s, budget.left())
                )
            except ProviderError as exc:
                attempts.append(
                    Attempt(
                        provider=provider.name,
                        model=model,
                        attempt=n,
                        outcome=exc.outcome,
                        http_status=exc.status_code,
                        latency_ms=(self.clock() - began) * 1000,
                        error=ErrorInfo(type=type(exc).__name__, message=str(exc)),
                    )
                )
                if not exc.retryable or n == self.retry.attempts:
                    return None
                delay = max(exc.retry_after_s or 0.0, self.retry.backoff_s(n, self.rng))
                if not budget.allows(delay):
                    return None  # waiting would eat the deadline: fall back now
                await self.sleep(delay)
                continue
            attempts.append(
                Attempt(
                    provider=provider.name,
                    model=completion.model,
                    attempt=n,
                    outcome="success",
                    http_status=completion.http_status,
                    latency_ms=(self.clock() - began) * 1000,
                    usage=completion.usage,
                )
            )
            return completion
        return None
