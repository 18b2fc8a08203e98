"""Step one of the stats path: the attempts on ``llm.calls`` summed per provider and minute,
exactly once.

Every worker runs one aggregator in its own consumer group over ``llm.calls`` (as many
partitions as the raw topic, so the work spreads with the jobs). For each partition of a batch
it publishes the partial sums to ``llm.stats`` and commits the offsets it consumed in one Kafka
transaction: a worker killed mid-batch leaves an aborted transaction that nobody reads
(the tables' consumer reads committed records only), and the next owner of the partition
sums the same attempts again from the committed offset. Before it gives a partition up in a
rebalance it finishes the batch in hand, so no two workers sum the same attempts. A worker
that lost a partition without a rebalance telling it (its session expired while a broker was
away) is fenced: the transactions of a partition go through a producer with the partition's
transactional id, and the new owner's starts it before reading (without that, such a zombie's
late commit was counted twice: 607 calls in the statistics for 600 on the ledger, once in the
cluster fault tests).

Under load the workers' logs show aiokafka retrying a produce to ``llm.stats`` with
``NotEnoughReplicasError``, also on one broker with ``min.insync.replicas`` 1. It is not about
replicas: since Kafka 3.6 a broker checks that a transactional write belongs to an ongoing
transaction (KIP-890), and when the coordinator is still writing the previous transaction's
commit markers (this loop starts the next one at once) the check answers
CONCURRENT_TRANSACTIONS, which the broker reports to clients as NOT_ENOUGH_REPLICAS so that
older clients retry it (KAFKA-15459: "Unable to verify the partition has been added to the
transaction"). aiokafka retries after 100 ms and the batch commits once: the sums stay exact.
Evidence, ``bench.stats_path --events 100000`` on the project's broker, two runs each:
1 and 3 such warnings with the broker's default, 0 and 0 with
``transaction.partition.verification.enable=false``. The warning stays: on a cluster with
replicas the same error can mean a real shortfall, which must be seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from pydantic import BaseModel, Field, ValidationError

from streams.config.slices import KafkaCluster
from streams.kafka.admin import ensure_topic
from streams.kafka.clients import group_reader, reader, transactional_producer
from streams.kafka.readers import Follower
from streams.kafka.topics import Topic
from streams.models import DEFAULT_TENANT, ProviderCall, SentCall, utcnow
from streams.observe.stats import RECENT_KEPT, Stats, add, empty, minute_of
from streams.observe.unsettled import SentBooks

__all__ = ["Aggregator", "StatsBatch", "StatsPartial", "partials"]

log = logging.getLogger(__name__)

BATCH_MAX = 5000
BATCH_WAIT_MS = 500
# A killed worker's open transaction blocks committed reads of llm.stats until the broker
# aborts it: after this long.
TRANSACTION_TIMEOUT_MS = 10_000


class StatsPartial(BaseModel):
    """One provider's attempts for one tenant's jobs of one minute in one batch, summed."""

    provider: str
    tenant: str = DEFAULT_TENANT  # batches written before tenants have none
    minute: int
    stats: Stats
    failures: list[dict[str, Any]] = Field(default_factory=list, description="newest first")


class StatsBatch(BaseModel):
    """One ``llm.stats`` record: a batch's partial sums, and where in ``llm.calls`` the batch
    ends (partition -> next offset), so that the tables apply each batch once."""

    ends: dict[int, int]
    partials: list[StatsPartial]


def partials(calls: list[ProviderCall]) -> list[StatsPartial]:
    """The calls summed per provider, tenant and minute (failures newest first, at most
    RECENT_KEPT)."""
    sums: dict[tuple[str, str, int], StatsPartial] = {}
    for call in calls:
        key = (call.provider, call.tenant, minute_of(call.at))
        partial = sums.get(key)
        if partial is None:
            partial = sums[key] = StatsPartial(
                provider=call.provider, tenant=call.tenant, minute=key[2], stats=empty()
            )
        partial.stats = add(partial.stats, call)
        if call.outcome not in ("success", "repaired", "cache_hit"):
            partial.failures.insert(0, _failure(call))
            del partial.failures[RECENT_KEPT:]
    return list(sums.values())


def _failure(call: ProviderCall) -> dict[str, Any]:
    return {
        "at": call.at.isoformat(),
        "provider": call.provider,
        "job_id": call.job_id,
        "outcome": call.outcome,
        "http_status": call.http_status,
        "error": f"{call.error_type}: {call.error_message}",
    }


class Aggregator(Follower, ConsumerRebalanceListener):  # type: ignore[misc]
    name = "stats: aggregation"

    def __init__(
        self,
        *,
        cluster: KafkaCluster,
        calls: Topic[ProviderCall],
        stats_topic: str,
        group_id: str,
        sent: Topic[SentCall] | None = None,
    ) -> None:
        if calls.partitions is None:
            raise ValueError(f"topic {calls.name}: its partition count is needed")
        self.cluster = cluster
        self.calls = calls
        self.partitions = calls.partitions
        self.stats_topic = stats_topic
        self.group_id = group_id
        # The write-ahead records of the calls, settled and estimated here (None: not kept).
        self.sent = sent
        self._batch = asyncio.Lock()  # held from a batch's read to its commit
        self._consumer: AIOKafkaConsumer | None = None
        self._books: SentBooks | None = None
        # per partition of llm.calls held: its producer, and what stops it
        self._producers: dict[int, tuple[AIOKafkaProducer, contextlib.AsyncExitStack]] = {}
        self._assignment_failed: BaseException | None = None
        super().__init__()

    async def follow(self) -> None:
        """Sum batches for ever. A Kafka error (the broker away, a fenced producer) aborts
        the batch in hand; started over, it goes on from the committed offsets."""
        # Created here, not by a subscription: an auto-created topic gets the broker's
        # partition count.
        await ensure_topic(self.cluster, self.calls.name, partitions=self.partitions)
        await ensure_topic(self.cluster, self.stats_topic, partitions=1)
        self.ready.set()  # nothing waits for the sums: they are read back from llm.stats
        # gathered: a batch per half second anyway
        reading = group_reader(self.cluster, group_id=self.group_id, gathered=True)
        try:
            async with reading as consumer, contextlib.AsyncExitStack() as stack:
                if self.sent is not None:
                    sent = await stack.enter_async_context(
                        reader(self.cluster, committed_only=True)
                    )
                    self._books = SentBooks(consumer=sent, topic=self.sent)
                self._consumer = consumer
                consumer.subscribe([self.calls.name], listener=self)
                while True:
                    batches = await consumer.getmany(
                        timeout_ms=BATCH_WAIT_MS, max_records=BATCH_MAX
                    )
                    if self._assignment_failed is not None:
                        raise self._assignment_failed
                    async with self._batch:
                        await self._sum(consumer, batches)
        finally:
            self._consumer = self._books = None
            self._assignment_failed = None
            await self._stop_producers(list(self._producers))

    async def _sum(
        self, consumer: AIOKafkaConsumer, batches: dict[TopicPartition, list[Any]]
    ) -> None:
        """Each held partition's new records, and its calls sent and never settled."""
        if self._books is not None:
            await self._books.follow()
        await asyncio.gather(
            *(self._commit(tp, batches.get(tp, [])) for tp in consumer.assignment())
        )

    async def _commit(self, tp: TopicPartition, records: list[Any]) -> None:
        """One partition's records summed onto ``llm.stats`` with their offsets, in one
        transaction of the partition's own producer; with the write-ahead records of the
        calls they settle deleted, and those of calls whose worker died estimated."""
        calls = []
        for record in records:
            try:
                calls.append(self.calls.decode(record.value))
            except ValidationError as exc:  # not ours to fix: counted nowhere, said once
                log.warning("stats: skipping a record that is not a ProviderCall: %s", exc)
        settled = [call.call_id for call in calls if call.call_id is not None]
        book = self._books.book(tp.partition) if self._books is not None else None
        lost = []
        if book is not None:
            book.settled(settled)
            lost = book.lost(utcnow())
        if not records and not lost:
            return
        producer, _ = self._producers[tp.partition]
        async with producer.transaction():
            if records:
                end = records[-1].offset + 1
                batch = StatsBatch(ends={tp.partition: end}, partials=partials(calls))
                await producer.send(self.stats_topic, batch.model_dump_json().encode())
                await producer.send_offsets_to_transaction({tp: end}, self.group_id)
            if self.sent is not None:
                await self._settle(producer, tp.partition, settled, lost)

    async def _settle(
        self, producer: AIOKafkaProducer, partition: int, settled: list[str], lost: list[SentCall]
    ) -> None:
        """The settled calls' write-ahead records deleted; the lost calls' estimates on the
        ledger (summed when read back, like any event), their records deleted too."""
        assert self.sent is not None
        for call in lost:
            log.warning(
                "%s call %s of job %s (sent by %s) was never settled: billed as estimated",
                call.provider,
                call.call_id,
                call.job_id,
                call.worker,
            )
            value = self.calls.encode(call.lost())
            await producer.send(
                self.calls.name, value, key=call.job_id.encode(), partition=partition
            )
        for call_id in [*settled, *(call.call_id for call in lost)]:
            await producer.send(self.sent.name, None, key=call_id.encode(), partition=partition)

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        async with self._batch:  # the batch in hand is committed before the partitions go
            await self._stop_producers([tp.partition for tp in revoked])
            if self._books is not None:
                await self._books.close(tp.partition for tp in revoked)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        """Fence whoever summed these partitions before, then read on from their offsets.

        A worker that lost its partitions without knowing (its session expired while a
        broker was away) may still be committing a batch of them. Each partition's
        transactions go through a producer whose transactional id is the partition's, so
        starting it here aborts or completes the earlier owner's open transaction and makes
        its next one fail. The consumer fetched the committed offsets as the assignment
        came, perhaps before that transaction settled: they are fetched again after it."""
        try:
            for tp in assigned:
                if tp.partition not in self._producers:
                    await self._start_producer(tp.partition)
            if assigned and self._consumer is not None:
                await self._consumer.seek_to_committed(*assigned)
            if self._books is not None:  # after the fencing: no earlier owner writes to them
                await self._books.open(tp.partition for tp in assigned)
        except Exception as exc:  # aiokafka would only log it: the loop raises it instead
            self._assignment_failed = exc

    async def _start_producer(self, partition: int) -> None:
        stack = contextlib.AsyncExitStack()
        producer = await stack.enter_async_context(
            transactional_producer(
                self.cluster,
                transactional_id=f"{self.group_id}.{partition}",
                transaction_timeout_ms=TRANSACTION_TIMEOUT_MS,
            )
        )
        self._producers[partition] = producer, stack

    async def _stop_producers(self, partitions: list[int]) -> None:
        for partition in partitions:
            if (held := self._producers.pop(partition, None)) is not None:
                await held[1].aclose()
