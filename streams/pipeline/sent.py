"""The write-ahead record of each provider call, on ``llm.sent``.

Before a request leaves, the router hands the journal what the call is and may cost; this
enqueues it on ``llm.sent`` (compacted, keyed by the call's id) without waiting, so it shares
the producer's batches with the other records and the call leaves at once. The writer of the
call's ledger event waits for the record's acknowledgement first (``written``: long since
come, for a call of a second), so no event precedes its record. The event carries the same id
and settles the record:
the stats aggregator that sums the event writes the record's tombstone. A record nobody settles
once its job's deadline and a grace period are past was sent by a worker that died with the call
under way; the aggregator puts it on the ledger as an estimate (``SentCall.lost``).

A record goes to the ``llm.sent`` partition numbered like its job's ledger partition (the
producer's default partitioner over the job id), so the one aggregator that sums a job's
ledger events also holds its records: settling and estimating a call happen in one of its
transactions, never twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import AsyncIterator, Iterable
from datetime import timedelta

from aiokafka.partitioner import murmur2

from streams.config.slices import KafkaCluster
from streams.kafka.admin import ensure_topic
from streams.kafka.clients import producer
from streams.kafka.producer import ClientProducer, Producer
from streams.kafka.topics import Topic
from streams.models import SentCall, utcnow
from streams.routing.journal import NO_JOURNAL, Journal, Sending

__all__ = ["SentLog", "command_line_journal", "ledger_partition", "worker_name"]

log = logging.getLogger(__name__)


def ledger_partition(job_id: str, partitions: int) -> int:
    """The ``llm.calls`` partition of a job's events, as the producers' default partitioner
    places a record keyed by the job id."""
    return int(murmur2(job_id.encode()) & 0x7FFFFFFF) % partitions


def worker_name() -> str:
    """This process, as a write-ahead record names it (host and pid)."""
    return f"{socket.gethostname()}:{os.getpid()}"


class SentLog:
    """The journal of a process's routers: each call's record enqueued on ``topic``."""

    def __init__(
        self,
        *,
        topic: Topic[SentCall],
        producer: Producer,
        price_version: str,
        grace_s: float,
        worker: str | None = None,
    ) -> None:
        if topic.partitions is None:
            raise ValueError(f"topic {topic.name}: its partition count is needed")
        self._topic = topic
        self._partitions = topic.partitions
        self._producer = producer
        self._price_version = price_version
        self._grace = timedelta(seconds=grace_s)
        self._worker = worker or worker_name()
        self._unacked: dict[str, asyncio.Future[object]] = {}  # by call id

    async def sent(self, call: Sending) -> bool:
        now = utcnow()
        record = SentCall(
            call_id=call.call_id,
            job_id=call.job.job_id,
            tenant=call.job.tenant,
            provider=call.provider,
            model=call.model,
            attempt=call.attempt,
            lane=call.lane,
            estimate=call.estimate,
            price_version=self._price_version,
            worker=self._worker,
            sent_at=now,
            settle_by=now + timedelta(seconds=call.lasts_s) + self._grace,
        )
        partition = ledger_partition(call.job.job_id, self._partitions)
        try:
            ack = await self._producer.send(
                self._topic.name,
                call.call_id.encode(),
                self._topic.encode(record),
                partition=partition,
            )
        except Exception as exc:  # the producer's refusal: the call goes on, unrecorded
            log.warning("a call's write-ahead record was refused: %s", exc)
            return False
        delivery = asyncio.ensure_future(ack)
        self._unacked[call.call_id] = delivery
        delivery.add_done_callback(lambda done: self._acked(call.call_id, done))
        return True

    async def written(self, call_ids: Iterable[str | None]) -> None:
        for call_id in call_ids:
            if call_id is not None and (delivery := self._unacked.get(call_id)) is not None:
                with contextlib.suppress(Exception):  # said by _acked
                    await asyncio.shield(delivery)

    def _acked(self, call_id: str, delivery: asyncio.Future[object]) -> None:
        self._unacked.pop(call_id, None)
        if not delivery.cancelled() and (exc := delivery.exception()) is not None:
            log.warning("a call's write-ahead record was not written: %s", exc)


@contextlib.asynccontextmanager
async def command_line_journal(
    cluster: KafkaCluster,
    topic: Topic[SentCall],
    *,
    price_version: str,
    grace_s: float | None,
) -> AsyncIterator[Journal]:
    """The journal of a command that calls providers (a backfill, an evaluation), with a
    producer of its own: killed half way, it leaves its calls to the workers' stats
    aggregators to estimate. ``grace_s`` None: nothing recorded (LLM_WRITE_AHEAD off)."""
    if grace_s is None:
        yield NO_JOURNAL
        return
    spec = topic.spec()
    await ensure_topic(cluster, spec.name, partitions=spec.partitions, compacted=True)
    async with producer(cluster) as client:
        yield SentLog(
            topic=topic,
            producer=ClientProducer(client),
            price_version=price_version,
            grace_s=grace_s,
        )
