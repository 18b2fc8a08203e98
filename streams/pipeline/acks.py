"""Up to N records in flight, acknowledged strictly in arrival order.

An agent with ``concurrency > 1`` in Faust 0.15.3 commits past records still in flight: it
commits the first run of consecutive acked offsets, wherever that run starts. So the enrich
agent runs one actor on a manual-ack stream and acks through this window: a slow record holds
back the commit, never the other records' work.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
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
        self._queue: asyncio.Queue[tuple[Any, asyncio.Task[object]]] = asyncio.Queue()
        self._ack = ack
        self._on_failure = on_failure
        self._acker: asyncio.Task[None] | None = None

    async def submit(self, event: Any, work: Awaitable[object]) -> None:
        await self._slots.acquire()
        if self._acker is None:
            self._acker = asyncio.create_task(self._ack_in_order())
        task = asyncio.ensure_future(work)
        task.add_done_callback(lambda _: self._slots.release())
        self._queue.put_nowait((event, task))

    async def _ack_in_order(self) -> None:
        while True:
            event, task = await self._queue.get()
            await asyncio.wait([task])
            if task.cancelled():
                return  # shutting down: this record and those after it stay uncommitted
            failure = task.exception()
            if failure is not None:
                # Only a bug gets here. Acking later records would commit past this one,
                # so stop acking and stop the worker; a restart redoes the record.
                log.critical("record handler failed; stopping", exc_info=failure)
                await self._on_failure(failure)
                return
            await self._ack(event)

    async def close(self) -> None:
        if self._acker is not None:
            self._acker.cancel()
