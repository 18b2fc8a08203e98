"""PublishedBefore on the real broker: which redone raw records already have an outcome."""

from __future__ import annotations

from typing import NamedTuple

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.config.slices import KafkaCluster
from streams.kafka.admin import ensure_topic
from streams.kafka.clients import producer
from streams.pipeline.once import SOURCE_HEADER, PublishedBefore, source_of

pytestmark = pytest.mark.slow


class Record(NamedTuple):
    topic: str
    partition: int
    offset: int


async def _setup(bootstrap: str, unique: str, *, committed: int) -> PublishedBefore:
    """Raw topic ``unique-raw`` with 6 records on partition 0, the group's offset at
    ``committed``, and outcomes for offsets 0, 2 and 4 (one of them in each outcome topic)
    among records without a header or with a foreign one."""
    raw, enriched, dead = f"{unique}-raw", f"{unique}-enriched", f"{unique}-dead"
    for topic in (raw, enriched, dead):
        await ensure_topic(KafkaCluster.plaintext(bootstrap), topic, partitions=2)
    async with producer(KafkaCluster.plaintext(bootstrap)) as send:
        for _ in range(6):
            await send.send_and_wait(raw, b"{}", partition=0)
        for offset, topic in ((0, enriched), (2, dead), (4, enriched)):
            header = source_of(Record(raw, 0, offset))
            await send.send_and_wait(topic, b"{}", headers=[(SOURCE_HEADER, header)])
        await send.send_and_wait(enriched, b"{}")
        await send.send_and_wait(enriched, b"{}", headers=[(SOURCE_HEADER, b"garbage")])
        await send.send_and_wait(enriched, b"{}", headers=[("other", b"x/0/3")])
    group = f"{unique}-group"
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign([TopicPartition(raw, 0)])
        await consumer.commit({TopicPartition(raw, 0): committed})
    finally:
        await consumer.stop()
    return PublishedBefore(
        cluster=KafkaCluster.plaintext(bootstrap),
        group_id=group,
        raw_topic=raw,
        outcome_topics=(enriched, dead),
        longest_look_back_s=600,
    )


async def test_redone_records_with_an_outcome_are_found(kafka_bootstrap: str, unique: str) -> None:
    published = await _setup(kafka_bootstrap, unique, committed=1)
    published.look_back([TopicPartition(f"{unique}-raw", 0)])
    found = [await published.published(Record(f"{unique}-raw", 0, n)) for n in range(1, 6)]
    # Offset 0 was committed, so it is never taken again; 2 (a dead letter) and 4 are done.
    assert found == [False, True, False, True, False]


async def test_a_partition_not_announced_is_looked_back_on_its_first_record(
    kafka_bootstrap: str, unique: str
) -> None:
    published = await _setup(kafka_bootstrap, unique, committed=2)
    assert await published.published(Record(f"{unique}-raw", 0, 4))
    assert not await published.published(Record(f"{unique}-raw", 1, 4))


async def test_nothing_to_redo_past_the_committed_end(kafka_bootstrap: str, unique: str) -> None:
    published = await _setup(kafka_bootstrap, unique, committed=6)
    assert not await published.published(Record(f"{unique}-raw", 0, 4))


async def test_a_revoked_partition_is_looked_back_again_when_it_returns(
    kafka_bootstrap: str, unique: str
) -> None:
    published = await _setup(kafka_bootstrap, unique, committed=5)
    tp = TopicPartition(f"{unique}-raw", 0)
    assert not await published.published(Record(tp.topic, 0, 4))
    async with producer(KafkaCluster.plaintext(kafka_bootstrap)) as send:
        header = source_of(Record(tp.topic, 0, 5))
        await send.send_and_wait(f"{unique}-enriched", b"{}", headers=[(SOURCE_HEADER, header)])
    published.forget([tp])
    published.look_back([tp])
    assert await published.published(Record(tp.topic, 0, 5))
