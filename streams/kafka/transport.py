"""Faust's aiokafka transport, with its consumer made safe across a seek.

Why: after a rebalance, Faust's recovery resumes the stream partitions and only then seeks them
to their committed offsets (``Recovery.on_recovery_completed``). Records the fetch loop hands
over in between come from the old position and the stream skips them (its flow control is not
resumed yet); the loop then goes on with the rest of that batch after the seek, takes it for a
jump past the seek's offset, records the jump as a "gap" that it later commits as if processed,
and drops the records fetched again as already read. A worker restarted onto a backlog lost
dozens of jobs per partition that way (the SIGTERM test in tests/test_faults.py, 3 runs in 5).

Here a seek and a fetch never overlap, so every batch is wholly older or newer than a seek, and:
records of a batch fetched before their partition was sought are dropped (the seek fetches
them again); delivery waits while a seek runs; if the record being handed over when a seek ran
was of a sought partition, its read offset is put back to the seek's; and the sought
partitions' gaps are forgotten (real ones are found again on the new fetch). A record the
stream did process before a seek comes round again: a duplicate, never a loss.

aiokafka's seek leaves a partition without a committed offset where it is; records fetched for
it since the assignment were handed over before the stream took any and would be skipped for
good (four jobs of a partition new to the group, in the scale test, when they arrived during a
rebalance). Such a stream partition is sought to its beginning like the others.

Its consumer also reads committed records only (``read_committed``): the stats aggregator
writes ``llm.stats`` in Kafka transactions, and a partial sum of an aborted transaction must not
reach the tables. Topics written without transactions read the same either way.

At a rebalance Faust waits for every record the worker has taken to be acknowledged
(``wait_empty``); under binding rate limits that is as long as the queue takes to drain at
this worker's share, minutes. ``release_in_flight``, set by the pipeline, is asked first for
the records it gives back unacknowledged (not sent to a provider, or past a grace): Faust then
waits for none of them, commits none of them, and the partition's next owner reads them again.

Its producer is idempotent and waits for every in-sync replica (``Producer``).

The broker URL ``streams-kafka://host:port`` selects this transport (an entry point in
``pyproject.toml``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable, Mapping
from typing import Any, NamedTuple

from faust.transport.drivers import aiokafka
from faust.types import TP, Message

__all__ = ["Consumer", "Producer", "Transport"]


class _Seek(NamedTuple):
    epoch: int
    offset: int


class _ReadCommitted(aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # Faust chooses read_committed only under its own exactly-once guarantee; aiokafka
        # reads this when the consumer starts, which is after this.
        consumer._isolation_level = "read_committed"
        return consumer


class Consumer(aiokafka.Consumer):
    release_in_flight: Callable[[], Awaitable[Collection[Message]]] | None = None

    async def wait_empty(self) -> None:
        if self.release_in_flight is not None and self.app.rebalancing:
            self.give_back(await self.release_in_flight())
        await super().wait_empty()

    def give_back(self, messages: Iterable[Message]) -> None:
        """Records taken and not acknowledged that the rebalance need not wait for."""
        self._unacked_messages -= set(messages)

    def _new_consumer_thread(self) -> aiokafka.AIOKafkaConsumerThread:
        return _ReadCommitted(self, loop=self.loop, beacon=self.beacon)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # A fetch and a seek never overlap, so each batch is wholly older or newer than a seek.
        self._fetch_or_seek = asyncio.Lock()
        self._no_seek_running = asyncio.Event()
        self._no_seek_running.set()
        self._seek_epoch = 0  # seeks so far
        self._fetched_in = 0  # the seek epoch the batch being delivered was fetched in
        self._last_seek: dict[TP, _Seek] = {}

    async def _getmany(self, active_partitions: set[TP] | None, timeout: float) -> Any:
        async with self._fetch_or_seek:
            records = await super()._getmany(active_partitions, timeout)
            self._fetched_in = self._seek_epoch
            return records

    async def perform_seek(self) -> None:
        async with self._fetch_or_seek:
            self._seek_epoch += 1
            self._no_seek_running.clear()
            try:
                await super().perform_seek()
            finally:
                self._no_seek_running.set()

    async def seek_to_committed(self) -> Mapping[TP, int]:
        committed: Mapping[TP, int] = await super().seek_to_committed()
        changelogs = self.app.tables.changelog_topics  # read by the tables' recovery
        uncommitted = [
            tp for tp, offset in committed.items() if not offset and tp.topic not in changelogs
        ]
        sought = {tp: offset for tp, offset in committed.items() if offset and offset > 0}
        if uncommitted:  # aiokafka moved only the others
            # To their first offsets, not by a reset: until a reset is done a partition has no
            # position, and Faust's livelock check reading it crashes the worker.
            first = await self._thread.earliest_offsets(*uncommitted)
            for tp in uncommitted:
                self._thread.seek(tp, first[tp])
                sought[tp] = first[tp]
        for tp, offset in sought.items():
            self._last_seek[tp] = _Seek(self._seek_epoch, offset)
            self._gap.pop(tp, None)
        return committed

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Message]]:
        async for tp, message in super().getmany(timeout):
            if not self._no_seek_running.is_set():
                await self._no_seek_running.wait()
            if self._sought_since_fetch(tp):
                continue  # the seek fetches it again
            if self._read_offset.get(tp) == 0 and message.offset > 1:
                # Faust records a hole in the offsets (a transaction marker) only after a
                # record at a non-zero offset; without this one the commit stops at 1.
                await self._add_gap(tp, 1, message.offset)
            yield tp, message
            # The fetch loop has handed the record over and written its offset as read.
            if (seek := self._sought_since_fetch(tp)) is not None:
                self._read_offset[tp] = seek.offset or None  # as Faust's own seek writes it

    async def _add_gap(self, tp: TP, offset_from: int, offset_to: int) -> None:
        """Remember offsets that hold no record (transaction markers) as done. Faust passes
        the next record's own offset as ``offset_to`` and marks it done too; counted again
        when that record is acked, it broke the run of done offsets and the commit of the
        topic (``llm.stats``, written in transactions) stopped advancing."""
        await super()._add_gap(tp, offset_from, offset_to - 1)

    def _sought_since_fetch(self, tp: TP) -> _Seek | None:
        seek = self._last_seek.get(tp)
        return seek if seek is not None and seek.epoch > self._fetched_in else None


class Producer(aiokafka.Producer):
    """Every record acknowledged by all in-sync replicas and written once however often a
    send is retried (idempotence): Faust asks for both only in its exactly-once mode."""

    def _settings_extra(self) -> Mapping[str, Any]:
        return {"acks": "all", "enable_idempotence": True}


class Transport(aiokafka.Transport):
    Consumer = Consumer
    Producer = Producer
