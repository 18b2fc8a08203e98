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
from typing import Any

from pydantic import ValidationError

from streams.kafka.readers import SinceTime
from streams.observe.aggregate import StatsBatch
from streams.observe.stats import day_of

__all__ = ["SpendFollower"]

log = logging.getLogger(__name__)


class SpendFollower(SinceTime):
    def __init__(
        self,
        *,
        bootstrap_servers: str,
        topic: str,
        on_change: Callable[[dict[str, float]], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        # Read committed: the aggregator writes its batches in transactions.
        super().__init__(bootstrap_servers=bootstrap_servers, topic=topic, committed_only=True)
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

    # --- as a follower of the topic -------------------------------------------------------

    def since_ms(self) -> int:
        now = datetime.fromtimestamp(self._clock(), UTC)
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        return int(midnight.timestamp() * 1000)

    def restart(self) -> None:
        self._by_day = {}

    def on_record(self, record: Any) -> None:
        self.apply(record.value or b"")

    def polled(self) -> None:
        self._on_change(self.today())  # also how soon the budgets see the day turn
