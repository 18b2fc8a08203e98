"""Topic administration and look-backs on the real broker: a range read from the start, from
a time, or of the last records, up to the end each partition had when asked."""

from __future__ import annotations

import asyncio
import time

from aiokafka import TopicPartition

from streams.config.slices import KafkaCluster
from streams.kafka.admin import ensure_topic, partitions_of, read_range, read_to_end
from streams.kafka.clients import producer, reader


async def test_a_range_starts_where_asked_and_stops_at_the_end_when_asked(
    kafka_bootstrap: str, unique: str
) -> None:
    cluster = KafkaCluster.plaintext(kafka_bootstrap)
    topic = f"{unique}.range"
    await ensure_topic(cluster, topic, partitions=2)
    async with producer(cluster) as send:
        for n in range(6):
            await send.send_and_wait(topic, b"%d" % n, partition=n % 2)
        # Stamped in whole milliseconds: a pause either side keeps every record off middle_ms.
        await asyncio.sleep(0.01)
        middle_ms = int(time.time() * 1000)
        await asyncio.sleep(0.01)
        for n in range(6, 10):
            await send.send_and_wait(topic, b"%d" % n, partition=n % 2)
    partitions = [TopicPartition(topic, p) for p in await partitions_of(cluster, topic)]

    async def values(**where: int) -> set[bytes]:
        async with reader(cluster) as consumer:
            return {r.value for r in await read_range(consumer, partitions, **where)}

    assert await values() == {b"%d" % n for n in range(10)}
    assert await values(since_ms=middle_ms) == {b"6", b"7", b"8", b"9"}
    assert await values(last=1) == {b"8", b"9"}
    assert len(await read_to_end(cluster, topic)) == 10
    assert await read_to_end(cluster, f"{unique}.absent") == []
