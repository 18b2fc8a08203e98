"""A tenant's fair share of a worker's calls in flight: the worker's concurrency split among
the tenants with work here (in flight or waiting) by their weights (``LLM_TENANTS``).

Calls in flight are what a binding provider limit hands out: each waits for its slot in the
limiter, so a tenant holding twice the calls gets about twice the slots. Holding each tenant to
its weighted part of the worker's calls makes the limit's slots go by weight too, and a
tenant alone has the whole worker.

The agent takes a few more records than the worker makes calls (``records_in_flight``): a
record of a tenant at its share only passes through to the waiting lane, so the partitions
are read on to the records of the others behind it instead of stopping at a full window. A
job in want of a call waits for one of the ``capacity`` slots (``slot``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Callable, Collection

__all__ = ["Shares", "records_in_flight"]


def records_in_flight(concurrency: int) -> int:
    """The records the agent holds at most for ``concurrency`` calls: a quarter more (at
    least 8) pass through to the waiting lane."""
    return concurrency + max(8, concurrency // 4)


class Shares:
    def __init__(self, *, capacity: int, weight: Callable[[str], float]) -> None:
        self.capacity = capacity  # the worker's calls in flight at most
        self._weight = weight  # a tenant's, as configured now
        self.in_flight: Counter[str] = Counter()  # jobs counted in their tenant's share
        self._calling = 0  # of them, those holding one of the capacity's slots
        self._slot_freed = asyncio.Condition()

    def share(self, tenant: str, *, waiting: Collection[str] = ()) -> float:
        """``tenant``'s part of the capacity, with those of ``waiting`` (tenants with jobs
        waiting) and those in flight also in want of it."""
        active = {t for t, n in self.in_flight.items() if n > 0} | set(waiting) | {tenant}
        total = sum(self._weight(t) for t in active)
        return self.capacity * self._weight(tenant) / total

    def has_room(self, tenant: str, *, waiting: Collection[str] = (), starting: int = 0) -> bool:
        """Whether one more call of ``tenant``'s, besides ``starting`` about to be counted,
        keeps it within its share (at least one)."""
        share = max(1.0, self.share(tenant, waiting=waiting))
        return self.in_flight[tenant] + starting < share

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """One of the worker's ``capacity`` calls, waited for."""
        async with self._slot_freed:
            await self._slot_freed.wait_for(lambda: self._calling < self.capacity)
            self._calling += 1
        try:
            yield
        finally:
            async with self._slot_freed:
                self._calling -= 1
                self._slot_freed.notify()

    def started(self, tenant: str) -> None:
        self.in_flight[tenant] += 1

    def ended(self, tenant: str) -> None:
        self.in_flight[tenant] -= 1
        if self.in_flight[tenant] <= 0:
            del self.in_flight[tenant]
