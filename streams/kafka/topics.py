"""The topics, declared once per app. Values travel as the models' own JSON (bytes), so the
bytes on the wire are exactly what the schemas in ``schemas/`` describe."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from streams.config.slices import KafkaConfig
from streams.errors import ConfigurationError
from streams.kafka.admin import partitions_of

__all__ = ["Topics"]

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
            self.stats,
            self.control,
            self.stats_resets,
            self.cache,
            self.batch,
            self.shadow,
        ]
