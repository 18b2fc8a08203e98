"""The topics, declared once per app. Values travel as the models' own JSON (bytes), so the
bytes on the wire are exactly what the schemas in ``schemas/`` describe."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import faust

from streams.errors import ConfigurationError
from streams.settings import Settings


@dataclass(frozen=True, kw_only=True)
class Topics:
    raw: Any
    enriched: Any
    dead_letter: Any
    calls: Any
    control: Any
    stats_resets: Any
    cache: Any

    @classmethod
    def declare(cls, app: faust.App, settings: Settings) -> Topics:
        def topic(
            name: str, partitions: int = settings.llm_topic_partitions, **options: Any
        ) -> Any:
            # Raw bytes both ways: the enrich agent decodes (and dead-letters) by itself,
            # because Faust drops a record whose value fails to decode.
            return app.topic(
                name,
                key_serializer="raw",
                value_serializer="raw",
                partitions=partitions,
                **options,
            )

        return cls(
            raw=topic(settings.llm_topic_raw),
            enriched=topic(settings.llm_topic_enriched),
            dead_letter=topic(settings.llm_topic_dead_letter),
            # one partition: the stats tables built from it live on one worker (stats.py)
            calls=topic(settings.llm_topic_calls, partitions=1),
            stats_resets=topic(settings.llm_topic_stats_resets, partitions=1),
            # one partition: every worker applies every command in one order
            control=topic(settings.llm_topic_control, partitions=1, compacting=True),
            # one partition, followed whole by every worker (streams/cache.py)
            cache=topic(
                settings.llm_topic_cache,
                partitions=1,
                compacting=True,
                deleting=True,
                retention=settings.llm_cache_max_age_s,
            ),
        )

    async def check_partitions(self, bootstrap_servers: str) -> None:
        """Fail with a clear message when an existing topic has the wrong partition count
        (for example one left by an older version): Faust would fail later, per record."""
        wrong = []
        for topic in self.all():
            name = topic.get_topic_name()
            actual = len(await partitions_of(bootstrap_servers, name))
            if actual and actual != topic.partitions:
                wrong.append(f"{name} has {actual} partitions, needs {topic.partitions}")
        if wrong:
            raise ConfigurationError(
                "; ".join(wrong)
                + " (delete the topic, or name a new one in its LLM_TOPIC_* setting)"
            )

    def all(self) -> list[Any]:
        return [
            self.raw,
            self.enriched,
            self.dead_letter,
            self.calls,
            self.control,
            self.stats_resets,
            self.cache,
        ]


@contextlib.asynccontextmanager
async def _admin(bootstrap_servers: str) -> AsyncIterator[Any]:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        yield admin
    finally:
        await admin.close()


async def partitions_of(bootstrap_servers: str, name: str) -> list[int]:
    """The topic's partition numbers; empty when it does not exist."""
    async with _admin(bootstrap_servers) as admin:
        if name not in await admin.list_topics():
            return []
        (described,) = await admin.describe_topics([name])
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
    from aiokafka.admin import NewTopic
    from aiokafka.errors import TopicAlreadyExistsError

    async with _admin(bootstrap_servers) as admin:
        if name in await admin.list_topics():
            return
        topic = NewTopic(
            name,
            num_partitions=partitions,
            replication_factor=1,
            topic_configs=_cleanup(compacted=compacted, retention_s=retention_s),
        )
        with contextlib.suppress(TopicAlreadyExistsError):  # created meanwhile by another
            await admin.create_topics([topic])


def _cleanup(*, compacted: bool, retention_s: float | None) -> dict[str, str]:
    policies = (["compact"] if compacted else []) + (["delete"] if retention_s else [])
    configs = {"cleanup.policy": ",".join(policies)} if policies else {}
    if retention_s:
        configs["retention.ms"] = str(int(retention_s * 1000))
    return configs


class TopicFollower:
    """Reads a whole one-partition compacted topic on every worker (no consumer group), from
    the start, and keeps following it; ``replayed`` is set once everything that was there at
    start-up is applied. Subclasses say what a record does."""

    def __init__(
        self,
        *,
        bootstrap_servers: str,
        topic: str,
        retention_s: float | None = None,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self._retention_s = retention_s
        self.replayed = asyncio.Event()

    def apply(self, record: Any) -> None:
        raise NotImplementedError

    async def run(self) -> None:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        await ensure_topic(
            self.bootstrap_servers,
            self.topic,
            partitions=1,
            compacted=True,
            retention_s=self._retention_s,
        )
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap_servers, group_id=None, enable_auto_commit=False
        )
        await consumer.start()
        try:
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
        finally:
            await consumer.stop()


async def read_to_end(bootstrap_servers: str, name: str) -> list[Any]:
    """Every record of ``name`` up to its end when called (for CLIs that look back); empty
    when the topic does not exist."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    partitions = [TopicPartition(name, p) for p in await partitions_of(bootstrap_servers, name)]
    if not partitions:
        return []
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[Any] = []
        # Positions, not last offsets: compaction and transaction markers leave holes.
        remaining = {tp for tp, end in ends.items() if end > 0}
        while remaining:
            for tp, batch in (await consumer.getmany(*remaining, timeout_ms=1000)).items():
                records.extend(record for record in batch if record.offset < ends[tp])
            remaining = {tp for tp in remaining if await consumer.position(tp) < ends[tp]}
        return records
    finally:
        await consumer.stop()
