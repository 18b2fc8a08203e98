"""Rebalances, heard once. Each part that follows this worker's partitions of the raw topic
(pay-once's look-back, the batch lanes, the share of the group's limits) registers with one
listener on Faust's two signals and gets the raw partitions: the whole new assignment when
partitions are assigned (in the order the parts registered), those given back when they are
revoked (in the reverse order, so what started last stops first).

A revocation changes no share: the jobs still in flight, which the rebalance waits for, keep
the share they started with; the assignment that ends the rebalance sets the new one.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

__all__ = ["Rebalances"]

if TYPE_CHECKING:
    import faust

Handler = Callable[[frozenset[int]], Awaitable[None] | None]


class Rebalances:
    def __init__(self, app: faust.App, *, topic: str) -> None:
        self.topic = topic
        self._assigned: list[Handler] = []
        self._revoked: list[Handler] = []
        app.on_partitions_assigned.connect(self._on_assigned)  # type: ignore[arg-type]
        app.on_partitions_revoked.connect(self._on_revoked)  # type: ignore[arg-type]

    def follow(self, *, assigned: Handler | None = None, revoked: Handler | None = None) -> None:
        """Call ``assigned`` with the raw partitions held after each rebalance, and
        ``revoked`` with those given back at its start."""
        if assigned is not None:
            self._assigned.append(assigned)
        if revoked is not None:
            self._revoked.insert(0, revoked)

    async def _on_assigned(self, sender: Any, assigned: Iterable[Any], **kwargs: Any) -> None:
        await _each(self._assigned, self._raw(assigned))

    async def _on_revoked(self, sender: Any, revoked: Iterable[Any], **kwargs: Any) -> None:
        await _each(self._revoked, self._raw(revoked))

    def _raw(self, partitions: Iterable[Any]) -> frozenset[int]:
        return frozenset(tp.partition for tp in partitions if tp.topic == self.topic)


async def _each(handlers: list[Handler], partitions: frozenset[int]) -> None:
    for handler in handlers:
        result = handler(partitions)
        if inspect.isawaitable(result):
            await result
