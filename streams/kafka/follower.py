"""Reading a whole one-partition compacted topic on every worker (no consumer group)."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import TopicPartition

from streams.kafka.admin import ensure_topic
from streams.kafka.clients import reader


class TopicFollower:
    """Reads the topic from the start and keeps following it; ``replayed`` is set once
    everything that was there at start-up is applied. Subclasses say what a record does."""

    def __init__(
        self,
        *,
        bootstrap_servers: str,
        topic: str,
        retention_s: float | None = None,
        gathered: bool = False,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self._retention_s = retention_s
        self._gathered = gathered  # see kafka.clients.reader
        self.replayed = asyncio.Event()

    def apply(self, record: Any) -> None:
        raise NotImplementedError

    async def run(self) -> None:
        await ensure_topic(
            self.bootstrap_servers,
            self.topic,
            partitions=1,
            compacted=True,
            retention_s=self._retention_s,
        )
        async with reader(self.bootstrap_servers, gathered=self._gathered) as consumer:
            partition = TopicPartition(self.topic, 0)
            consumer.assign([partition])
            await consumer.seek_to_beginning(partition)
            end = (await consumer.end_offsets([partition]))[partition]
            if end == 0:
                self.replayed.set()
            while True:
                batches = await consumer.getmany(timeout_ms=1000)
                for record in batches.get(partition, []):
                    self.apply(record)
                    if record.offset + 1 >= end:
                        self.replayed.set()
