"""Sending records and waiting for the broker's acknowledgements.

The records go straight to Faust's producer, not through ``Topic.send``: its message
envelope, attachments and callbacks cost about as much CPU as the producer itself, and we
need none of them (we hold the input's ack until the records are delivered, so nothing is
attached to it). Every record of a call is enqueued before any acknowledgement is awaited,
so they share the producer's batches and no task is made per record.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Sequence
from typing import Any, NamedTuple

from aiokafka.errors import KafkaError, MessageSizeTooLargeError
from pydantic import BaseModel

from streams.errors import PublishRejected
from streams.kafka.framing import Framing

__all__ = ["Outgoing", "framed", "publish", "publish_all"]

log = logging.getLogger(__name__)

PUBLISH_BACKOFF_S = (0.1, 0.5, 1.0, 2.0, 5.0)


class Outgoing(NamedTuple):
    """One record to publish: ``record`` None deletes ``key`` from a compacted topic (bytes:
    serialized already, e.g. framed for a Schema Registry); ``partition`` None: the key's."""

    topic: Any  # a Faust topic
    key: str | None
    record: BaseModel | bytes | None
    headers: dict[str, bytes] | None = None
    partition: int | None = None


def framed(
    framing: Framing,
    topic: Any,
    key: str | None,
    record: BaseModel,
    headers: dict[str, bytes] | None = None,
) -> Outgoing:
    """A record of a topic with a registered schema: framed with its id, if it has one."""
    value = framing.encode(topic.get_topic_name(), record.model_dump_json().encode())
    return Outgoing(topic, key, value, headers)


def _value(record: BaseModel | bytes | None) -> bytes | None:
    if record is None or isinstance(record, bytes):
        return record
    return record.model_dump_json().encode()


async def publish(
    topic: Any,
    key: str | None,
    record: BaseModel | None,
    *,
    headers: dict[str, bytes] | None = None,
    partition: int | None = None,
) -> None:
    """One record: see ``publish_all``."""
    await publish_all([Outgoing(topic, key, record, headers, partition)])


async def publish_all(outgoing: Sequence[Outgoing]) -> None:
    """Send the records and wait for the broker's acknowledgements, retrying each one while
    the broker is away: the input is acked only after this returns, so giving up would lose
    it. A record the broker refuses for good (too large) is a PublishRejected, raised once
    the others are delivered."""
    todo = [(o, _value(o.record)) for o in outgoing]
    rejected: list[PublishRejected] = []
    for attempt in itertools.count():
        sent = [(o, value, await _send(o, value)) for o, value in todo]
        failed: list[tuple[Outgoing, bytes | None, BaseException]] = []
        for o, value, delivery in sent:
            try:
                await delivery
            except MessageSizeTooLargeError as exc:
                rejected.append(PublishRejected(f"{o.topic.get_topic_name()}: {exc}"))
            except (KafkaError, TimeoutError) as exc:
                failed.append((o, value, exc))
        if not failed:
            break
        delay = PUBLISH_BACKOFF_S[min(attempt, len(PUBLISH_BACKOFF_S) - 1)]
        topics = sorted({o.topic.get_topic_name() for o, _, _ in failed})
        log.warning(
            "publish to %s failed (%s); retrying in %.1fs", ", ".join(topics), failed[0][2], delay
        )
        await asyncio.sleep(delay)
        todo = [(o, value) for o, value, _ in failed]
    if rejected:
        raise rejected[0]


async def _send(o: Outgoing, value: bytes | None) -> Awaitable[Any]:
    """Enqueue one record; returns the acknowledgement to await, which carries the error
    when the producer refused the record at once."""
    producer = await o.topic.app.maybe_start_producer()
    try:
        delivery: Awaitable[Any] = await producer.send(
            o.topic.get_topic_name(),
            o.key.encode() if o.key else None,
            value,
            o.partition,
            None,  # timestamp: the producer's clock
            o.headers,
        )
    except (KafkaError, TimeoutError) as exc:  # too large, or the broker away
        refused: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        refused.set_exception(exc)
        return refused
    return delivery
