"""Jobs in and out per minute, and the group's lag, read from Kafka itself.

The raw, enriched and dead-letter topics are written without transactions, so their offsets
count records: the records of a minute are the difference of the offsets at its two ends
(``offsets_for_times``), and the lag is the raw topic's end offsets less the group's commits.
Every worker asks the broker, so every worker answers the same for the whole group, and
nothing is counted twice. Offsets at minutes long past do not change: they are kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from streams.config.slices import KafkaCluster
from streams.errors import StreamsError
from streams.kafka.admin import partitions_in
from streams.kafka.clients import admin, reader

__all__ = ["FlowTopics", "FlowUnavailable", "JobFlow"]

# A record stamped just before a minute's end may still be on its way for this long.
SETTLED_MS = 10_000
MINUTE_MS = 60_000


class FlowUnavailable(StreamsError):
    """The broker did not answer."""


@dataclass(frozen=True, kw_only=True)
class FlowTopics:
    raw: str
    enriched: str
    dead_letter: str
    group_id: str  # the consumer group reading ``raw``


@dataclass(frozen=True, kw_only=True)
class Flow:
    totals: dict[str, int]  # topic role -> records ever written
    per_minute: list[dict[str, Any]]  # {"minute": epoch minute, role: count, ...}, oldest first
    lag: dict[int, int]  # raw partition -> records not yet committed by the group


class JobFlow:
    def __init__(
        self,
        *,
        cluster: KafkaCluster,
        topics: FlowTopics,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cluster = cluster
        self.roles = {
            "in": topics.raw,
            "enriched": topics.enriched,
            "dead_lettered": topics.dead_letter,
        }
        self.topics = topics
        self._clock = clock
        self._consumer: AIOKafkaConsumer | None = None
        self._admin: AIOKafkaAdminClient | None = None
        self._clients_held = contextlib.AsyncExitStack()
        self._lock = asyncio.Lock()
        self._partitions_of: dict[str, list[TopicPartition]] = {}
        self._settled: dict[tuple[str, int], int] = {}  # (topic, boundary ms) -> offsets summed

    async def read(self, *, minutes: int) -> Flow:
        async with self._lock:
            try:
                return await self._read(minutes)
            except KafkaError as exc:
                await self.close()  # made anew on the next read
                raise FlowUnavailable(f"the broker did not answer: {exc}") from exc

    async def close(self) -> None:
        self._consumer = self._admin = None
        await self._clients_held.aclose()

    async def _read(self, minutes: int) -> Flow:
        consumer, admin = await self._clients()
        now_ms = int(self._clock() * 1000)
        first = now_ms // MINUTE_MS - minutes + 1
        boundaries = [(first + i) * MINUTE_MS for i in range(minutes)]
        counts: dict[str, list[int]] = {}
        totals: dict[str, int] = {}
        ends_by_role: dict[str, dict[TopicPartition, int]] = {}
        for role, topic in self.roles.items():
            partitions = await self._partitions(admin, topic)
            ends = await consumer.end_offsets(partitions) if partitions else {}
            ends_by_role[role] = ends
            totals[role] = sum(ends.values())
            at = [await self._offsets_at(consumer, partitions, ends, b, now_ms) for b in boundaries]
            at.append(totals[role])
            counts[role] = [later - earlier for earlier, later in itertools.pairwise(at)]
        per_minute = [
            {"minute": first + i, **{role: counts[role][i] for role in self.roles}}
            for i in range(minutes)
        ]
        committed = await admin.list_consumer_group_offsets(self.topics.group_id)
        lag = {
            tp.partition: max(0, end - _committed(committed.get(tp)))
            for tp, end in ends_by_role["in"].items()
        }
        self._forget_before(boundaries[0])
        return Flow(totals=totals, per_minute=per_minute, lag=lag)

    async def _offsets_at(
        self,
        consumer: AIOKafkaConsumer,
        partitions: list[TopicPartition],
        ends: dict[TopicPartition, int],
        boundary_ms: int,
        now_ms: int,
    ) -> int:
        """The offsets summed over partitions where records stamped ``boundary_ms`` or later
        begin (the end, where none are)."""
        key = (partitions[0].topic if partitions else "", boundary_ms)
        if key in self._settled:
            return self._settled[key]
        found = await consumer.offsets_for_times({tp: boundary_ms for tp in partitions})
        total = sum(ends[tp] if found.get(tp) is None else found[tp].offset for tp in partitions)
        if boundary_ms < now_ms - SETTLED_MS:
            self._settled[key] = total
        return total

    async def _partitions(self, admin: AIOKafkaAdminClient, topic: str) -> list[TopicPartition]:
        if not self._partitions_of.get(topic):  # asked again until the topic exists
            self._partitions_of[topic] = [
                TopicPartition(topic, p) for p in await partitions_in(admin, topic)
            ]
        return self._partitions_of[topic]

    def _forget_before(self, boundary_ms: int) -> None:
        for key in [k for k in self._settled if k[1] < boundary_ms]:
            del self._settled[key]

    async def _clients(self) -> tuple[AIOKafkaConsumer, AIOKafkaAdminClient]:
        """Made on first use and kept: a dashboard asks every few seconds."""
        if self._consumer is None or self._admin is None:
            held = self._clients_held
            self._consumer = await held.enter_async_context(reader(self.cluster))
            self._admin = await held.enter_async_context(admin(self.cluster))
        return self._consumer, self._admin


def _committed(offset: Any) -> int:
    return 0 if offset is None or offset.offset < 0 else int(offset.offset)
