"""Per-provider rate limits: requests per minute, tokens per minute, concurrent calls.

The buckets are sized so that no sliding 60-second window ever sees more than the limit:
a bucket of C whole tokens refilling at r per second admits at most C + 60·r - 1 whole
takes in any half-open minute, so C is one second's worth and r = (limit - C + 1) / 60.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from streams.config.slices import LimitsConfig
from streams.deadline import Deadline
from streams.errors import RequestTooLarge


@dataclass(kw_only=True)
class TokenBucket:
    per_minute: int
    clock: Callable[[], float]
    sleep: Callable[[float], Awaitable[None]]

    def __post_init__(self) -> None:
        self.capacity = float(max(1, self.per_minute // 60))
        # a hair under the exact figure, so float rounding never lets one more through
        self.rate = (self.per_minute - self.capacity + 1) / 60 * (1 - 1e-9)
        self._level = self.capacity
        self._stamp = self.clock()
        self._turn = asyncio.Lock()  # first come, first served: no starvation of big asks

    def _refill(self) -> None:
        now = self.clock()
        self._level = min(self.capacity, self._level + (now - self._stamp) * self.rate)
        self._stamp = now

    def delay_for(self, amount: float) -> float:
        """Seconds until ``amount`` could be taken (0 if now)."""
        self._refill()
        return max(0.0, (amount - self._level) / self.rate)

    async def take(self, amount: float, *, deadline: Deadline) -> None:
        """Take ``amount`` once the bucket holds it; DeadlineExceeded at once if it would
        not before the deadline (waiting would only waste the job's time)."""
        if amount > self.capacity:
            raise RequestTooLarge(f"{amount:.0f} exceeds the bucket's {self.capacity:.0f}")
        async with self._turn:
            # A microsecond early is taken as on time: float clocks cannot always move by
            # less, and the level going that little below zero is paid back by the next take.
            while (delay := self.delay_for(amount)) > 1e-6:
                if not deadline.allows(delay):
                    raise deadline.exceeded(f"waiting {delay:.1f}s for the rate limit")
                await self.sleep(delay)
            self._level -= amount

    def give_back(self, amount: float) -> None:
        """Return what was reserved but not used (estimated tokens above the actual)."""
        self._refill()
        self._level = min(self.capacity, self._level + amount)


class ProviderLimiter:
    """The three limits of one provider, taken together for each call."""

    def __init__(
        self,
        config: LimitsConfig,
        *,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
    ) -> None:
        self.config = config
        self._slots = asyncio.Semaphore(config.concurrency)
        self._requests = (
            TokenBucket(per_minute=config.rpm, clock=clock, sleep=sleep) if config.rpm else None
        )
        self._tokens = (
            TokenBucket(per_minute=config.tpm, clock=clock, sleep=sleep) if config.tpm else None
        )
        self.in_flight = 0

    @asynccontextmanager
    async def call(
        self, *, tokens: int, deadline: Deadline
    ) -> AsyncIterator[Callable[[int], None]]:
        """Hold a slot and the call's share of both buckets, waiting for them no longer
        than the deadline allows (DeadlineExceeded). Yields ``settle(actual)``, which gives
        back the estimated tokens the call did not use."""
        async with deadline.enforced("waiting for a free call slot"):
            await self._slots.acquire()
        try:
            async with deadline.enforced("waiting for the rate limit"):
                if self._requests:
                    await self._requests.take(1, deadline=deadline)
                if self._tokens:
                    await self._tokens.take(tokens, deadline=deadline)

            def settle(actual: int) -> None:
                if self._tokens and actual < tokens:
                    self._tokens.give_back(tokens - actual)

            self.in_flight += 1
            try:
                yield settle
            finally:
                self.in_flight -= 1
        finally:
            self._slots.release()
