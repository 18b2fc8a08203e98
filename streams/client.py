"""A Python client for the people who publish jobs and consume results.

    async with JobsClient(bootstrap="localhost:9092") as jobs:  # or cluster=settings.cluster()
        await jobs.publish([RawJob(job_id="j1", title="...", description="...")])
        enriched = await jobs.enrich(RawJob(...), timeout=60)  # request and reply
        async with contextlib.aclosing(jobs.results(group="my-consumer")) as results:
            async for result in results:  # EnrichedJobRecord | DeadLetter
                ...

Jobs are validated RawJobs keyed by job_id, as the worker expects them; results come typed.
A cluster with TLS or SASL is given as ``cluster``: ``load_settings().cluster()`` reads the
same ``KAFKA_*`` variables as the worker.
With ``schema_registry`` (its Confluent API's URL, or a ``RegistryConfig`` with credentials)
jobs are framed with the id of RawJob's schema, registered if need be; results are read
framed or not.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable, Iterable
from types import TracebackType
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition

from streams.config.slices import KafkaCluster, RegistryConfig
from streams.errors import StreamsError
from streams.kafka import topics
from streams.kafka.admin import partitions_of
from streams.kafka.clients import group_reader, producer, reader
from streams.kafka.schema_registry import Registry, topic_contracts
from streams.models import DeadLetter, EnrichedJobRecord, RawJob
from streams.telemetry.messaging import processing, sending

__all__ = ["JobFailed", "JobsClient"]

Result = EnrichedJobRecord | DeadLetter


class JobFailed(StreamsError):
    """The job was dead-lettered; ``letter`` says why."""

    def __init__(self, letter: DeadLetter) -> None:
        super().__init__(f"job {letter.job_id} failed at {letter.stage}: {letter.error.message}")
        self.letter = letter


class JobsClient:
    def __init__(
        self,
        *,
        cluster: KafkaCluster | None = None,
        bootstrap: str | None = None,
        raw_topic: str = "jobs.raw",
        enriched_topic: str = "jobs.enriched",
        dead_letter_topic: str = "jobs.dead-letter",
        schema_registry: str | RegistryConfig | None = None,
    ) -> None:
        if (cluster is None) == (bootstrap is None):
            raise TypeError("JobsClient takes either cluster or bootstrap (a plaintext broker)")
        self.cluster = cluster or KafkaCluster.plaintext(bootstrap or "")
        if isinstance(schema_registry, str):
            schema_registry = RegistryConfig(url=schema_registry, basic_auth=None)
        self.schema_registry = schema_registry
        self._raw = topics.raw_topic(raw_topic)
        self._enriched = topics.enriched_topic(enriched_topic)
        self._dead_letter = topics.dead_letter_topic(dead_letter_topic)
        self.raw_topic = raw_topic
        self.enriched_topic = enriched_topic
        self.dead_letter_topic = dead_letter_topic
        self._producer: AIOKafkaProducer | None = None
        self._clients = contextlib.AsyncExitStack()

    async def __aenter__(self) -> JobsClient:
        if self.schema_registry is not None:  # the writer's schema: this RawJob's
            registry = Registry(self.schema_registry)
            ids = await asyncio.to_thread(registry.register, topic_contracts([self._raw]))
            self._raw = self._raw.framed_with(ids)
        self._producer = await self._clients.enter_async_context(producer(self.cluster))
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._producer = None
        await self._clients.aclose()

    async def publish(
        self, jobs: RawJob | Iterable[RawJob], *, progress: Callable[[int], None] | None = None
    ) -> int:
        """Send the jobs and wait for the broker to have them all; ``progress`` is called with
        the count acknowledged so far. Returns how many were sent. Each record carries the
        current trace context (in a ``send`` span of its own when tracing is set up)."""
        if self._producer is None:
            raise StreamsError("use the client as 'async with JobsClient(...) as jobs'")
        batch = [jobs] if isinstance(jobs, RawJob) else [RawJob.model_validate(j) for j in jobs]
        deliveries = []
        for job in batch:
            with sending(self.raw_topic, job.job_id) as headers:
                delivery = await self._producer.send(
                    self.raw_topic,
                    key=job.job_id.encode(),
                    value=self._raw.encode(job),
                    headers=headers,
                )
            deliveries.append(delivery)
        for done, delivery in enumerate(deliveries, start=1):
            await delivery
            if progress is not None:
                progress(done)
        return len(batch)

    async def results(
        self, *, group: str, from_beginning: bool = False
    ) -> AsyncGenerator[Result, None]:
        """Enriched jobs and dead letters, as the consumer group ``group``. What the caller has
        taken is committed before more are fetched, and when the iteration ends; never more.
        While the caller holds a result it is in the job's trace (a ``process`` span)."""
        taken: dict[TopicPartition, int] = {}
        async with group_reader(
            self.cluster, group_id=group, from_start=from_beginning
        ) as consumer:
            consumer.subscribe([self.enriched_topic, self.dead_letter_topic])
            try:
                while True:
                    batches = await consumer.getmany(timeout_ms=1000)
                    for tp, records in batches.items():
                        for record in records:
                            taken[tp] = record.offset + 1  # handed over is taken
                            with processing(record, group=group):
                                yield self._result(record)
                    if batches:
                        await consumer.commit(taken)
            finally:
                if taken:
                    await consumer.commit(taken)

    async def enrich(self, job: RawJob, *, timeout: float) -> EnrichedJobRecord:  # noqa: ASYNC109
        """Publish ``job`` and wait for its result: the EnrichedJobRecord, or JobFailed with the
        dead letter's reason, or TimeoutError after ``timeout`` seconds."""
        async with reader(self.cluster) as consumer:
            partitions = [
                TopicPartition(topic, p)
                for topic in (self.enriched_topic, self.dead_letter_topic)
                for p in await self._partitions(topic)
            ]
            consumer.assign(partitions)
            await consumer.seek_to_end(*partitions)
            for tp in partitions:  # the positions now, before the job can have a result
                await consumer.position(tp)
            await self.publish(job)
            async with asyncio.timeout(timeout):
                while True:
                    for records in (await consumer.getmany(timeout_ms=500)).values():
                        for record in records:
                            if record.key == job.job_id.encode():
                                return _reply(self._result(record))

    async def _partitions(self, topic: str) -> list[int]:
        found = await partitions_of(self.cluster, topic)
        if not found:
            raise StreamsError(f"topic {topic} does not exist: is a worker running?")
        return found

    def _result(self, record: Any) -> Result:
        value = record.value or b""
        if record.topic == self.dead_letter_topic:
            return self._dead_letter.decode(value)
        return self._enriched.decode(value)


def _reply(result: Result) -> EnrichedJobRecord:
    if isinstance(result, DeadLetter):
        raise JobFailed(result)
    return result
