"""Up to N records in flight, acknowledged strictly in arrival order.

An agent with ``concurrency > 1`` in Faust 0.15.3 commits past records still in flight: it
commits the first run of consecutive acked offsets, wherever that run starts. So the enrich
agent runs one actor on a manual-ack stream and acks through this window: a slow record holds
back the commit, never the other records' work.

At a rebalance the window gives its records back (``release``): the work not on the wire is
cancelled at once, calls on the wire get a grace to finish, an outcome being published is
never cut short (its records could reach the broker after the next owner looked for them),
and every record not acked by then is handed back unacknowledged, so it is not committed and
the partition's next owner takes it again (pay-once skips those whose outcome was published
meanwhile).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

__all__ = ["InOrderAcks"]

log = logging.getLogger(__name__)


class InOrderAcks:
    """Up to ``limit`` records in flight; acks in arrival order as each one finishes."""

    def __init__(
        self,
        *,
        limit: int,
        ack: Callable[[Any], Awaitable[Any]],
        on_failure: Callable[[BaseException], Awaitable[None]],
    ) -> None:
        self._slots = asyncio.Semaphore(limit)
        self._pending: deque[tuple[Any, asyncio.Task[object]]] = deque()  # not acked yet
        self._arrived = asyncio.Event()
        self._ack = ack
        self._on_failure = on_failure
        self._acker: asyncio.Task[None] | None = None
        self._releases = 0

    @property
    def releases(self) -> int:
        """How many times the window has given its records back: a record taken when it was
        N is not this worker's to finish once it is more."""
        return self._releases

    async def submit(
        self, event: Any, work: Coroutine[Any, Any, object], *, taken_in: int | None = None
    ) -> bool:
        """Start ``work`` for ``event`` once a slot is free; False (and ``work`` closed) if
        the records were given back since it was taken (``taken_in``: ``releases`` then;
        default: now), this one with them."""
        releases = self._releases if taken_in is None else taken_in
        if releases == self._releases:
            await self._slots.acquire()
        else:
            work.close()
            return False
        if releases != self._releases:
            self._slots.release()
            work.close()
            return False
        if self._acker is None:
            self._acker = asyncio.create_task(self._ack_in_order())
        task = asyncio.ensure_future(work)
        task.add_done_callback(lambda _: self._slots.release())
        self._pending.append((event, task))
        self._arrived.set()
        return True

    async def release(
        self,
        *,
        on_the_wire: Callable[[asyncio.Task[object]], bool],
        publishing: Callable[[asyncio.Task[object]], bool],
        grace_s: float,
    ) -> list[Any]:
        """Give every record not acked back (see the module's doc); returns their events.
        Records acked meanwhile (their call finished) are not among them."""
        self._releases += 1
        waiting = [task for _, task in self._pending if not task.done()]
        busy = [task for task in waiting if on_the_wire(task) or publishing(task)]
        for task in waiting:
            if task not in busy:
                task.cancel()
        if busy:
            await asyncio.wait(busy, timeout=grace_s)
            abandoned = [task for task in busy if not task.done() and not publishing(task)]
            if abandoned:
                log.info("rebalance: %d calls abandoned after %gs", len(abandoned), grace_s)
            for task in abandoned:
                task.cancel()
        if self._pending:  # let the cancellations land, and the acker take what finished
            await asyncio.wait([task for _, task in self._pending])
        await self.close()  # whatever the acker had not acked stays so
        released = [event for event, _ in self._pending]
        self._pending.clear()
        return released

    async def _ack_in_order(self) -> None:
        while True:
            if not self._pending:
                self._arrived.clear()
                await self._arrived.wait()
                continue
            event, task = self._pending[0]
            await asyncio.wait([task])
            if task.cancelled():
                return  # released or shutting down: this record and those after it stay
            failure = task.exception()
            if failure is not None:
                # Only a bug gets here. Acking later records would commit past this one,
                # so stop acking and stop the worker; a restart redoes the record.
                log.critical("record handler failed; stopping", exc_info=failure)
                await self._on_failure(failure)
                return
            await self._ack(event)
            self._pending.popleft()

    async def close(self) -> None:
        acker, self._acker = self._acker, None
        if acker is not None:
            acker.cancel()
            await asyncio.gather(acker, return_exceptions=True)
