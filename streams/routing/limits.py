"""Per-provider rate limits: requests per minute, tokens per minute, concurrent calls, held
for the whole consumer group.

The limits a user configures are their account's, for all workers together. Each worker holds
the share that its partitions of the raw topic give it: ``limit * held // partitions``. The
group's assignment is the arbiter, so no other coordination is needed (no extra service, no
lease topic): shares add up to at most the limit whatever the membership, and move with every
rebalance. A dead worker keeps its partitions, and so its share, until the group notices
(``LLM_BROKER_SESSION_TIMEOUT_S``); it sends nothing meanwhile. The price is skew: a worker
whose partitions carry little load leaves part of its share unused.

The buckets are sized so that no sliding 60-second window ever sees more than the limit:
a bucket of C whole tokens refilling at r per second admits at most C + 60·r - 1 whole
takes in any half-open minute, so r = (limit - C + 1) / 60, with C one second's worth of
requests (smooth, as vendors meter sub-minute) or ten seconds' worth of tokens (so a large
call fits a small share). When a share grows, the bucket keeps its level and only refills
faster: the partitions it gained may have been used by another worker within the minute.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from streams.config.slices import LimitsConfig
from streams.deadline import Deadline
from streams.errors import RequestTooLarge

__all__ = ["WHOLE", "ProviderLimiter", "Share", "Slots", "TokenBucket"]


@dataclass(frozen=True, kw_only=True)
class Share:
    """This worker's part of the group's limits: the raw topic's partitions it holds."""

    held: int
    of: int

    def of_limit(self, limit: int) -> int:
        return limit * self.held // self.of


WHOLE = Share(held=1, of=1)  # a router on its own (tests, benchmarks): the whole limit


@dataclass(kw_only=True)
class TokenBucket:
    per_minute: int
    clock: Callable[[], float]
    sleep: Callable[[float], Awaitable[None]]
    burst_s: int = 1  # how many seconds' worth it holds when full

    def __post_init__(self) -> None:
        self._turn = asyncio.Lock()  # first come, first served: no starvation of big asks
        self._stamp = self.clock()
        self._size(self.per_minute)
        self._level = self.capacity

    def _size(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self.capacity = float(max(1, per_minute * self.burst_s // 60)) if per_minute else 0.0
        # a hair under the exact figure, so float rounding never lets one more through
        self.rate = max(0.0, (per_minute - self.capacity + 1) / 60 * (1 - 1e-9))

    def resize(self, per_minute: int) -> None:
        """A new limit, keeping what is in the bucket (at most the new capacity)."""
        self._refill()
        self._size(per_minute)
        self._level = min(self._level, self.capacity)

    def _refill(self) -> None:
        now = self.clock()
        self._level = min(self.capacity, self._level + (now - self._stamp) * self.rate)
        self._stamp = now

    def delay_for(self, amount: float) -> float:
        """Seconds until ``amount`` could be taken (0 if now; inf with no share)."""
        self._refill()
        if amount <= self._level:
            return 0.0
        return (amount - self._level) / self.rate if self.per_minute else math.inf

    async def take(self, amount: float, *, deadline: Deadline) -> None:
        """Take ``amount`` once the bucket holds it; DeadlineExceeded at once if it would
        not before the deadline (waiting would only waste the job's time)."""
        if amount > self.capacity and self.per_minute:
            raise RequestTooLarge(f"{amount:.0f} exceeds the bucket's {self.capacity:.0f}")
        async with self._turn:
            # A microsecond early is taken as on time: float clocks cannot always move by
            # less, and the level going that little below zero is paid back by the next take.
            while (delay := self.delay_for(amount)) > 1e-6:
                if not deadline.allows(delay):
                    wait = "no share of it here" if math.isinf(delay) else f"{delay:.1f}s"
                    raise deadline.exceeded(f"waiting for the rate limit ({wait})")
                await self.sleep(delay)
            self._level -= amount

    def give_back(self, amount: float) -> None:
        """Return what was reserved but not used (estimated tokens above the actual)."""
        self._refill()
        self._level = min(self.capacity, self._level + amount)


class Slots:
    """A semaphore whose size can change while it is held (a worker's share of a group-wide
    concurrency cap moves with the partitions it holds). First come, first served: a freed
    slot is handed to the longest waiter, never taken by a newcomer, so no call starves."""

    def __init__(self, capacity: float) -> None:
        self.capacity = capacity  # inf: no limit
        self.in_use = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    def try_acquire(self) -> bool:
        """A slot now, without waiting, if one is free."""
        if self.in_use < self.capacity and not self._waiters:
            self.in_use += 1
            return True
        return False

    async def acquire(self) -> None:
        if self.try_acquire():
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter  # woken with its slot already counted
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed a slot, then cancelled: give it on
            elif waiter in self._waiters:  # (a wake-up may have dropped it already)
                self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        self.in_use -= 1
        self._wake()

    def resize(self, capacity: float) -> None:
        self.capacity = capacity
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.in_use < self.capacity:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.in_use += 1
                waiter.set_result(None)


class ProviderLimiter:
    """The three limits of one provider, taken together for each call, at this worker's
    share of them. Changed in place (``reconfigure``, ``set_share``): the calls in flight
    hold their slots in the same semaphore and the buckets keep their levels, so a change
    never lets more through than the limit in force."""

    def __init__(
        self,
        config: LimitsConfig,
        *,
        share: Share = WHOLE,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
    ) -> None:
        self.config = config
        self.share = share
        self._clock, self._sleep = clock, sleep
        # Always there (unbounded without a limit), so a limit set later counts the calls
        # already in flight.
        self._slots = Slots(math.inf)
        self._requests: TokenBucket | None = None
        self._tokens: TokenBucket | None = None
        self.in_flight = 0
        self._apply()

    def reconfigure(self, config: LimitsConfig) -> None:
        """The group's new limits (a config patch)."""
        if config != self.config:
            self.config = config
            self._apply()

    def set_share(self, share: Share) -> None:
        self.share = share
        self._apply()

    def _apply(self) -> None:
        config, share = self.config, self.share
        self._slots.resize(share.of_limit(config.concurrency) if config.concurrency else math.inf)
        self._requests = self._bucket(self._requests, config.rpm, burst_s=1)
        self._tokens = self._bucket(self._tokens, config.tpm, burst_s=10)

    def _bucket(
        self, bucket: TokenBucket | None, per_minute: int | None, *, burst_s: int
    ) -> TokenBucket | None:
        if not per_minute:
            return None
        limit = self.share.of_limit(per_minute)
        if bucket is None:
            return TokenBucket(
                per_minute=limit, clock=self._clock, sleep=self._sleep, burst_s=burst_s
            )
        bucket.resize(limit)
        return bucket

    def effective(self) -> dict[str, int | None]:
        """This worker's limits now."""
        slots = self._slots.capacity
        return {
            "rpm": self._requests.per_minute if self._requests else None,
            "tpm": self._tokens.per_minute if self._tokens else None,
            "concurrency": None if math.isinf(slots) else int(slots),
        }

    @asynccontextmanager
    async def call(
        self, *, tokens: int, deadline: Deadline
    ) -> AsyncIterator[Callable[[int], None]]:
        """Hold a slot and the call's share of both buckets, waiting for them no longer
        than the deadline allows (DeadlineExceeded). Yields ``settle(actual)``, which gives
        back the estimated tokens the call did not use."""
        if not self._slots.try_acquire():  # no timer on the common path
            async with deadline.enforced("waiting for a free call slot"):
                await self._slots.acquire()
        try:
            requests, token_bucket = self._requests, self._tokens
            if requests or token_bucket:
                async with deadline.enforced("waiting for the rate limit"):
                    if requests:
                        await requests.take(1, deadline=deadline)
                    if token_bucket:
                        await token_bucket.take(tokens, deadline=deadline)

            def settle(actual: int) -> None:
                if token_bucket and actual < tokens:
                    token_bucket.give_back(tokens - actual)

            self.in_flight += 1
            try:
                yield settle
            finally:
                self.in_flight -= 1
        finally:
            self._slots.release()
