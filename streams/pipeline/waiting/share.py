"""A tenant's fair share of a worker's calls in flight: the worker's concurrency split among
the tenants with work here (in flight or waiting) by their weights (``LLM_TENANTS``).

Calls in flight are what a binding provider limit hands out: each waits for its slot in the
limiter, so a tenant holding twice the calls gets about twice the slots. Holding each tenant to
its weighted part of the worker's calls makes the limit's slots go by weight too, and a
tenant alone has the whole worker.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection

__all__ = ["Shares"]


class Shares:
    def __init__(self, *, capacity: int, weight: Callable[[str], float]) -> None:
        self.capacity = capacity  # the worker's calls in flight at most
        self._weight = weight  # a tenant's, as configured now
        self.in_flight: Counter[str] = Counter()

    def share(self, tenant: str, *, waiting: Collection[str] = ()) -> float:
        """``tenant``'s part of the capacity, with those of ``waiting`` (tenants with jobs
        waiting) and those in flight also in want of it."""
        active = {t for t, n in self.in_flight.items() if n > 0} | set(waiting) | {tenant}
        total = sum(self._weight(t) for t in active)
        return self.capacity * self._weight(tenant) / total

    def has_room(self, tenant: str, *, waiting: Collection[str] = ()) -> bool:
        """Whether one more call of ``tenant``'s keeps it within its share (at least one)."""
        return self.in_flight[tenant] < max(1.0, self.share(tenant, waiting=waiting))

    def started(self, tenant: str) -> None:
        self.in_flight[tenant] += 1

    def ended(self, tenant: str) -> None:
        self.in_flight[tenant] -= 1
        if self.in_flight[tenant] <= 0:
            del self.in_flight[tenant]
