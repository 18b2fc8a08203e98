"""Today's spend per provider for the whole consumer group, for the daily budgets
(``routing.budget``): every worker sums ``llm.stats`` from the start of the UTC day.

The topic has one partition and a few records a second, and its batches are exactly-once
sums of ``llm.calls`` (``aggregate``), so the figure here equals the daily table's.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

from aiokafka import TopicPartition
from pydantic import ValidationError

from streams.kafka.admin import ensure_topic, restarted_on_kafka_errors, seek_to_time
from streams.kafka.clients import reader
from streams.observe.aggregate import StatsBatch
from streams.observe.stats import day_of

log = logging.getLogger(__name__)

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
        await restarted_on_kafka_errors(f"spend: following {self.topic}", self._follow)

    async def _follow(self) -> None:
        self._by_day = {}
        async with reader(self.bootstrap_servers, committed_only=True) as consumer:
            partition = TopicPartition(self.topic, 0)
            consumer.assign([partition])
            now = datetime.fromtimestamp(self._clock(), UTC)
            midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
            await seek_to_time(consumer, [partition], int(midnight.timestamp() * 1000))
            while True:
                batches = await consumer.getmany(partition, timeout_ms=POLL_MS)
                for record in batches.get(partition, []):
                    self.apply(record.value or b"")
                self._on_change(self.today())
