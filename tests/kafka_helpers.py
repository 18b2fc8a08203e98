"""Plain aiokafka helpers for checking what the service did on the broker. Each takes the
broker's address (a plaintext broker) or a ``KafkaCluster`` (the SASL_SSL cluster)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from streams.config.runtime import RuntimeConfig
from streams.config.settings import Settings
from streams.config.slices import KafkaCluster
from streams.control.commands import publish
from streams.kafka.admin import partitions_of
from streams.kafka.security import client_options
from streams.models import ControlCommand

Target = str | KafkaCluster


def cluster_of(target: Target) -> KafkaCluster:
    return KafkaCluster.plaintext(target) if isinstance(target, str) else target


def _options(target: Target) -> dict[str, Any]:
    return client_options(cluster_of(target))


async def produce(
    bootstrap: Target,
    topic: str,
    records: Sequence[tuple[bytes | None, bytes]],
    *,
    max_request_size: int = 1024 * 1024,
    partition: int | None = None,
    headers: list[tuple[str, bytes]] | None = None,
) -> None:
    producer = AIOKafkaProducer(
        **_options(bootstrap), acks="all", max_request_size=max_request_size
    )
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(
                topic, value, key=key, partition=partition, headers=headers
            )
    finally:
        await producer.stop()


def job_record(job_id: str, **fields: Any) -> tuple[bytes, bytes]:
    job = {
        "job_id": job_id,
        "title": f"Senior Python Engineer {job_id}",
        "description": f"Job {job_id}: 5+ years Python and Kafka. Remote (EU). EUR 80-95k.",
    }
    job.update(fields)
    return job_id.encode(), json.dumps(job).encode()


async def consume(
    bootstrap: Target, topic: str, *, count: int, timeout_s: float = 60.0
) -> list[Any]:
    """The first ``count`` records of ``topic`` (all partitions), or fail after the timeout.
    Waits a moment longer to catch records beyond ``count`` (duplicates, strays)."""
    consumer = AIOKafkaConsumer(
        topic, **_options(bootstrap), group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    records: list[Any] = []
    try:
        deadline = time.monotonic() + timeout_s
        while len(records) < count and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for batch in batches.values():
                records.extend(batch)
        extra_until = time.monotonic() + 1.0
        while time.monotonic() < extra_until:
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                records.extend(batch)
    finally:
        await consumer.stop()
    assert len(records) >= count, f"{topic}: {len(records)} records, expected {count}"
    return records


async def committed(bootstrap: Target, group: str, topic: str) -> dict[int, int]:
    """The group's committed offsets on ``topic``, by partition."""
    admin = AIOKafkaAdminClient(**_options(bootstrap))
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic}


async def end_offsets(bootstrap: Target, topic: str) -> dict[int, int]:
    consumer = AIOKafkaConsumer(**_options(bootstrap), group_id=None)
    await consumer.start()
    try:
        partitions = await partitions_of(cluster_of(bootstrap), topic)
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in partitions])
    finally:
        await consumer.stop()
    return {tp.partition: offset for tp, offset in ends.items()}


async def send_command(settings: Settings, command: ControlCommand) -> None:
    """Publish a control command as the CLI does."""
    await publish(
        command,
        config=RuntimeConfig(settings),
        cluster=settings.cluster(),
        topic=settings.llm_topic_control,
    )


async def commit_rounds(app: Any, rounds: int, *, timeout_s: float = 30.0) -> None:
    """Return once the in-process worker ``app`` (a StreamsApp) has run ``rounds`` more of
    its periodic commits: what a test waits for before asserting that nothing was
    committed, instead of a fixed sleep."""
    consumer = app.faust.consumer
    original = consumer.commit
    done = asyncio.Event()
    seen = 0

    async def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal seen
        result = await original(*args, **kwargs)
        seen += 1
        if seen >= rounds:
            done.set()
        return result

    consumer.commit = counted
    try:
        async with asyncio.timeout(timeout_s):
            await done.wait()
    finally:
        consumer.commit = original
