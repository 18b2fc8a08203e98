"""What the batch lane keeps on ``llm.batch``, and reading it back.

The topic is compacted and partitioned like the raw topic: what the lane holds for raw
partition p lives on partition p, so the worker that takes p over in a rebalance, or after a
crash, reads p back and goes on where the last owner stopped. Keys:

- ``job/<source>``: a job waiting for a batch (``LaneJob``), written before its raw offset
  moves on, so a job the lane took is never lost;
- ``batch/<local id>``: a batch (``LaneBatch``), written with its jobs *before* it is sent
  (no vendor id yet), then again with the vendor's id: a batch whose sending was cut short is
  looked up at the vendor by its local id before it is ever sent again, so no job is paid
  twice; the jobs' own records are deleted once their batch is written;
- ``batch/<local id>`` once more with ``finishing_at`` before its results are published: a
  worker stopped while publishing them leaves that mark, and the next owner publishes only
  the results not yet on the outcome topics (``once.published_sources``), so each is
  published once;
- a record without a value deletes its key (the batch's outcomes are published).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from aiokafka import TopicPartition
from pydantic import AliasChoices, Field, ValidationError

from streams.config.slices import KafkaCluster
from streams.kafka.admin import read_range
from streams.kafka.clients import reader
from streams.message import Message
from streams.models import OriginalRecord, RawJob, utcnow

__all__ = ["LaneBatch", "LaneJob", "PartitionState", "batch_key", "job_key", "recover", "settle"]

log = logging.getLogger(__name__)


class LaneJob(Message):
    source: str = Field(description="topic/partition/offset of its raw record")
    job: RawJob
    original: OriginalRecord = Field(description="for its dead letter, if it comes to that")
    provider: str
    model: str
    size: int = Field(description="bytes of its request, towards the batch's limit")
    # The ticket's names; the lanes of earlier versions wrote accepted_at and deadline_at.
    taken_at: datetime = Field(
        default_factory=utcnow, validation_alias=AliasChoices("taken_at", "accepted_at")
    )
    due_at: datetime = Field(validation_alias=AliasChoices("due_at", "deadline_at"))
    trace: dict[str, str] = Field(
        default_factory=dict, description="W3C trace context of the job: its outcome's trace"
    )


class LaneBatch(Message):
    local_id: str = Field(description="this service's name for it, the vendor's label")
    provider: str
    model: str
    jobs: dict[str, LaneJob] = Field(description="custom id -> job")
    intent_at: datetime = Field(default_factory=utcnow)
    vendor_id: str | None = Field(default=None, description="None: sent, not acknowledged")
    submitted_at: datetime | None = None
    polled_at: datetime | None = None
    finishing_at: datetime | None = Field(
        default=None, description="set before its results are published"
    )


@dataclass(kw_only=True)
class PartitionState:
    """What the lane holds for one raw partition."""

    pending: dict[str, LaneJob] = field(default_factory=dict)  # by source
    batches: dict[str, LaneBatch] = field(default_factory=dict)  # by local id

    def knows(self, source: str) -> bool:
        return source in self.pending or any(
            job.source == source for batch in self.batches.values() for job in batch.jobs.values()
        )


def job_key(source: str) -> str:
    return f"job/{source}"


def batch_key(local_id: str) -> str:
    return f"batch/{local_id}"


async def recover(cluster: KafkaCluster, topic: str, partition: int) -> PartitionState:
    """The partition's jobs and batches, as the last owner left them."""
    tp = TopicPartition(topic, partition)
    latest: dict[str, bytes | None] = {}
    async with reader(cluster) as consumer:
        for record in await read_range(consumer, [tp]):
            latest[(record.key or b"").decode()] = record.value
    state = PartitionState()
    for key, value in latest.items():
        if value is None:
            continue
        try:
            if key.startswith("job/"):
                job = LaneJob.model_validate_json(value)
                state.pending[job.source] = job
            elif key.startswith("batch/"):
                batch = LaneBatch.model_validate_json(value)
                state.batches[batch.local_id] = batch
        except ValidationError as exc:  # not ours: said, never acted on
            log.warning("batch lane: skipping an unreadable record %s: %s", key, exc)
    settle(state)
    return state


def settle(state: PartitionState) -> None:
    """What a worker stopped between two writes leaves, made whole: a job both waiting and
    in a batch is in the batch (its own deletion was not written); a job in two unsent
    batches (a refused batch split, the old one not yet deleted) is in the newer only."""
    newest_first = sorted(state.batches.values(), key=lambda b: b.intent_at, reverse=True)
    seen: set[str] = set()
    for batch in newest_first:
        if batch.vendor_id is None:
            batch.jobs = {k: j for k, j in batch.jobs.items() if j.source not in seen}
            if not batch.jobs:
                del state.batches[batch.local_id]
        seen |= {job.source for job in batch.jobs.values()}
    for source in seen & set(state.pending):
        del state.pending[source]
