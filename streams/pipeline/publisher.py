"""Sending a record and waiting for the broker's acknowledgement."""

from __future__ import annotations

import asyncio
import itertools
import logging
from typing import Any

from aiokafka.errors import KafkaError, MessageSizeTooLargeError
from pydantic import BaseModel

from streams.errors import PublishRejected

log = logging.getLogger(__name__)

PUBLISH_BACKOFF_S = (0.1, 0.5, 1.0, 2.0, 5.0)


async def publish(
    topic: Any,
    key: str | None,
    record: BaseModel | None,
    *,
    headers: dict[str, bytes] | None = None,
    partition: int | None = None,
) -> None:
    """Send and wait for the broker's acknowledgement, retrying while the broker is away:
    the input is acked only after this returns, so giving up would lose it. A record the
    broker refuses for good (too large) is a PublishRejected. ``record`` None deletes
    ``key`` from a compacted topic; ``partition`` None: the key's.

    ``force=True`` skips Faust's attachments, which would hold the record until the input is
    acked, while we hold the ack until the record is delivered."""
    value = record.model_dump_json().encode("utf-8") if record is not None else None
    for attempt in itertools.count():
        try:
            delivery = await topic.send(
                key=key.encode() if key else None,
                value=value,
                headers=headers,
                partition=partition,
                force=True,
            )
            await delivery
            return
        except MessageSizeTooLargeError as exc:
            raise PublishRejected(f"{topic.get_topic_name()}: {exc}") from None
        except (KafkaError, TimeoutError) as exc:
            delay = PUBLISH_BACKOFF_S[min(attempt, len(PUBLISH_BACKOFF_S) - 1)]
            log.warning("publish to %s failed (%s); retrying in %.1fs", topic, exc, delay)
            await asyncio.sleep(delay)
