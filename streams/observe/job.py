"""One job's story, read from the topics by its key, so any worker answers for the group.

Every topic a job touches is keyed by its id (the raw record, by the producers' contract),
so its records sit in one partition of each, the one Kafka's default partitioner picks for
the key. Those partitions are read from ``look_back_s`` ago to their ends: the raw record(s)
(a replay adds one), its provider calls, its outcome(s). Where it is now follows from the
newest raw record: the outcome that names it as its source; else the batch lane holding it;
else, from the workers' committed offset of its partition, in flight (within the records a
worker takes at once) or waiting.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar

from aiokafka import TopicPartition
from aiokafka.partitioner import murmur2
from pydantic import Field, ValidationError

from streams.config.slices import KafkaCluster
from streams.kafka.admin import partitions_in, partitions_of, read_range
from streams.kafka.clients import admin, reader
from streams.kafka.framing import decoded
from streams.message import Message
from streams.models import DeadLetter, EnrichedJobRecord, ProviderCall
from streams.pipeline.batch.records import PartitionState, recover
from streams.pipeline.once import SOURCE_HEADER
from streams.telemetry.propagation import trace_id_of, trace_of

__all__ = [
    "DEFAULT_LOOK_BACK_S",
    "JobEvent",
    "JobLookup",
    "JobReport",
    "JobTopics",
    "key_partition",
]

State = Literal["waiting", "in_flight", "batch_lane", "enriched", "dead_lettered", "answered"]
DEFAULT_LOOK_BACK_S = 7 * 24 * 3600.0
M = TypeVar("M", bound=Message)


class JobEvent(Message):
    at: datetime
    event: str


class JobReport(Message):
    job_id: str
    tenant: str | None = Field(description="whose job it is, once its calls or outcome say")
    state: State
    detail: str = Field(description="where it is, in words")
    trace_id: str | None = Field(description="the W3C trace id its records carry")
    lineage: list[str] = Field(description="its records, oldest first: topic/partition/offset")
    attempts: list[ProviderCall] = Field(description="its provider calls, oldest first")
    timeline: list[JobEvent] = Field(description="oldest first")
    result: EnrichedJobRecord | None = None
    dead_letter: DeadLetter | None = None


@dataclass(frozen=True, kw_only=True)
class JobTopics:
    raw: str
    calls: str
    enriched: str
    dead_letter: str
    batch: str
    group_id: str  # the workers' consumer group


def key_partition(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives ``key`` (murmur2, as the Java client)."""
    hashed: int = murmur2(key.encode())
    return (hashed & 0x7FFFFFFF) % partitions


class JobLookup:
    def __init__(
        self,
        *,
        cluster: KafkaCluster,
        topics: JobTopics,
        window: int,
        look_back_s: float = DEFAULT_LOOK_BACK_S,
    ) -> None:
        self.cluster = cluster
        self.topics = topics
        self.window = window  # records a worker works on at once (LLM_WORKER_CONCURRENCY)
        self.look_back_s = look_back_s

    async def find(self, job_id: str) -> JobReport | None:
        """The job's report; None when no topic has a record of it."""
        t = self.topics
        found = await self._keyed(job_id, [t.raw, t.calls, t.enriched, t.dead_letter])
        if not any(found.values()):
            return None
        story = _Story(
            job_id=job_id,
            raw=found[t.raw],
            calls=found[t.calls],
            enriched=found[t.enriched],
            letters=found[t.dead_letter],
        )
        newest = story.raw[-1] if story.raw else None
        ending = story.ending_of(newest)
        if ending is not None:
            return story.report(ending.state, ending.said, ending)
        if newest is not None:
            return story.report(*await self._not_ended(newest))
        # calls only: a caller's job, answered over HTTP
        return story.report("answered", "through POST /process: its answer went to its caller")

    async def _keyed(self, key: str, topics: Sequence[str]) -> dict[str, list[Any]]:
        """Per topic, its records keyed ``key`` within the look-back, oldest first: the
        key's partition of each, read by one consumer."""
        async with admin(self.cluster) as client:
            counts = {topic: len(await partitions_in(client, topic)) for topic in topics}
        partitions = [TopicPartition(t, key_partition(key, n)) for t, n in counts.items() if n]
        records: list[Any] = []
        if partitions:
            since_ms = int((time.time() - self.look_back_s) * 1000)
            async with reader(self.cluster, committed_only=True) as consumer:
                records = await read_range(consumer, partitions, since_ms=since_ms)
        wanted = key.encode()
        return {t: [r for r in records if r.topic == t and r.key == wanted] for t in topics}

    async def _not_ended(self, record: Any) -> tuple[State, str]:
        if await partitions_of(self.cluster, self.topics.batch):  # a lane ever ran
            lane = await recover(self.cluster, self.topics.batch, record.partition)
            if (where := _in_lane(lane, _source(record))) is not None:
                return "batch_lane", where
        committed, group_state = await self._group(record)
        ahead = record.offset - committed
        if group_state in ("Empty", "Dead"):
            return "waiting", f"no worker of group {self.topics.group_id} is running"
        # A worker takes the records after its partition's last commit, up to its window:
        # within the window the job is taken (or finished, and its outcome on its way).
        if ahead < self.window:
            return "in_flight", f"taken: {ahead} records of its partition before it not done"
        return "waiting", f"{ahead} records of its partition before it are not yet done"

    async def _group(self, record: Any) -> tuple[int, str]:
        """The workers' committed offset of the record's partition, and their group's state
        (Kafka's: Stable, PreparingRebalance, Empty, ...)."""
        tp = TopicPartition(record.topic, record.partition)
        group_id = self.topics.group_id
        async with admin(self.cluster) as client:
            offsets = await client.list_consumer_group_offsets(group_id)
            (described,) = await client.describe_consumer_groups([group_id])
        committed = offsets.get(tp)
        # DescribeGroups: (error code, group id, state, protocol type, protocol, members, ...)
        state = str(described.groups[0][2])
        return 0 if committed is None or committed.offset < 0 else int(committed.offset), state


@dataclass(frozen=True, kw_only=True)
class _Ending:
    """An outcome record of the job, parsed."""

    record: Any
    state: State
    said: str
    result: EnrichedJobRecord | None = None
    letter: DeadLetter | None = None


class _Story:
    """What the records say, parsed once."""

    def __init__(
        self,
        *,
        job_id: str,
        raw: Sequence[Any],
        calls: Sequence[Any],
        enriched: Sequence[Any],
        letters: Sequence[Any],
    ) -> None:
        self.job_id = job_id
        self.raw = raw
        self.attempts = [c for c in (_parsed(ProviderCall, r) for r in calls) if c is not None]
        endings = [_enriched(r, e) for r in enriched if (e := _parsed(EnrichedJobRecord, r))]
        endings += [_dead_lettered(r, d) for r in letters if (d := _parsed(DeadLetter, r))]
        self.endings = sorted(endings, key=lambda e: e.record.timestamp)

    def ending_of(self, newest: Any | None) -> _Ending | None:
        """The outcome of the newest raw record (without one, the newest outcome)."""
        wanted = _source(newest) if newest is not None else None
        for ending in reversed(self.endings):
            if wanted is None or _header(ending.record, SOURCE_HEADER) == wanted:
                return ending
        return None

    def report(self, state: State, detail: str, ending: _Ending | None = None) -> JobReport:
        records = sorted([*self.raw, *(e.record for e in self.endings)], key=lambda r: r.timestamp)
        traces = [t for r in reversed(records) if (t := trace_id_of(trace_of(r.headers)))]
        letter = ending.letter if ending else None
        tenants = [
            *([ending.result.job.tenant] if ending and ending.result else []),
            *([letter.tenant] if letter and letter.tenant else []),
            *(call.tenant for call in reversed(self.attempts)),
        ]
        return JobReport(
            job_id=self.job_id,
            tenant=tenants[0] if tenants else None,
            state=state,
            detail=detail,
            trace_id=traces[0] if traces else None,
            lineage=[_lineage(r) for r in records],
            attempts=self.attempts,
            timeline=self._timeline(),
            result=ending.result if ending else None,
            dead_letter=ending.letter if ending else None,
        )

    def _timeline(self) -> list[JobEvent]:
        # (when, rank, what): records are stamped to the millisecond and calls to the
        # microsecond, so within one millisecond the order is the job's own: published, a
        # call begun, ended, then the outcome it led to.
        events = [(_at(r), 0, f"published to {_source(r)}") for r in self.raw]
        for call in self.attempts:
            began = call.at - timedelta(milliseconds=call.latency_ms)
            events += [(began, 1, _call_started(call)), (call.at, 2, _call_ended(call))]
        events += [(_at(e.record), 3, e.said) for e in self.endings]
        events.sort(key=lambda e: (e[0].replace(microsecond=e[0].microsecond // 1000 * 1000), e[1]))
        return [JobEvent(at=at, event=what) for at, _, what in events]


def _enriched(record: Any, job: EnrichedJobRecord) -> _Ending:
    how = "from the cache" if job.cached else f"by {job.provider} {job.model}"
    said = f"enriched {how}, on {_source(record)}"
    return _Ending(record=record, state="enriched", said=said, result=job)


def _dead_lettered(record: Any, letter: DeadLetter) -> _Ending:
    said = f"dead-lettered at {letter.stage}: {letter.error.type}: {letter.error.message}"
    return _Ending(record=record, state="dead_lettered", said=said, letter=letter)


def _call_started(call: ProviderCall) -> str:
    lane = f" ({call.lane})" if call.lane != "live" else ""  # batch, or a shadow candidate
    return f"call {call.attempt} to {call.provider} {call.model}{lane}"


def _call_ended(call: ProviderCall) -> str:
    said = f"{call.provider}: {call.outcome} after {call.latency_ms:.0f} ms"
    if call.error_type:
        said += f" ({call.error_type})"
    usage = call.usage
    return f"{said}, {usage.input_tokens}+{usage.output_tokens} tokens, ${usage.cost_usd:.6f}"


def _in_lane(state: PartitionState, source: str) -> str | None:
    if (job := state.pending.get(source)) is not None:
        return f"in the batch lane, waiting for a {job.provider} batch"
    for batch in state.batches.values():
        if any(job.source == source for job in batch.jobs.values()):
            at = batch.vendor_id or "not yet acknowledged"
            return f"in a {batch.provider} batch ({at})"
    return None


def _parsed(model: type[M], record: Any) -> M | None:
    try:
        return decoded(model, record.value)
    except ValidationError:
        return None


def _source(record: Any) -> str:
    return f"{record.topic}/{record.partition}/{record.offset}"


def _lineage(record: Any) -> str:
    came_from = _header(record, SOURCE_HEADER)
    return _source(record) + (f" (from {came_from})" if came_from else "")


def _header(record: Any, name: str) -> str | None:
    for key, value in record.headers or ():
        if key == name and value is not None:
            return bytes(value).decode()
    return None


def _at(record: Any) -> datetime:
    return datetime.fromtimestamp(record.timestamp / 1000, UTC)
