"""The enrich agent: ``jobs.raw`` in, ``jobs.enriched`` or ``jobs.dead-letter`` out.

One actor on a manual-ack stream (see ``acks``) keeps up to ``concurrency`` records in
flight, each handled by the Enricher, and pauses intake while no provider can take a call. A
record redone after a crash or a rebalance whose outcome is already published is acked and
nothing more (see ``once``).
"""

from __future__ import annotations

import asyncio
from typing import Any

import faust

from streams.errors import ConfigurationError
from streams.kafka.topics import Topics
from streams.pipeline.acks import InOrderAcks
from streams.pipeline.enricher import Enricher
from streams.pipeline.once import PublishedBefore


def install_enrich_agent(
    app: faust.App,
    *,
    topics: Topics,
    enricher: Enricher,
    published: PublishedBefore,
    concurrency: int,
    bootstrap_servers: str,
    ready: asyncio.Event,
) -> None:
    """Register the agent on ``app``. It takes no record before ``ready`` is set (a
    restarted worker must not route a job before it knows what was switched off)."""
    router = enricher.router

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
        try:
            async for event in manual.events():
                if await published.published(event.message):
                    await window.submit(event, asyncio.sleep(0))  # acked in its turn
                    continue
                taken_at = router.clock()  # the deadline counts time paused below too
                await router.wait_for_capacity()
                await window.submit(event, enricher.handle(event, taken_at=taken_at))
        finally:
            await window.close()
