"""Topic administration and look-backs, for the CLIs and the topic followers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from aiokafka import TopicPartition
from aiokafka.admin import NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from streams.kafka.clients import admin, reader

__all__ = [
    "count_between",
    "ensure_topic",
    "partitions_in",
    "partitions_of",
    "partitions_when_created",
    "read_to_end",
    "read_up_to",
    "seek_to_time",
]

log = logging.getLogger(__name__)


async def partitions_of(bootstrap_servers: str, name: str) -> list[int]:
    """The topic's partition numbers; empty when it does not exist."""
    async with admin(bootstrap_servers) as client:
        return await partitions_in(client, name)


async def partitions_in(client: Any, name: str) -> list[int]:
    """``partitions_of``, asking an admin client already started."""
    if name not in await client.list_topics():
        return []
    (described,) = await client.describe_topics([name])
    return sorted(p["partition"] for p in described["partitions"])


async def ensure_topic(
    bootstrap_servers: str,
    name: str,
    *,
    partitions: int,
    compacted: bool = False,
    retention_s: float | None = None,
) -> None:
    """Create ``name`` with ``partitions`` partitions unless it exists. ``retention_s``
    also deletes records older than that (with ``compacted``: the latest per key too)."""
    async with admin(bootstrap_servers) as client:
        if name in await client.list_topics():
            return
        topic = NewTopic(
            name,
            num_partitions=partitions,
            replication_factor=1,
            topic_configs=_cleanup(compacted=compacted, retention_s=retention_s),
        )
        with contextlib.suppress(TopicAlreadyExistsError):  # created meanwhile by another
            await client.create_topics([topic])


def _cleanup(*, compacted: bool, retention_s: float | None) -> dict[str, str]:
    policies = (["compact"] if compacted else []) + (["delete"] if retention_s else [])
    configs = {"cleanup.policy": ",".join(policies)} if policies else {}
    if retention_s:
        configs["retention.ms"] = str(int(retention_s * 1000))
    return configs


async def read_to_end(
    bootstrap_servers: str,
    name: str,
    *,
    committed_only: bool = False,
    since_ms: int | None = None,
) -> list[Any]:
    """Every record of ``name`` (``since_ms``: stamped then or later) up to its end when
    called (for CLIs that look back); empty when the topic does not exist.
    ``committed_only``: none of an aborted transaction's."""
    partitions = [TopicPartition(name, p) for p in await partitions_of(bootstrap_servers, name)]
    if not partitions:
        return []
    async with reader(bootstrap_servers, committed_only=committed_only) as consumer:
        consumer.assign(partitions)
        if since_ms is None:
            await consumer.seek_to_beginning(*partitions)
        else:
            await seek_to_time(consumer, partitions, since_ms)
        return await read_up_to(consumer, await consumer.end_offsets(partitions))


async def count_between(bootstrap_servers: str, name: str, since_ms: int, until_ms: int) -> int:
    """How many records of ``name`` are stamped in [since_ms, until_ms), from offsets alone."""
    partitions = [TopicPartition(name, p) for p in await partitions_of(bootstrap_servers, name)]
    if not partitions:
        return 0
    async with reader(bootstrap_servers) as consumer:
        ends = await consumer.end_offsets(partitions)
        starts = await consumer.offsets_for_times({tp: since_ms for tp in partitions})
        stops = await consumer.offsets_for_times({tp: until_ms for tp in partitions})

        def offset(found: Any, tp: TopicPartition) -> int:
            return ends[tp] if found.get(tp) is None else int(found[tp].offset)

        return sum(offset(stops, tp) - offset(starts, tp) for tp in partitions)


async def partitions_when_created(
    bootstrap_servers: str, name: str, *, every_s: float = 1.0
) -> list[TopicPartition]:
    """The topic's partitions, once someone (the worker) has created it."""
    while not (found := await partitions_of(bootstrap_servers, name)):  # noqa: ASYNC110 (no event tells of a new topic)
        await asyncio.sleep(every_s)
    return [TopicPartition(name, p) for p in found]


async def seek_to_time(consumer: Any, partitions: list[TopicPartition], at_ms: int) -> None:
    """Each partition to its first record stamped ``at_ms`` or later (its end, where none is)."""
    found = await consumer.offsets_for_times({tp: at_ms for tp in partitions})
    for tp in partitions:
        if found.get(tp) is None:
            await consumer.seek_to_end(tp)
        else:
            consumer.seek(tp, found[tp].offset)


async def read_up_to(consumer: Any, ends: dict[TopicPartition, int]) -> list[Any]:
    """The records of an assigned, sought ``consumer`` from its positions up to ``ends``."""
    records: list[Any] = []
    # Positions, not last offsets: compaction and transaction markers leave holes.
    remaining = {tp for tp, end in ends.items() if end > await consumer.position(tp)}
    while remaining:
        for tp, batch in (await consumer.getmany(*remaining, timeout_ms=1000)).items():
            records.extend(record for record in batch if record.offset < ends[tp])
        remaining = {tp for tp in remaining if await consumer.position(tp) < ends[tp]}
    return records
