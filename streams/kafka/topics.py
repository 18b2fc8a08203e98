"""The topics, each declared once: its name, the model its records are, how it is kept, and
the schema id its records are framed with when a Schema Registry is configured. Values
travel as the models' own JSON (bytes), so the bytes on the wire are exactly what the
schemas in ``schemas/`` describe; every writer encodes with its topic, and every reader of
a data topic decodes with it, framed or not.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel

from streams.config.slices import KafkaConfig
from streams.kafka.admin import TopicSpec
from streams.kafka.framing import decoded, frame
from streams.kafka.publisher import Outgoing
from streams.models import (
    ControlCommand,
    DeadLetter,
    EnrichedJobRecord,
    ProviderCall,
    RawJob,
    SentCall,
    ShadowResult,
)

__all__ = [
    "Topic",
    "Topics",
    "dead_letter_topic",
    "enriched_topic",
    "faust_topic",
    "raw_topic",
    "topic_specs",
]

if TYPE_CHECKING:
    import faust

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True, kw_only=True)
class Topic(Generic[M]):
    name: str
    model: type[M]
    partitions: int | None = None  # None: a topic this writer does not make
    compacted: bool = False
    retention_s: float | None = None  # records older than this are deleted
    contract: str | None = None  # the published schema its records follow, if others read it
    schema_id: int | None = None  # the Schema Registry's id of it: records are framed
    omit_none: bool = False  # absent optional fields are left out, not written as null

    def encode(self, record: M) -> bytes:
        payload = record.model_dump_json(exclude_none=self.omit_none).encode()
        return payload if self.schema_id is None else frame(self.schema_id, payload)

    def decode(self, value: bytes | None) -> M:
        """A record's value, framed or not; pydantic's ValidationError if it is not one."""
        return decoded(self.model, value)

    def record(
        self,
        key: str | None,
        record: M | None,
        *,
        headers: Mapping[str, bytes] | None = None,
        partition: int | None = None,
    ) -> Outgoing:
        """A record to publish (None: a tombstone for ``key``)."""
        value = None if record is None else self.encode(record)
        return Outgoing(self.name, key, value, headers, partition)

    def framed_with(self, schema_ids: Mapping[str, int]) -> Topic[M]:
        return replace(self, schema_id=schema_ids.get(self.name))

    def spec(self) -> TopicSpec:
        if self.partitions is None:
            raise ValueError(f"topic {self.name}: no partition count to create it with")
        return TopicSpec(
            name=self.name,
            partitions=self.partitions,
            compacted=self.compacted,
            retention_s=self.retention_s,
        )


# The topics a job's producers and consumers use too (``streams.client``).


def raw_topic(name: str, *, partitions: int | None = None) -> Topic[RawJob]:
    return Topic(name=name, model=RawJob, partitions=partitions, contract="raw-job", omit_none=True)


def enriched_topic(name: str, *, partitions: int | None = None) -> Topic[EnrichedJobRecord]:
    return Topic(name=name, model=EnrichedJobRecord, partitions=partitions, contract="enriched-job")


def dead_letter_topic(name: str, *, partitions: int | None = None) -> Topic[DeadLetter]:
    return Topic(name=name, model=DeadLetter, partitions=partitions, contract="dead-letter")


@dataclass(frozen=True, kw_only=True)
class Topics:
    raw: Topic[RawJob]
    enriched: Topic[EnrichedJobRecord]
    dead_letter: Topic[DeadLetter]
    calls: Topic[ProviderCall]  # the audit trail, one event per attempt, spread like the jobs
    shadow: Topic[ShadowResult]  # candidates' answers compared with production's, by job
    # The service's own topics below: records of several kinds (their owners decode them).
    stats: Topic[BaseModel]  # one partition: the stats tables live on one worker
    stats_resets: Topic[BaseModel]
    control: Topic[ControlCommand]  # one partition: every worker applies them in one order
    cache: Topic[BaseModel]  # one partition, followed whole by every worker
    batch: Topic[BaseModel]  # the batch lane's jobs and batches: raw partition p's on p
    waiting: Topic[BaseModel]  # the waiting lane's jobs: raw partition p's on p
    sent: Topic[SentCall]  # calls about to leave, by call id: a job's on its llm.calls partition

    @classmethod
    def of(cls, config: KafkaConfig, *, schema_ids: Mapping[str, int] | None = None) -> Topics:
        """Every topic of ``config``; with ``schema_ids`` (a Schema Registry's, by topic),
        the records of those topics framed with them."""
        n = config.partitions
        topics = cls(
            raw=raw_topic(config.raw, partitions=n),
            enriched=enriched_topic(config.enriched, partitions=n),
            dead_letter=dead_letter_topic(config.dead_letter, partitions=n),
            calls=Topic(
                name=config.calls, model=ProviderCall, partitions=n, contract="provider-call"
            ),
            shadow=Topic(
                name=config.shadow, model=ShadowResult, partitions=n, contract="shadow-result"
            ),
            stats=Topic(name=config.stats, model=BaseModel, partitions=1),
            stats_resets=Topic(name=config.stats_resets, model=BaseModel, partitions=1),
            control=Topic(name=config.control, model=ControlCommand, partitions=1, compacted=True),
            cache=Topic(
                name=config.cache,
                model=BaseModel,
                partitions=1,
                compacted=True,
                retention_s=config.cache_retention_s,
            ),
            batch=Topic(name=config.batch, model=BaseModel, partitions=n, compacted=True),
            waiting=Topic(name=config.waiting, model=BaseModel, partitions=n, compacted=True),
            sent=Topic(name=config.sent, model=SentCall, partitions=n, compacted=True),
        )
        return topics.framed_with(schema_ids) if schema_ids else topics

    def framed_with(self, schema_ids: Mapping[str, int]) -> Topics:
        return Topics(**{name: topic.framed_with(schema_ids) for name, topic in self._items()})

    def all(self) -> list[Topic[Any]]:
        return [topic for _, topic in self._items()]

    def _items(self) -> list[tuple[str, Topic[Any]]]:
        return [(name, getattr(self, name)) for name in self.__dataclass_fields__]


def faust_topic(app: faust.App, *topics: Topic[Any]) -> Any:
    """The topics as one Faust topic an agent reads. Raw bytes both ways: the agents decode
    (and dead-letter) by themselves, because Faust drops a record whose value fails to
    decode."""
    return app.topic(
        *(t.name for t in topics),
        key_serializer="raw",
        value_serializer="raw",
        partitions=topics[0].partitions,
    )


def topic_specs(app: faust.App, topics: Topics) -> list[TopicSpec]:
    """Every topic a worker uses, as it must be created: its own, and Faust's (each table's
    changelog, and the leader topic its partition assignor subscribes to)."""
    changelogs = [_changelog(app, table.changelog_topic) for table in app.tables.values()]
    leader = TopicSpec(name=f"{app.conf.id}-__assignor-__leader", partitions=1)  # Faust's name
    return [*(topic.spec() for topic in topics.all()), *changelogs, leader]


def _changelog(app: faust.App, topic: Any) -> TopicSpec:
    return TopicSpec(
        name=topic.get_topic_name(),
        partitions=topic.partitions or app.conf.topic_partitions,
        compacted=bool(topic.compacting),
        retention_s=topic.retention if topic.deleting else None,
    )
