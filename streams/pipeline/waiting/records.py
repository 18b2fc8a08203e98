"""What the waiting lane keeps on ``llm.waiting``, and reading it back.

Partitioned like the raw topic and compacted: the jobs waiting for raw partition p live on
partition p under ``wait/<source>``, written before the raw offset moves on (so a job the lane
took is never lost) and deleted (a record without a value) once its outcome is published. The
worker that takes p over, after a rebalance or a crash, reads p back and releases them in the
order they were taken; one whose outcome was published before its deletion was written is
dropped, not paid again.
"""

from __future__ import annotations

import logging
from datetime import datetime

from aiokafka import TopicPartition
from pydantic import Field, ValidationError

from streams.config.slices import KafkaCluster
from streams.kafka.admin import read_range
from streams.kafka.clients import reader
from streams.message import Message
from streams.models import OriginalRecord, RawJob, utcnow

__all__ = ["WaitingJob", "recover", "waiting_key"]

log = logging.getLogger(__name__)


class WaitingJob(Message):
    source: str = Field(description="topic/partition/offset of its raw record")
    job: RawJob
    original: OriginalRecord = Field(description="for its dead letter, if it comes to that")
    reason: str = Field(description="why it waits: over budget, or above its share")
    taken_at: datetime = Field(default_factory=utcnow)
    trace: dict[str, str] = Field(
        default_factory=dict, description="W3C trace context of the job: its outcome's trace"
    )


def waiting_key(source: str) -> str:
    return f"wait/{source}"


async def recover(cluster: KafkaCluster, topic: str, partition: int) -> list[WaitingJob]:
    """The partition's waiting jobs as the last owner left them, oldest first."""
    latest: dict[str, bytes | None] = {}
    async with reader(cluster) as consumer:
        for record in await read_range(consumer, [TopicPartition(topic, partition)]):
            key = (record.key or b"").decode()
            latest.pop(key, None)  # in the order of its last write
            latest[key] = record.value
    jobs = []
    for key, value in latest.items():
        if value is None:
            continue
        try:
            jobs.append(WaitingJob.model_validate_json(value))
        except ValidationError as exc:  # not ours: said, never acted on
            log.warning("waiting lane: skipping an unreadable record %s: %s", key, exc)
    return sorted(jobs, key=lambda job: job.taken_at)
