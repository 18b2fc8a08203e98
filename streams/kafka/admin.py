"""Topic administration and look-backs, for the CLIs and the topic followers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import TopicPartition
from aiokafka.admin import NewTopic
from aiokafka.errors import TopicAlreadyExistsError, TopicAuthorizationFailedError, for_code

from streams.config.slices import KafkaCluster
from streams.errors import ClusterRefused
from streams.kafka.clients import admin, reader

__all__ = [
    "TopicSpec",
    "count_between",
    "create_topics",
    "ensure_topic",
    "partitions_in",
    "partitions_of",
    "partitions_when_created",
    "read_range",
    "read_to_end",
    "read_up_to",
    "start_range",
]

log = logging.getLogger(__name__)


async def partitions_of(cluster: KafkaCluster, name: str) -> list[int]:
    """The topic's partition numbers; empty when it does not exist."""
    async with admin(cluster) as client:
        return await partitions_in(client, name)


async def partitions_in(client: Any, name: str) -> list[int]:
    """``partitions_of``, asking an admin client already started."""
    if name not in await client.list_topics():
        return []
    (described,) = await client.describe_topics([name])
    return sorted(p["partition"] for p in described["partitions"])


@dataclass(frozen=True, kw_only=True)
class TopicSpec:
    """A topic as this service creates it. ``retention_s`` also deletes records older than
    that (with ``compacted``: the latest per key too)."""

    name: str
    partitions: int
    compacted: bool = False
    retention_s: float | None = None


async def ensure_topic(
    cluster: KafkaCluster,
    name: str,
    *,
    partitions: int,
    compacted: bool = False,
    retention_s: float | None = None,
) -> None:
    """Create ``name`` unless it exists, replicated as ``cluster.replication`` says."""
    spec = TopicSpec(name=name, partitions=partitions, compacted=compacted, retention_s=retention_s)
    async with admin(cluster) as client:
        if name in await client.list_topics():
            return
        brokers = len((await client.describe_cluster())["brokers"])
        await create_topics(client, [spec], replication=cluster.replication.for_brokers(brokers))


async def create_topics(
    client: Any, specs: Sequence[TopicSpec], *, replication: tuple[int, int]
) -> None:
    """Create the topics with (replication factor, min.insync.replicas), asking an admin
    client already started; one that exists already (made meanwhile by another) is left as
    it is. A refusal raises ClusterRefused naming the topic and why."""
    if not specs:
        return
    factor, min_insync = replication
    topics = [
        NewTopic(
            spec.name,
            num_partitions=spec.partitions,
            replication_factor=factor,
            topic_configs=_cleanup(compacted=spec.compacted, retention_s=spec.retention_s)
            | {"min.insync.replicas": str(min_insync)},
        )
        for spec in specs
    ]
    response = await client.create_topics(topics)
    for name, code, *message in response.topic_errors:
        if code in (0, TopicAlreadyExistsError.errno):
            continue
        reason = f" ({message[0]})" if message and message[0] else ""
        if code == TopicAuthorizationFailedError.errno:
            raise ClusterRefused(
                f"not authorized to create topic {name}: the principal needs Create (and Read, "
                "Write, Describe) on it, or the topic made by an operator"
            )
        raise ClusterRefused(
            f"the cluster refused to create topic {name} with {factor} replicas and "
            f"min.insync.replicas {min_insync}: {for_code(code).__name__}{reason}"
        )


def _cleanup(*, compacted: bool, retention_s: float | None) -> dict[str, str]:
    policies = (["compact"] if compacted else []) + (["delete"] if retention_s else [])
    configs = {"cleanup.policy": ",".join(policies)} if policies else {}
    if retention_s:
        configs["retention.ms"] = str(int(retention_s * 1000))
    return configs


async def read_to_end(
    cluster: KafkaCluster,
    name: str,
    *,
    committed_only: bool = False,
    since_ms: int | None = None,
) -> list[Any]:
    """Every record of ``name`` (``since_ms``: stamped then or later) up to its end when
    called (for CLIs that look back); empty when the topic does not exist.
    ``committed_only``: none of an aborted transaction's."""
    partitions = [TopicPartition(name, p) for p in await partitions_of(cluster, name)]
    if not partitions:
        return []
    async with reader(cluster, committed_only=committed_only) as consumer:
        return await read_range(consumer, partitions, since_ms=since_ms)


async def start_range(
    consumer: Any,
    partitions: list[TopicPartition],
    *,
    since_ms: int | None = None,
    last: int | None = None,
) -> dict[TopicPartition, int]:
    """Assign ``partitions`` to ``consumer`` and seek each to where a read of it starts: its
    first record, or with ``since_ms`` the first stamped then or later, or with ``last`` its
    last ``last`` records. Their end offsets now: where such a read stops."""
    consumer.assign(partitions)
    if since_ms is None and last is None:
        # Before anything else is awaited: sought after an awaited call, a newly assigned
        # partition was read as if at its end (nothing, seen with aiokafka 0.14).
        await consumer.seek_to_beginning(*partitions)
    ends: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
    if since_ms is not None:
        await _seek_to_time(consumer, partitions, since_ms, ends)
    elif last is not None:
        firsts = await consumer.beginning_offsets(partitions)
        for tp in partitions:
            consumer.seek(tp, max(firsts[tp], ends[tp] - last))
    return ends


async def read_range(
    consumer: Any,
    partitions: list[TopicPartition],
    *,
    since_ms: int | None = None,
    last: int | None = None,
) -> list[Any]:
    """The records from where ``start_range`` starts up to the end each had when called."""
    ends = await start_range(consumer, partitions, since_ms=since_ms, last=last)
    return await read_up_to(consumer, ends)


async def count_between(cluster: KafkaCluster, name: str, since_ms: int, until_ms: int) -> int:
    """How many records of ``name`` are stamped in [since_ms, until_ms), from offsets alone."""
    partitions = [TopicPartition(name, p) for p in await partitions_of(cluster, name)]
    if not partitions:
        return 0
    async with reader(cluster) as consumer:
        ends = await consumer.end_offsets(partitions)
        starts = await consumer.offsets_for_times({tp: since_ms for tp in partitions})
        stops = await consumer.offsets_for_times({tp: until_ms for tp in partitions})

        def offset(found: Any, tp: TopicPartition) -> int:
            return ends[tp] if found.get(tp) is None else int(found[tp].offset)

        return sum(offset(stops, tp) - offset(starts, tp) for tp in partitions)


async def partitions_when_created(
    cluster: KafkaCluster, name: str, *, every_s: float = 1.0
) -> list[TopicPartition]:
    """The topic's partitions, once someone (the worker) has created it."""
    while not (found := await partitions_of(cluster, name)):  # noqa: ASYNC110 (no event tells of a new topic)
        await asyncio.sleep(every_s)
    return [TopicPartition(name, p) for p in found]


async def _seek_to_time(
    consumer: Any, partitions: list[TopicPartition], at_ms: int, ends: dict[TopicPartition, int]
) -> None:
    """Each partition to its first record stamped ``at_ms`` or later (``ends``, where none
    is). Not ``seek_to_end``: aiokafka resolves that at the next fetch, past any record
    written in between (a follower started on an empty topic missed the first)."""
    found = await consumer.offsets_for_times({tp: at_ms for tp in partitions})
    for tp in partitions:
        consumer.seek(tp, ends[tp] if found.get(tp) is None else found[tp].offset)


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
