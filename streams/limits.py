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

from pydantic import BaseModel, ConfigDict, Field


class LimitsConfig(BaseModel):
    """One provider's limits; None means no limit of that kind."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rpm: int | None = Field(default=None, ge=1)
    tpm: int | None = Field(default=None, ge=100)
    concurrency: int = Field(default=64, ge=1, le=10_000)


class TooLarge(Exception):
    """A single request needs more tokens than the per-minute limit allows."""


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

    async def take(self, amount: float) -> None:
        if amount > self.capacity:
            raise TooLarge(f"{amount:.0f} exceeds the bucket's {self.capacity:.0f}")
        async with self._turn:
            # A microsecond early is taken as on time: float clocks cannot always move by
            # less, and the level going that little below zero is paid back by the next take.
            while (delay := self.delay_for(amount)) > 1e-6:
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

    def max_tokens_per_call(self) -> float | None:
        return self._tokens.capacity if self._tokens else None

    def wait_hint(self) -> float:
        """Roughly how long until a small call could start (for routing decisions)."""
        return self._requests.delay_for(1) if self._requests else 0.0

    @asynccontextmanager
    async def call(self, *, tokens: int, within_s: float) -> AsyncIterator[Callable[[int], None]]:
        """Hold a slot and the call's share of both buckets, waiting at most ``within_s``
        for them (TimeoutError after that). Yields ``settle(actual)``, which gives back the
        estimated tokens the call did not use."""
        deadline = asyncio.get_running_loop().time() + within_s
        async with asyncio.timeout_at(deadline):
            await self._slots.acquire()
        try:
            async with asyncio.timeout_at(deadline):
                if self._requests:
                    await self._requests.take(1)
                if self._tokens:
                    await self._tokens.take(tokens)

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
