"""The enrich agent: ``jobs.raw`` in, ``jobs.enriched`` or ``jobs.dead-letter`` out.

One actor on a manual-ack stream (see ``acks``) keeps up to ``concurrency`` records in
flight. Each record gets its ticket (``ticket``) and goes to its lane: the batch lane, or
the live one (``enricher``), for which intake pauses while no provider can take a call. A
record that is not a job is dead-lettered at once. A record redone after a crash or a
rebalance whose outcome is already published is acked and nothing more (see ``once``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

import faust

from streams.errors import ConfigurationError, RecordRejected
from streams.kafka.topics import Topics
from streams.pipeline.acks import InOrderAcks
from streams.pipeline.enricher import Enricher
from streams.pipeline.lane import BatchLane
from streams.pipeline.once import PublishedBefore
from streams.pipeline.outcome import Outcomes
from streams.pipeline.ticket import Intake, Ticket

__all__ = ["Lanes", "install_enrich_agent"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Lanes:
    """Where a record goes once taken: its ticket, then the lane it asks for."""

    intake: Intake
    live: Enricher
    batch: BatchLane
    outcomes: Outcomes

    async def take(self, message: Any) -> Coroutine[Any, Any, object]:
        """What finishes the record (waiting first, for a live job, until some provider can
        take a call: the time waited counts against its deadline)."""
        router = self.live.router
        taken_at = router.clock()
        try:
            ticket = self.intake.take(message, taken_at=taken_at)
        except RecordRejected as exc:
            return self.outcomes.rejected(exc, message=message)
        if ticket.batch is not None:
            return self._to_batch(ticket)
        await router.wait_for_capacity()
        return self.live.finish(ticket)

    async def _to_batch(self, ticket: Ticket) -> None:
        try:
            await self.batch.accept(ticket)
        except Exception as exc:  # a bug must cost one dead letter, not the record
            log.exception("unexpected error taking job %s into the batch lane", ticket.job.job_id)
            await self.outcomes.failed(ticket, exc, stage="enrich")


def install_enrich_agent(
    app: faust.App,
    *,
    topics: Topics,
    lanes: Lanes,
    published: PublishedBefore,
    concurrency: int,
    revoke_grace_s: float,
    bootstrap_servers: str,
    ready: asyncio.Event,
) -> None:
    """Register the agent on ``app``. It takes no record before ``ready`` is set (a
    restarted worker must not route a job before it knows what was switched off). At a
    rebalance it gives its records back at once, after ``revoke_grace_s`` for calls under
    way (see ``acks``)."""
    router = lanes.live.router

    async def look_back(sender: Any, assigned: Any, **kwargs: Any) -> None:
        published.look_back(assigned)

    async def forget(sender: Any, revoked: Any, **kwargs: Any) -> None:
        published.forget(revoked)

    app.on_partitions_assigned.connect(look_back)  # type: ignore[arg-type]
    app.on_partitions_revoked.connect(forget)  # type: ignore[arg-type]

    @app.agent(topics.raw, name="enrich", concurrency=1)
    async def enrich(stream: Any) -> None:
        manual = stream.noack()
        window = InOrderAcks(limit=concurrency, ack=manual.ack, on_failure=app.crash)
        # Declared before the first send: a topic auto-created by a send would get the
        # broker's default partition count, not ours.
        try:
            await topics.check_partitions(bootstrap_servers)
        except ConfigurationError as exc:
            await app.crash(exc)
            return
        await asyncio.gather(*(topic.maybe_declare() for topic in topics.all()))
        await ready.wait()
        held: list[Any] = []  # the record taken and not yet in the window
        consumer: Any = app.consumer  # streams.kafka.transport's

        async def release() -> list[Any]:
            taken = [event.message for event in held]
            events = await window.release(
                on_the_wire=router.on_the_wire,
                publishing=lanes.outcomes.publishing,
                grace_s=revoke_grace_s,
            )
            await lanes.outcomes.abandoned(router.take_abandoned())
            return [event.message for event in events] + taken

        consumer.release_in_flight = release
        try:
            async for event in manual.events():
                held[:] = [event]
                taken_in = window.releases
                work: Coroutine[Any, Any, object]
                if await published.published(event.message):
                    work = asyncio.sleep(0)  # acked in its turn
                else:
                    work = await lanes.take(event.message)
                # Given back at a rebalance while it waited for capacity or a slot: the
                # partition's next owner (maybe this worker) takes it again.
                if not await window.submit(event, work, taken_in=taken_in):
                    consumer.give_back([event.message])
                held.clear()
        finally:
            consumer.release_in_flight = None
            await window.close()
