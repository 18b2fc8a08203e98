"""Today's spend per provider for the whole consumer group, for the daily budgets
(``routing.budget``): every worker sums ``llm.stats`` from the start of the UTC day.

The topic has one partition and a few records a second, and its batches are exactly-once
sums of ``llm.calls`` (``aggregate``), so the figure here equals the daily table's.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from streams.kafka.admin import ensure_topic
from streams.kafka.clients import reader
from streams.observe.aggregate import StatsBatch
from streams.observe.stats import day_of

log = logging.getLogger(__name__)

RESTART_DELAY_S = 1.0
POLL_MS = 1000  # also how soon the budgets see the day turn


class SpendFollower:
    def __init__(
        self,
        *,
        bootstrap_servers: str,
        topic: str,
        on_change: Callable[[dict[str, float]], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self._on_change = on_change
        self._clock = clock
        self._by_day: dict[str, Counter[str]] = {}

    def today(self) -> dict[str, float]:
        """USD spent today (UTC) per provider."""
        day = day_of(datetime.fromtimestamp(self._clock(), UTC))
        for old in [d for d in self._by_day if d < day]:
            del self._by_day[old]
        return dict(self._by_day.get(day, {}))

    def apply(self, value: bytes) -> None:
        try:
            batch = StatsBatch.model_validate_json(value)
        except ValidationError as exc:
            log.warning("spend: skipping a record that is not a stats batch: %s", exc)
            return
        for partial in batch.partials:
            day = day_of(datetime.fromtimestamp(partial.minute * 60, UTC))
            self._by_day.setdefault(day, Counter())[partial.provider] += partial.stats["cost_usd"]

    async def run(self) -> None:
        await ensure_topic(self.bootstrap_servers, self.topic, partitions=1)
        while True:
            try:
                await self._follow()
            except KafkaError as exc:
                log.warning("spend: following %s interrupted (%s)", self.topic, exc)
                await asyncio.sleep(RESTART_DELAY_S)

    async def _follow(self) -> None:
        self._by_day = {}
        async with reader(self.bootstrap_servers, committed_only=True) as consumer:
            partition = TopicPartition(self.topic, 0)
            consumer.assign([partition])
            await _seek_to_today(consumer, partition, self._clock())
            while True:
                batches = await consumer.getmany(partition, timeout_ms=POLL_MS)
                for record in batches.get(partition, []):
                    self.apply(record.value or b"")
                self._on_change(self.today())


async def _seek_to_today(consumer: Any, partition: TopicPartition, now: float) -> None:
    midnight = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    found = await consumer.offsets_for_times({partition: int(midnight.timestamp() * 1000)})
    if found.get(partition) is None:
        await consumer.seek_to_end(partition)
    else:
        consumer.seek(partition, found[partition].offset)
