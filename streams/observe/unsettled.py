"""The calls of one ``llm.calls`` partition recorded as sent and not settled yet.

The stats aggregator keeps one book per partition it sums: filled from the partition's
write-ahead records on ``llm.sent`` (read whole when the partition is assigned, then
followed), emptied by the ledger events it sums (each names the call it settles) and by the
tombstones on ``llm.sent``. A call still in the book past its ``settle_by`` was sent by a
worker that died with it under way: ``lost`` hands it over once, to be estimated.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError

from streams.kafka.admin import read_up_to, start_range
from streams.kafka.topics import Topic
from streams.models import SentCall

__all__ = ["SentBooks", "Unsettled"]

log = logging.getLogger(__name__)

# Settled calls remembered, so that a record read after the event that settles it (both in
# flight at once) is not taken for an unsettled one.
REMEMBERED = 100_000


class Unsettled:
    def __init__(self) -> None:
        self._open: dict[str, SentCall] = {}
        self._closed: dict[str, None] = {}  # oldest first

    def __len__(self) -> int:
        return len(self._open)

    def sent(self, call: SentCall) -> None:
        """A write-ahead record read from ``llm.sent``."""
        if call.call_id not in self._closed:
            self._open[call.call_id] = call

    def settled(self, call_ids: Iterable[str]) -> None:
        """Calls that ledger events (or tombstones) settle."""
        for call_id in call_ids:
            self._open.pop(call_id, None)
            self._closed[call_id] = None
        while len(self._closed) > REMEMBERED:
            del self._closed[next(iter(self._closed))]

    def lost(self, now: datetime) -> list[SentCall]:
        """The calls past their ``settle_by``, settled from here on (their estimates settle
        them)."""
        due = [call for call in self._open.values() if call.settle_by < now]
        self.settled(call.call_id for call in due)
        return due


class SentBooks:
    """The books of the partitions an aggregator holds, kept from ``llm.sent`` through
    ``consumer`` (a group-less reader of committed records: a tombstone of an aborted
    transaction settled nothing)."""

    def __init__(self, *, consumer: AIOKafkaConsumer, topic: Topic[SentCall]) -> None:
        self._consumer = consumer
        self._topic = topic
        self._books: dict[int, Unsettled] = {}

    def book(self, partition: int) -> Unsettled | None:
        return self._books.get(partition)

    async def open(self, partitions: Iterable[int]) -> None:
        """Read the new partitions' records whole (what their earlier owner left
        unsettled), then follow them with the others."""
        new = [TopicPartition(self._topic.name, p) for p in partitions if p not in self._books]
        if not new:
            return
        kept = await self._positions()
        ends = await start_range(self._consumer, new)  # assigns the new ones alone
        records = await read_up_to(self._consumer, ends)
        self._assign({**kept, **ends})
        for tp in new:
            self._books[tp.partition] = Unsettled()
        self._take(records)
        unsettled = sum(len(self._books[tp.partition]) for tp in new)
        if unsettled:
            log.info("%d calls sent before and not settled on %d partitions", unsettled, len(new))

    async def close(self, partitions: Iterable[int]) -> None:
        for partition in partitions:
            self._books.pop(partition, None)
        self._assign(await self._positions())

    async def _positions(self) -> dict[TopicPartition, int]:
        held = [TopicPartition(self._topic.name, p) for p in self._books]
        return {tp: await self._consumer.position(tp) for tp in held}

    def _assign(self, positions: dict[TopicPartition, int]) -> None:
        """Follow exactly these partitions from these offsets (an assignment forgets every
        position)."""
        self._consumer.assign(list(positions))
        for tp, offset in positions.items():
            self._consumer.seek(tp, offset)

    async def follow(self) -> None:
        """The records written since the last look, taken into the books (no wait)."""
        if not self._books:
            return
        batches = await self._consumer.getmany(timeout_ms=0)
        self._take([record for records in batches.values() for record in records])

    def _take(self, records: Iterable[Any]) -> None:
        for record in records:
            book = self._books.get(record.partition)
            if book is None:
                continue
            if record.value is None:
                book.settled([record.key.decode()])
                continue
            try:
                book.sent(self._topic.decode(record.value))
            except ValidationError as exc:  # not ours: nothing to settle or estimate
                log.warning("sent calls: skipping a record that is not one: %s", exc)
