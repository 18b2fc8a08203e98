"""The one seam every writer sends records through.

A ``Producer`` takes one record for a topic and gives back its acknowledgement to await,
so a writer enqueues all its records before waiting for any (they share the producer's
batches). The worker's is Faust's own producer; a command-line writer's, an aiokafka
producer of ``streams.kafka.clients``; a unit test's, an in-memory broker.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from typing import Any, Protocol

from aiokafka import AIOKafkaProducer

__all__ = ["ClientProducer", "FaustProducer", "Producer"]


class Producer(Protocol):
    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        *,
        partition: int | None = None,
        headers: Mapping[str, bytes] | None = None,
    ) -> Awaitable[object]:
        """Enqueue one record (``value`` None: a tombstone; ``partition`` None: the key's);
        the acknowledgement to await. Raises KafkaError if it refuses the record at once."""
        ...


class FaustProducer:
    """The worker's Faust app's producer, started on first use."""

    def __init__(self, app: Any) -> None:  # a faust.App
        self._app = app

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        *,
        partition: int | None = None,
        headers: Mapping[str, bytes] | None = None,
    ) -> Awaitable[object]:
        producer = await self._app.maybe_start_producer()
        # Faust's producer takes a mapping of headers as it is (no copy per record).
        delivery: Awaitable[object] = await producer.send(
            topic, key, value, partition, None, headers or None
        )
        return delivery


class ClientProducer:
    """An aiokafka producer (``streams.kafka.clients.producer``), as a Producer."""

    def __init__(self, client: AIOKafkaProducer) -> None:
        self._client = client

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        *,
        partition: int | None = None,
        headers: Mapping[str, bytes] | None = None,
    ) -> Awaitable[object]:
        delivery: Awaitable[object] = await self._client.send(
            topic,
            value,
            key=key,
            partition=partition,
            headers=list(headers.items()) if headers else None,
        )
        return delivery
