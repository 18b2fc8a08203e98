"""Jobs per minute and the group's lag, counted from a real broker's offsets."""

from __future__ import annotations

import json
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streams.config.slices import KafkaCluster
from streams.kafka.admin import ensure_topic
from streams.observe.dead_letters import DeadLetterFollower
from streams.observe.flow import FlowTopics, JobFlow


async def _write(bootstrap: str, topic: str, stamps: list[tuple[int, int]]) -> None:
    """(partition, timestamp ms) per record."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for partition, at_ms in stamps:
            await producer.send_and_wait(topic, b"{}", partition=partition, timestamp_ms=at_ms)
    finally:
        await producer.stop()


async def test_records_are_counted_in_the_minute_they_were_written_and_lag_is_uncommitted(
    kafka_bootstrap: str, unique: str
) -> None:
    topics = FlowTopics(
        raw=f"{unique}.raw",
        enriched=f"{unique}.enriched",
        dead_letter=f"{unique}.dead-letter",
        group_id=unique,
    )
    for topic in (topics.raw, topics.enriched, topics.dead_letter):
        await ensure_topic(KafkaCluster.plaintext(kafka_bootstrap), topic, partitions=2)
    minute = int(time.time() // 60) * 60_000
    three_ago, one_ago, now = minute - 180_000, minute - 60_000, minute + 1
    await _write(
        kafka_bootstrap, topics.raw, [(0, three_ago), (1, three_ago), (0, one_ago), (1, now)]
    )
    await _write(kafka_bootstrap, topics.enriched, [(1, one_ago), (0, now)])
    await _write(kafka_bootstrap, topics.dead_letter, [(0, now)])
    group = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=unique)
    await group.start()
    try:  # the group has taken the first record of partition 0 and both of partition 1
        taken = {TopicPartition(topics.raw, 0): 1, TopicPartition(topics.raw, 1): 2}
        group.assign(list(taken))
        await group.commit(taken)
    finally:
        await group.stop()

    flow = JobFlow(
        cluster=KafkaCluster.plaintext(kafka_bootstrap),
        topics=topics,
        clock=lambda: (now + 5) / 1000,
    )
    try:
        for _ in range(2):  # the second read takes the minutes long past from what it kept
            read = await flow.read(minutes=4)
            assert read.totals == {"in": 4, "enriched": 2, "dead_lettered": 1}
            assert [(m["in"], m["enriched"], m["dead_lettered"]) for m in read.per_minute] == [
                (2, 0, 0),
                (0, 0, 0),
                (1, 1, 0),
                (1, 1, 1),
            ]
            assert read.lag == {0: 1, 1: 0}
    finally:
        await flow.close()


def test_dead_letters_are_counted_by_stage_and_minute_with_the_latest_reasons() -> None:
    follower = DeadLetterFollower(
        cluster=KafkaCluster.plaintext("unused"), topic="unused", clock=lambda: 7200.0
    )

    def letter(stage: str, message: str) -> bytes:
        error = {"type": "E", "message": message}
        original = {"anything": "ignored"}
        return json.dumps(
            {"job_id": "j", "stage": stage, "error": error, "original": original}
        ).encode()

    follower.apply(letter("decode", "not JSON"), timestamp_ms=7_100_000)
    follower.apply(letter("enrich", "all providers failed"), timestamp_ms=7_190_000)
    follower.apply(letter("enrich", "again"), timestamp_ms=7_195_000)
    follower.apply(letter("enrich", "an hour ago"), timestamp_ms=3_000_000)
    follower.apply(b"not a dead letter", timestamp_ms=7_195_000)
    assert follower.per_minute() == {118: {"decode": 1}, 119: {"enrich": 2}}
    assert [r["message"] for r in follower.recent()] == [
        "again",
        "all providers failed",
        "not JSON",
    ]
