"""The topics, declared once per app. Values travel as the models' own JSON (bytes), so the
bytes on the wire are exactly what the schemas in ``schemas/`` describe."""

from __future__ import annotations

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
    bootstrap_servers: str, name: str, *, partitions: int, compacted: bool = False
) -> None:
    """Create ``name`` with ``partitions`` partitions unless it exists."""
    from aiokafka.admin import NewTopic
    from aiokafka.errors import TopicAlreadyExistsError

    async with _admin(bootstrap_servers) as admin:
        if name in await admin.list_topics():
            return
        topic = NewTopic(
            name,
            num_partitions=partitions,
            replication_factor=1,
            topic_configs={"cleanup.policy": "compact"} if compacted else {},
        )
        with contextlib.suppress(TopicAlreadyExistsError):  # created meanwhile by another
            await admin.create_topics([topic])


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
