"""The topics, declared once per app. Values travel as the models' own JSON (bytes), so the
bytes on the wire are exactly what the schemas in ``schemas/`` describe."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from streams.config.slices import KafkaConfig
from streams.kafka.admin import TopicSpec

__all__ = ["Topics", "topic_specs"]

if TYPE_CHECKING:
    import faust


@dataclass(frozen=True, kw_only=True)
class Topics:
    raw: Any
    enriched: Any
    dead_letter: Any
    calls: Any
    stats: Any
    control: Any
    stats_resets: Any
    cache: Any
    batch: Any
    shadow: Any

    @classmethod
    def declare(cls, app: faust.App, config: KafkaConfig) -> Topics:
        def topic(name: str, partitions: int = config.partitions, **options: Any) -> Any:
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
            raw=topic(config.raw),
            enriched=topic(config.enriched),
            dead_letter=topic(config.dead_letter),
            # the audit trail, one event per attempt, keyed by job and spread like the jobs
            calls=topic(config.calls),
            # one partition: the stats tables built from these live on one worker
            stats=topic(config.stats, partitions=1),
            stats_resets=topic(config.stats_resets, partitions=1),
            # one partition: every worker applies every command in one order
            control=topic(config.control, partitions=1, compacting=True),
            # one partition, followed whole by every worker (the repost cache)
            cache=topic(
                config.cache,
                partitions=1,
                compacting=True,
                deleting=True,
                retention=config.cache_retention_s,
            ),
            # the batch lane's jobs and batches: raw partition p's on partition p
            batch=topic(config.batch, compacting=True),
            # candidates' answers compared with production's, keyed by job
            shadow=topic(config.shadow),
        )

    def all(self) -> list[Any]:
        return [
            self.raw,
            self.enriched,
            self.dead_letter,
            self.calls,
            self.stats,
            self.control,
            self.stats_resets,
            self.cache,
            self.batch,
            self.shadow,
        ]


def topic_specs(app: faust.App, topics: Topics) -> list[TopicSpec]:
    """Every topic a worker uses, as it must be created: its own, and Faust's (each table's
    changelog, and the leader topic its partition assignor subscribes to)."""
    changelogs = [table.changelog_topic for table in app.tables.values()]
    leader = TopicSpec(name=f"{app.conf.id}-__assignor-__leader", partitions=1)  # Faust's name
    return [*(_spec(app, topic) for topic in [*topics.all(), *changelogs]), leader]


def _spec(app: faust.App, topic: Any) -> TopicSpec:
    return TopicSpec(
        name=topic.get_topic_name(),
        partitions=topic.partitions or app.conf.topic_partitions,
        compacted=bool(topic.compacting),
        retention_s=topic.retention if topic.deleting else None,
    )
