"""Step two of the stats path: the batches of partial sums on ``llm.stats`` (see
``aggregate``) merged into the changelog-backed tables, so the tables see two records a second
per partition of ``llm.calls``, not one per attempt, and each figure equals a recount of
``llm.calls``.

One partition for ``llm.stats`` and the tables: every figure lives on one worker, and the
others' web views forward reads to it (``table_route``). When the tables move to another
worker, it reads ``llm.stats`` again from the last committed offset; ``stats-applied`` (where
in ``llm.calls`` the merged batches end) makes it skip what was merged already.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any, Literal

from streams.kafka.topics import Topics, faust_topic
from streams.observe.aggregate import StatsBatch, StatsPartial
from streams.observe.stats import (
    RECENT_KEPT,
    Stats,
    day_key,
    day_of,
    empty,
    merge,
    minute_key,
    oldest_day_kept,
    oldest_minute_kept,
    split_key,
)

__all__ = ["StatsStore", "install_stats_agent"]

log = logging.getLogger(__name__)

RECENT_KEY = "recent"


def install_stats_agent(app: Any, store: StatsStore, *, topics: Topics) -> None:
    """The agent that merges ``llm.stats`` (and the resets) into the store's tables."""
    app.agent(faust_topic(app, topics.stats, topics.stats_resets), name="stats")(store.merge)


class StatsStore:
    def __init__(self, app: Any, *, topics: Topics) -> None:
        self.totals = app.Table("stats-totals", partitions=1)
        self.minutes = app.Table("stats-minutes", partitions=1)
        self.daily = app.Table("stats-daily", partitions=1)
        self.tenant_daily = app.Table("stats-tenant-daily", partitions=1)
        self.recent = app.Table("stats-recent-failures", partitions=1)
        self.applied = app.Table("stats-applied", partitions=1)
        self.resets_topic = topics.stats_resets.name
        self._last_pruned: tuple[int, str] | None = None

    async def merge(self, stream: Any) -> None:
        """The agent's body: every stats batch and reset, in topic order."""
        async for event in stream.events():
            try:
                self._apply(event)
            except Exception:  # an exception here would lose the event: log, carry on
                log.exception("stats: could not apply the record at %s", event.message.offset)

    def _apply(self, event: Any) -> None:
        if event.message.topic == self.resets_topic:
            provider = bytes(event.key or b"").decode()
            self.totals[provider] = empty()
            return
        batch = StatsBatch.model_validate_json(event.value)
        if all(end <= (self.applied.get(str(p)) or 0) for p, end in batch.ends.items()):
            return  # merged before this worker took the tables over
        for partial in batch.partials:
            self._merge_partial(partial)
        for p, end in batch.ends.items():
            self.applied[str(p)] = end

    def _merge_partial(self, partial: StatsPartial) -> None:
        provider, stats = partial.provider, partial.stats
        self.totals[provider] = merge(self.totals.get(provider) or empty(), stats)
        minute = minute_key(provider, partial.minute)
        self.minutes[minute] = merge(self.minutes.get(minute) or empty(), stats)
        at = datetime.fromtimestamp(partial.minute * 60, UTC)
        day = day_key(provider, day_of(at))
        self.daily[day] = merge(self.daily.get(day) or empty(), stats)
        tenant_day = day_key(partial.tenant, day_of(at))
        self.tenant_daily[tenant_day] = merge(self.tenant_daily.get(tenant_day) or empty(), stats)
        if partial.failures:
            recent = partial.failures + (self.recent.get(RECENT_KEY) or [])
            self.recent[RECENT_KEY] = recent[:RECENT_KEPT]
        self._prune(at)

    def _prune(self, now: datetime) -> None:
        """Drop minutes older than a day and days older than DAYS_KEPT, once a minute."""
        horizon = (oldest_minute_kept(now), oldest_day_kept(now))
        if self._last_pruned == horizon:
            return
        self._last_pruned = horizon
        for key in [k for k in self.minutes if int(split_key(k)[1]) < horizon[0]]:
            del self.minutes[key]
        for table in (self.daily, self.tenant_daily):
            for key in [k for k in table if split_key(k)[1] < horizon[1]]:
                del table[key]

    # --- reads, for the web view -------------------------------------------------------

    def totals_by_provider(self) -> dict[str, Stats]:
        return dict(self.totals.items())

    def minutes_since(self, since_minute: int) -> dict[str, dict[int, Stats]]:
        series: dict[str, dict[int, Stats]] = {}
        for key, value in self.minutes.items():
            provider, minute = split_key(key)
            if int(minute) >= since_minute:
                series.setdefault(provider, {})[int(minute)] = value
        return series

    def recent_failures(self) -> list[dict[str, Any]]:
        return list(self.recent.get(RECENT_KEY) or [])

    def days_between(
        self, first: str, last: str, *, by: Literal["provider", "tenant"] = "provider"
    ) -> dict[str, dict[str, Stats]]:
        """Per provider (or tenant) and day, the days from ``first`` to ``last``."""
        days: dict[str, dict[str, Stats]] = {}
        for key, value in (self.daily if by == "provider" else self.tenant_daily).items():
            name, day = split_key(key)
            if first <= day <= last:
                days.setdefault(name, {})[day] = value
        return days
