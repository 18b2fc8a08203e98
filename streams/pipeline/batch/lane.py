"""The batch lane of a worker: one ``PartitionLane`` per raw partition it holds, handed over
at each rebalance, and the jobs the live lane passes to it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, Field

from streams.config.slices import BatchConfig
from streams.kafka.producer import Producer
from streams.kafka.readers import retried
from streams.kafka.topics import Topic
from streams.pipeline.batch.finish import LaneFinisher
from streams.pipeline.batch.records import LaneJob, PartitionState, recover
from streams.pipeline.batch.runner import PartitionLane
from streams.pipeline.once import published_sources
from streams.pipeline.ticket import Ticket
from streams.providers.batch.base import BatchAPI

__all__ = ["BatchLane", "BatchLaneStatus"]

log = logging.getLogger(__name__)


class BatchLaneStatus(BaseModel):
    """One provider's batch lane on this worker (its jobs and batches), as ``/status`` and
    the metrics show it."""

    jobs_waiting: int = Field(default=0, description="taken, not yet in a batch")
    oldest_wait_s: float = 0.0
    batches_sent: int = 0
    batches_unacknowledged: int = Field(
        default=0, description="sent, the vendor's id not yet recorded"
    )
    jobs_in_batches: int = 0

    @property
    def batches_out(self) -> int:
        return self.batches_sent + self.batches_unacknowledged


class BatchLane:
    def __init__(
        self,
        *,
        config: BatchConfig,
        topic: Topic[BaseModel],  # where the lanes keep their jobs and batches
        producer: Producer,
        apis: dict[str, BatchAPI],
        finisher: LaneFinisher,
        may_spend: Callable[[str], bool],
    ) -> None:
        self.config = config
        self.topic = topic
        self.producer = producer
        self.apis = apis
        self.finisher = finisher
        self.may_spend = may_spend  # whether a provider is within its budget
        self._lanes: dict[int, asyncio.Task[PartitionLane]] = {}
        self._running: dict[int, asyncio.Task[None]] = {}

    async def accept(self, ticket: Ticket) -> None:
        """Record the job in its partition's lane; returns once it is safe on the broker."""
        target, original = ticket.batch, ticket.original
        assert target is not None, "a live job's ticket"
        assert ticket.source is not None, "a job that came as a record"
        assert original is not None, "a job that came as a record"
        lane = await self._lane(original.partition)
        if lane.state.knows(ticket.source):  # a record redone after a crash: taken before
            return
        size = len(json.dumps(self.apis[target.provider].body(ticket.request, target.model)))
        entry = LaneJob(
            source=ticket.source,
            job=ticket.job,
            original=original,
            provider=target.provider,
            model=target.model,
            size=size,
            taken_at=ticket.taken_at,
            due_at=ticket.due_at,
            trace=dict(ticket.trace),
        )
        await lane.add(entry)

    def status(self) -> dict[str, BatchLaneStatus]:
        """Per provider, the lanes of the raw partitions this worker holds."""
        now = time.time()
        view: dict[str, BatchLaneStatus] = {}
        for task in self._lanes.values():
            if not task.done() or task.cancelled() or task.exception():
                continue
            state = task.result().state
            for job in state.pending.values():
                entry = view.setdefault(job.provider, BatchLaneStatus())
                entry.jobs_waiting += 1
                age = round(now - job.taken_at.timestamp(), 1)
                entry.oldest_wait_s = max(entry.oldest_wait_s, age)
            for batch in state.batches.values():
                entry = view.setdefault(batch.provider, BatchLaneStatus())
                if batch.vendor_id:
                    entry.batches_sent += 1
                else:
                    entry.batches_unacknowledged += 1
                entry.jobs_in_batches += len(batch.jobs)
        return view

    # --- partitions come and go ------------------------------------------------------------

    def assigned(self, partitions: list[int]) -> None:
        for partition in partitions:
            if partition not in self._lanes:
                self._lanes[partition] = asyncio.ensure_future(self._start(partition))

    async def revoked(self, partitions: list[int]) -> None:
        """Stop the partitions' lanes before another worker may start them."""
        tasks: list[asyncio.Task[Any]] = [
            self._running.pop(p) for p in partitions if p in self._running
        ]
        tasks += [self._lanes.pop(p) for p in partitions if p in self._lanes]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _lane(self, partition: int) -> PartitionLane:
        if partition not in self._lanes:
            self.assigned([partition])
        return await asyncio.shield(self._lanes[partition])

    async def _published_while_finishing(self, partition: int, state: PartitionState) -> set[str]:
        """What a previous owner published of the batches it was finishing when it stopped."""
        marks = [b.finishing_at for b in state.batches.values() if b.finishing_at is not None]
        if not marks:
            return set()
        since_ms = int(min(marks).timestamp() * 1000)
        return await retried(
            f"batch lane {partition}: reading the results already published",
            lambda: published_sources(
                self.config.cluster, self.config.outcome_topics, since_ms=since_ms
            ),
        )

    async def _start(self, partition: int) -> PartitionLane:
        # The partition's jobs wait for this; a broker away now is back later.
        state = await retried(
            f"batch lane {partition}: reading it back",
            lambda: recover(self.config.cluster, self.config.topic, partition),
        )
        published = await self._published_while_finishing(partition, state)
        if state.pending or state.batches:
            log.info(
                "batch lane %d: %d jobs waiting and %d batches taken over",
                partition,
                len(state.pending),
                len(state.batches),
            )
        lane = PartitionLane(
            partition=partition,
            state=state,
            config=self.config,
            topic=self.topic,
            producer=self.producer,
            apis=self.apis,
            finisher=self.finisher,
            request_for=self.finisher.request_for,
            may_spend=self.may_spend,
            published=published,
        )
        self._running[partition] = asyncio.ensure_future(lane.run())
        return lane
