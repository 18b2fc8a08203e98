"""The enrich agent: ``jobs.raw`` in, ``jobs.enriched`` or ``jobs.dead-letter`` out.

One actor on a manual-ack stream (see ``acks``) keeps up to ``concurrency`` records in
flight. Each record gets its ticket (``ticket``) and goes to its lane: the batch lane, or
the live one (``enricher``), for which intake pauses while no provider can take a call. A
record that is not a job is dead-lettered at once. A record redone after a crash or a
rebalance whose outcome is already published is acked and nothing more (see ``once``).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Coroutine
from typing import Any

import faust
from aiokafka import TopicPartition

from streams.kafka.rebalance import Rebalances
from streams.kafka.topics import Topics, faust_topic
from streams.pipeline.acks import InOrderAcks
from streams.pipeline.entry import Pipeline
from streams.pipeline.once import PublishedBefore

__all__ = ["AgentRecords", "install_enrich_agent"]

log = logging.getLogger(__name__)


class AgentRecords:
    """The agent's loop over its records, and what it gives back at a rebalance."""

    def __init__(
        self, *, window: InOrderAcks, pipeline: Pipeline, published: PublishedBefore, consumer: Any
    ) -> None:
        self.window, self.pipeline, self.published = window, pipeline, published
        self.consumer = consumer  # streams.kafka.transport's
        self.held: list[Any] = []  # the record taken and not yet in the window
        # Records being worked on (topic, partition, offset): after a rebalance Faust seeks
        # the stream once it has started it, so a record in flight can come round again.
        self.working: set[tuple[str, int, int]] = set()

    async def run(self, events: AsyncIterator[Any]) -> None:
        async for event in events:
            self.held[:] = [event]
            taken_in = self.window.releases
            message = event.message
            key = (message.topic, message.partition, message.offset)
            work: Coroutine[Any, Any, object]
            if key in self.working or await self.published.published(message):
                work = asyncio.sleep(0)  # acked in its turn, after the first
            else:
                self.working.add(key)
                work = self._tracked(await self.pipeline.take(message), key)
            # Given back at a rebalance while it waited for capacity or a slot: the
            # partition's next owner (maybe this worker) takes it again.
            if not await self.window.submit(event, work, taken_in=taken_in):
                self.working.discard(key)
                self.consumer.give_back([message])
            self.held.clear()

    async def release(self, grace_s: float) -> list[Any]:
        """At a rebalance: the records given back (see ``acks``)."""
        router = self.pipeline.live.router
        taken = [event.message for event in self.held]
        events = await self.window.release(
            on_the_wire=router.on_the_wire,
            publishing=self.pipeline.outcomes.publishing,
            grace_s=grace_s,
        )
        await self.pipeline.outcomes.abandoned(router.take_abandoned())
        # Nothing is worked on any more. A task cancelled before it started never ran
        # _tracked's clean-up: its record, come round again, would be acked unworked.
        self.working.clear()
        return [event.message for event in events] + taken

    async def _tracked(
        self, work: Coroutine[Any, Any, object], key: tuple[str, int, int]
    ) -> object:
        try:
            return await work
        finally:
            self.working.discard(key)


def install_enrich_agent(
    app: faust.App,
    *,
    rebalances: Rebalances,
    topics: Topics,
    pipeline: Pipeline,
    published: PublishedBefore,
    concurrency: int,
    revoke_grace_s: float,
    ready: asyncio.Event,
) -> None:
    """Register the agent on ``app``. It takes no record before ``ready`` is set (a
    restarted worker must not route a job before it knows what was switched off). At a
    rebalance it gives its records back at once, after ``revoke_grace_s`` for calls under
    way (see ``acks``)."""

    def raw(partitions: frozenset[int]) -> list[TopicPartition]:
        return [TopicPartition(rebalances.topic, partition) for partition in partitions]

    rebalances.follow(
        assigned=lambda partitions: published.look_back(raw(partitions)),
        revoked=lambda partitions: published.forget(raw(partitions)),
    )

    @app.agent(faust_topic(app, topics.raw), name="enrich", concurrency=1)
    async def enrich(stream: Any) -> None:
        manual = stream.noack()
        window = InOrderAcks(limit=concurrency, ack=manual.ack, on_failure=app.crash)
        await ready.wait()
        consumer: Any = app.consumer  # streams.kafka.transport's
        records = AgentRecords(
            window=window, pipeline=pipeline, published=published, consumer=consumer
        )
        consumer.release_in_flight = functools.partial(records.release, revoke_grace_s)
        try:
            await records.run(manual.events())
        finally:
            consumer.release_in_flight = None
            await window.close()
