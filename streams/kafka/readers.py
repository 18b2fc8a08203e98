"""Following topics outside Faust's agents: the kinds of reader the service needs, and the one
supervisor and restart policy they all run under.

- ``WholeTopic``: a one-partition compacted topic from its start, on every worker (control
  commands, the repost cache);
- ``SinceTime``: every partition of a topic from a moment on (today's spend, the last hour's
  dead letters);
- a consumer group reading with transactions (the stats aggregator, ``observe.aggregate``),
  a ``Follower`` like the others.

A follower's ``follow`` reads until something fails. The ``Supervisor`` says what failed and
starts it over after ``RESTART_DELAY_S``: a Kafka error (the broker away) as a warning, any
other as a bug with its traceback, never stopping the worker. Starting over rebuilds the
follower's state from the topic. ``ready`` is set once a follower has read what was there at
its first start; ``Supervisor.ready`` once every follower's is. One-off reads (what was
published before a rebalance, a batch lane read back) use the same policy through ``retried``.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from streams.config.slices import KafkaCluster
from streams.kafka.admin import ensure_topic, partitions_when_created, start_range
from streams.kafka.clients import reader

__all__ = ["Follower", "SinceTime", "Supervisor", "WholeTopic", "retried"]

log = logging.getLogger(__name__)

RESTART_DELAY_S = 1.0
POLL_MS = 1000

T = TypeVar("T")


class Follower(ABC):
    """A reader kept running by the supervisor. ``name`` says what it does, in logs."""

    name: str

    def __init__(self) -> None:
        self.ready = asyncio.Event()

    @abstractmethod
    async def follow(self) -> None:
        """Read for ever, from scratch: raises only when something failed."""


class WholeTopic(Follower):
    """A one-partition compacted topic from its start. Subclasses say what a record does."""

    def __init__(
        self,
        *,
        cluster: KafkaCluster,
        topic: str,
        retention_s: float | None = None,
        gathered: bool = False,
    ) -> None:
        super().__init__()
        self.cluster = cluster
        self.topic = topic
        self.name = f"following {topic}"
        self._retention_s = retention_s
        self._gathered = gathered  # see kafka.clients.reader

    @abstractmethod
    def apply(self, record: Any) -> None: ...

    async def follow(self) -> None:
        await ensure_topic(
            self.cluster,
            self.topic,
            partitions=1,
            compacted=True,
            retention_s=self._retention_s,
        )
        async with reader(self.cluster, gathered=self._gathered) as consumer:
            partition = TopicPartition(self.topic, 0)
            end = (await start_range(consumer, [partition]))[partition]
            if end == 0:
                self.ready.set()
            while True:
                batches = await consumer.getmany(timeout_ms=POLL_MS)
                for record in batches.get(partition, []):
                    self.apply(record)
                    if record.offset + 1 >= end:
                        self.ready.set()


class SinceTime(Follower):
    """Every partition of a topic from ``since_ms()`` on, once someone has created it.
    Subclasses forget what they held (``restart``), say what a record does (``on_record``)
    and may act after each poll (``polled``)."""

    def __init__(
        self,
        *,
        cluster: KafkaCluster,
        topic: str,
        committed_only: bool = False,
        gathered: bool = False,
    ) -> None:
        super().__init__()
        self.cluster = cluster
        self.topic = topic
        self.name = f"following {topic}"
        self._committed_only = committed_only
        self._gathered = gathered  # see kafka.clients.reader

    @abstractmethod
    def since_ms(self) -> int: ...

    @abstractmethod
    def restart(self) -> None: ...

    @abstractmethod
    def on_record(self, record: Any) -> None: ...

    def polled(self) -> None:
        """After each poll, whether it brought records or not."""

    async def follow(self) -> None:
        self.restart()
        async with reader(
            self.cluster, committed_only=self._committed_only, gathered=self._gathered
        ) as consumer:
            partitions = await partitions_when_created(self.cluster, self.topic)
            ends = await start_range(consumer, partitions, since_ms=self.since_ms())
            while True:
                batches = await consumer.getmany(timeout_ms=POLL_MS)
                for records in batches.values():
                    for record in records:
                        self.on_record(record)
                self.polled()
                if not self.ready.is_set():
                    positions = [await consumer.position(tp) for tp in ends]
                    if all(at >= end for at, end in zip(positions, ends.values(), strict=True)):
                        self.ready.set()


class Supervisor:
    """Runs followers, each started over whenever it fails."""

    def __init__(self, followers: Sequence[Follower]) -> None:
        self.followers = list(followers)

    async def run(self) -> None:
        await asyncio.gather(*(self._keep(f) for f in self.followers))

    async def ready(self) -> None:
        """Once every follower has read what was there when it started."""
        await asyncio.gather(*(f.ready.wait() for f in self.followers))

    async def _keep(self, follower: Follower) -> None:
        while True:
            await retried(follower.name, follower.follow)


async def retried(what: str, read: Callable[[], Awaitable[T]]) -> T:
    """``read()``'s result; a Kafka error is said and ``read`` starts over, and so is any
    other error, with its traceback (a reader the service waits for must not die of a bug)."""
    while True:
        try:
            return await read()
        except KafkaError as exc:
            log.warning("%s interrupted (%s); starting over", what, exc)
        except Exception:
            log.exception("%s failed; starting over", what)
        await asyncio.sleep(RESTART_DELAY_S)
