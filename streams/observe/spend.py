"""Today's spend for the whole consumer group, for the daily budgets: every worker sums a
topic from the start of the UTC day.

Per provider (``routing.budget``) and per tenant from ``llm.stats``: one partition, a few
records a second, and its batches are exactly-once sums of ``llm.calls`` (``aggregate``), so
the figure here equals the daily table's. Per shadow candidate from ``llm.shadow``: each
result carries what its candidate's calls cost.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import ValidationError

from streams.config.slices import KafkaCluster
from streams.kafka.framing import decoded
from streams.kafka.readers import SinceTime
from streams.models import ShadowResult
from streams.observe.aggregate import StatsBatch
from streams.observe.stats import day_of

__all__ = ["SpendFollower", "provider_spend", "shadow_spend", "tenant_spend"]

# One record's spend: (when, whose, USD) for each part of it.
Spent = Iterator[tuple[datetime, str, float]]


def provider_spend(value: bytes) -> Spent:
    """A stats batch's cost per provider and minute."""
    return _batch_spend(value, by="provider")


def tenant_spend(value: bytes) -> Spent:
    """A stats batch's cost per tenant and minute."""
    return _batch_spend(value, by="tenant")


def _batch_spend(value: bytes, *, by: Literal["provider", "tenant"]) -> Spent:
    batch = StatsBatch.model_validate_json(value)
    for partial in batch.partials:
        whose = partial.provider if by == "provider" else partial.tenant
        yield datetime.fromtimestamp(partial.minute * 60, UTC), whose, partial.stats["cost_usd"]


def shadow_spend(value: bytes) -> Spent:
    """A shadow result's cost for its candidate."""
    result = decoded(ShadowResult, value)
    if result.shadow is not None:
        yield result.at, result.candidate, result.shadow.usage.cost_usd


log = logging.getLogger(__name__)


class SpendFollower(SinceTime):
    def __init__(
        self,
        *,
        cluster: KafkaCluster,
        topic: str,
        on_change: Callable[[dict[str, float]], None],
        spent: Callable[[bytes], Spent] = provider_spend,
        clock: Callable[[], float] = time.time,
    ) -> None:
        # Read committed: the aggregator writes its batches in transactions.
        super().__init__(cluster=cluster, topic=topic, committed_only=True)
        self._on_change = on_change
        self._spent = spent
        self._clock = clock
        self._by_day: dict[str, defaultdict[str, float]] = {}

    def today(self) -> dict[str, float]:
        """USD spent today (UTC) per provider (or candidate)."""
        day = day_of(datetime.fromtimestamp(self._clock(), UTC))
        for old in [d for d in self._by_day if d < day]:
            del self._by_day[old]
        return dict(self._by_day.get(day, {}))

    def apply(self, value: bytes) -> None:
        try:
            for at, whose, usd in self._spent(value):
                self._by_day.setdefault(day_of(at), defaultdict(float))[whose] += usd
        except ValidationError as exc:
            log.warning("spend: skipping a record of %s it cannot read: %s", self.topic, exc)

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
