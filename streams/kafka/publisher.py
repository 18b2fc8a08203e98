"""Sending records and waiting for the broker's acknowledgements.

In the worker the records go straight to Faust's producer, not through Faust's
``Topic.send``: its message envelope, attachments and callbacks cost about as much CPU as
the producer itself, and we need none of them (we hold the input's ack until the records
are delivered, so nothing is attached to it). Every record of a call is enqueued before
any acknowledgement is awaited, so they share the producer's batches and no task is made
per record.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Mapping, Sequence
from typing import NamedTuple

from aiokafka.errors import KafkaError, MessageSizeTooLargeError

from streams.errors import PublishRejected
from streams.kafka.producer import Producer

__all__ = ["Outgoing", "publish", "publish_all"]

log = logging.getLogger(__name__)

PUBLISH_BACKOFF_S = (0.1, 0.5, 1.0, 2.0, 5.0)


class Outgoing(NamedTuple):
    """One record to publish, serialized already (``Topic.record`` makes it): ``value`` None
    deletes ``key`` from a compacted topic; ``partition`` None: the key's."""

    topic: str
    key: str | None
    value: bytes | None
    headers: Mapping[str, bytes] | None = None
    partition: int | None = None


async def publish(producer: Producer, outgoing: Outgoing) -> None:
    """One record: see ``publish_all``."""
    await publish_all(producer, [outgoing])


async def publish_all(producer: Producer, outgoing: Sequence[Outgoing]) -> None:
    """Send the records and wait for the broker's acknowledgements, retrying each one while
    the broker is away: the input is acked only after this returns, so giving up would lose
    it. A record the broker refuses for good (too large) is a PublishRejected, raised once
    the others are delivered."""
    todo = list(outgoing)
    rejected: list[PublishRejected] = []
    for attempt in itertools.count():
        sent = [(o, await _send(producer, o)) for o in todo]
        failed: list[tuple[Outgoing, BaseException]] = []
        for o, delivery in sent:
            try:
                await delivery
            except MessageSizeTooLargeError as exc:
                rejected.append(PublishRejected(f"{o.topic}: {exc}"))
            except (KafkaError, TimeoutError) as exc:
                failed.append((o, exc))
        if not failed:
            break
        delay = PUBLISH_BACKOFF_S[min(attempt, len(PUBLISH_BACKOFF_S) - 1)]
        topics = sorted({o.topic for o, _ in failed})
        log.warning(
            "publish to %s failed (%s); retrying in %.1fs", ", ".join(topics), failed[0][1], delay
        )
        await asyncio.sleep(delay)
        todo = [o for o, _ in failed]
    if rejected:
        raise rejected[0]


async def _send(producer: Producer, o: Outgoing) -> Awaitable[object]:
    """Enqueue one record; returns the acknowledgement to await, which carries the error
    when the producer refused the record at once."""
    try:
        return await producer.send(
            o.topic,
            o.key.encode() if o.key else None,
            o.value,
            partition=o.partition,
            headers=o.headers,
        )
    except (KafkaError, TimeoutError) as exc:  # too large, or the broker away
        refused: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        refused.set_exception(exc)
        return refused
