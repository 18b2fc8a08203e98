"""Pay once across crashes and rebalances: a raw record redone after one, whose outcome is
already published, is acked without a provider call and without a second copy.

Faust commits a partition's offset every LLM_COMMIT_INTERVAL_S, up to its first record still
in flight; a worker that dies leaves everything done past that offset to the partition's next
owner, which takes it again. Every outcome (an enriched record or a dead letter) names its
source, the raw record's topic, partition and offset, in a header. When this worker is given
partitions, it reads once what the outcome topics received since the first record past each
committed offset was written, and skips the records it finds there.

Kafka transactions (Faust's exactly_once) would hide a dead worker's copies from readers that
read committed records only, but the calls of its aborted transaction were paid for, and
redone they would be paid again. So delivery stays at-least-once and this makes it effectively
once: an outcome this cannot see (published later than its look-back reaches, which the
look-back's length rules out while the broker is up) is a duplicate, never a loss.

A worker also remembers the outcomes it published itself (the newest of each partition):
after a rebalance Faust seeks the stream to the committed offsets once it has started it, so
a record this worker finished after its look-back can come round again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Collection, Iterable
from typing import Any

from aiokafka import TopicPartition

from streams.config.slices import KafkaCluster
from streams.kafka.admin import partitions_of, read_range
from streams.kafka.clients import admin, reader
from streams.kafka.readers import retried

__all__ = ["SOURCE_HEADER", "PublishedBefore", "published_sources", "source_of"]

log = logging.getLogger(__name__)

SOURCE_HEADER = "llm-source"
# A producer's clock may run ahead of the others': look back this much further.
CLOCK_SKEW_S = 60.0
FIRST_RECORD_WAIT_S = 5.0
# Outcomes a worker remembers publishing, per partition: a record that comes round again
# after a seek is one of the newest.
REMEMBERED_PER_PARTITION = 10_000

Done = dict[TopicPartition, set[int]]  # raw partition -> offsets whose outcome is published


def source_of(message: Any) -> bytes:
    """The header value naming a raw record: ``topic/partition/offset``."""
    return f"{message.topic}/{message.partition}/{message.offset}".encode()


def _parse_source(value: bytes) -> tuple[TopicPartition, int] | None:
    try:
        topic, partition, offset = value.decode().rsplit("/", 2)
        return TopicPartition(topic, int(partition)), int(offset)
    except ValueError:  # not ours: a header some other producer wrote
        return None


class PublishedBefore:
    """Which raw records of this worker's partitions already have a published outcome."""

    def __init__(
        self,
        *,
        cluster: KafkaCluster,
        group_id: str,
        raw_topic: str,
        outcome_topics: Collection[str],
        longest_look_back_s: float,
    ) -> None:
        self.cluster = cluster
        self.group_id = group_id
        self.raw_topic = raw_topic
        self.outcome_topics = outcome_topics
        # A record past the committed offset was finished at most this long ago: its
        # deadline, the rebalance that moved it and the commit interval.
        self.longest_look_back_s = longest_look_back_s
        self._scans: dict[TopicPartition, asyncio.Task[Done]] = {}
        self._mine: dict[TopicPartition, dict[int, None]] = {}  # oldest first

    def remember(self, source: str) -> None:
        """This worker published the outcome of raw record ``source`` (``topic/p/offset``)."""
        parsed = _parse_source(source.encode())
        if parsed is None:
            return
        tp, offset = parsed
        mine = self._mine.setdefault(tp, {})
        mine[offset] = None
        if len(mine) > REMEMBERED_PER_PARTITION:
            del mine[next(iter(mine))]

    def look_back(self, assigned: Iterable[Any]) -> None:
        """Start reading what was published for the newly assigned raw partitions."""
        new = {
            TopicPartition(tp.topic, tp.partition)
            for tp in assigned
            if tp.topic == self.raw_topic and tp not in self._scans
        }
        if new:
            scan = asyncio.ensure_future(self._scan_until_done(new))
            self._scans.update(dict.fromkeys(new, scan))

    def forget(self, revoked: Iterable[Any]) -> None:
        for tp in revoked:
            self._scans.pop(TopicPartition(tp.topic, tp.partition), None)

    async def published(self, message: Any) -> bool:
        """Whether this raw record's outcome is already published (waits for the look-back
        of its partition)."""
        tp = TopicPartition(message.topic, message.partition)
        if message.offset in self._mine.get(tp, ()):
            return True
        if tp not in self._scans:
            self.look_back([tp])
        done = await self._scans[tp]
        return message.offset in done.get(tp, ())

    async def _scan_until_done(self, raw: set[TopicPartition]) -> Done:
        # Intake waits for this; a broker that is away now is needed for intake too.
        return await retried("reading published outcomes", lambda: self._scan(raw))

    async def _scan(self, raw: set[TopicPartition]) -> Done:
        async with admin(self.cluster) as client:
            committed = await client.list_consumer_group_offsets(
                self.group_id, partitions=sorted(raw)
            )
        async with reader(self.cluster) as consumer:
            firsts, ends = await consumer.beginning_offsets(raw), await consumer.end_offsets(raw)
            starts = {tp: max(firsts[tp], _offset(committed.get(tp))) for tp in raw}
            redone = {tp: start for tp, start in starts.items() if start < ends[tp]}
            if not redone:
                return {}
            since_ms = await self._since_ms(consumer, redone)
            found = await _sources_since(consumer, self.cluster, self.outcome_topics, since_ms)
        done: Done = {tp: set() for tp in redone}
        for tp, offset in found:
            if tp in done and offset >= redone[tp]:
                done[tp].add(offset)
        log.info(
            "%d of the records to redo on %d partitions already have an outcome",
            sum(map(len, done.values())),
            len(done),
        )
        return done

    async def _since_ms(self, consumer: Any, redone: dict[TopicPartition, int]) -> int:
        """When the oldest record to redo was written (less the clock skew), or the
        longest look-back if that is later."""
        now_ms = time.time() * 1000
        longest_ms = now_ms - self.longest_look_back_s * 1000
        consumer.assign(list(redone))
        written = []
        for tp, start in redone.items():
            consumer.seek(tp, start)
            try:
                # Only transaction markers may follow a committed offset: then none.
                record = await asyncio.wait_for(consumer.getone(tp), FIRST_RECORD_WAIT_S)
            except TimeoutError:
                return int(longest_ms)
            written.append(record.timestamp)
        oldest_ms = min(min(written), now_ms) - CLOCK_SKEW_S * 1000
        return int(max(oldest_ms, longest_ms))


async def published_sources(
    cluster: KafkaCluster, outcome_topics: Collection[str], *, since_ms: int
) -> set[str]:
    """The raw records (``topic/partition/offset``) whose outcome was published since
    ``since_ms`` (less the clock skew)."""
    async with reader(cluster) as consumer:
        found = await _sources_since(
            consumer, cluster, outcome_topics, since_ms - int(CLOCK_SKEW_S * 1000)
        )
    return {f"{tp.topic}/{tp.partition}/{offset}" for tp, offset in found}


async def _sources_since(
    consumer: Any, cluster: KafkaCluster, outcome_topics: Collection[str], since_ms: int
) -> list[tuple[TopicPartition, int]]:
    """The source headers of the outcomes written since ``since_ms``, parsed."""
    outcome_tps = [
        TopicPartition(topic, partition)
        for topic in outcome_topics
        for partition in await partitions_of(cluster, topic)
    ]
    if not outcome_tps:
        return []
    sources = []
    for record in await read_range(consumer, outcome_tps, since_ms=since_ms):
        for name, value in record.headers or ():
            if name == SOURCE_HEADER and (source := _parse_source(value)) is not None:
                sources.append(source)
    return sources


def _offset(committed: Any) -> int:
    return committed.offset if committed is not None and committed.offset >= 0 else 0
