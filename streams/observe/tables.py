"""The changelog-backed stats tables, and the agent that fills them from ``llm.calls``."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from streams.models import ProviderCall
from streams.observe.stats import (
    RECENT_KEPT,
    Stats,
    add,
    day_key,
    day_of,
    empty,
    minute_key,
    minute_of,
    oldest_day_kept,
    oldest_minute_kept,
    split_key,
)

log = logging.getLogger(__name__)

RECENT_KEY = "recent"


class StatsStore:
    """The changelog-backed tables and the agent that fills them from ``llm.calls``.

    One partition for the calls topic and the tables: every figure lives on one worker (with
    the others' web views forwarding reads to it via ``table_route``), so the numbers are
    right whichever worker answers. Stats events are small; one partition carries thousands
    a second."""

    def __init__(self, app: Any, *, calls_topic: str, resets_topic: str) -> None:
        self.totals = app.Table("stats-totals", partitions=1)
        self.minutes = app.Table("stats-minutes", partitions=1)
        self.daily = app.Table("stats-daily", partitions=1)
        self.recent = app.Table("stats-recent-failures", partitions=1)
        self.resets_topic = resets_topic
        self._last_pruned: tuple[int, str] | None = None
        source = app.topic(
            calls_topic, resets_topic, key_serializer="raw", value_serializer="raw", partitions=1
        )

        async def stats(stream: Any) -> None:
            async for event in stream.events():
                try:
                    self._apply(event)
                except Exception:  # an exception here would lose the event: log, carry on
                    log.exception("stats: could not apply the record at %s", event.message.offset)

        self.agent = app.agent(source, name="stats")(stats)

    def _apply(self, event: Any) -> None:
        if event.message.topic == self.resets_topic:
            provider = bytes(event.key or b"").decode()
            self.totals[provider] = empty()
            return
        call = ProviderCall.model_validate_json(event.value)
        self.totals[call.provider] = add(self.totals.get(call.provider), call)
        minute = minute_key(call.provider, minute_of(call.at))
        self.minutes[minute] = add(self.minutes.get(minute), call)
        day = day_key(call.provider, day_of(call.at))
        self.daily[day] = add(self.daily.get(day), call)
        if call.outcome not in ("success", "cache_hit"):
            failure = {
                "at": call.at.isoformat(),
                "provider": call.provider,
                "job_id": call.job_id,
                "outcome": call.outcome,
                "http_status": call.http_status,
                "error": f"{call.error_type}: {call.error_message}",
            }
            self.recent[RECENT_KEY] = [failure, *(self.recent.get(RECENT_KEY) or [])][:RECENT_KEPT]
        self._prune(call.at)

    def _prune(self, now: datetime) -> None:
        """Drop minutes older than a day and days older than DAYS_KEPT, once a minute."""
        horizon = (oldest_minute_kept(now), oldest_day_kept(now))
        if self._last_pruned == horizon:
            return
        self._last_pruned = horizon
        for key in [k for k in self.minutes if int(split_key(k)[1]) < horizon[0]]:
            del self.minutes[key]
        for key in [k for k in self.daily if split_key(k)[1] < horizon[1]]:
            del self.daily[key]

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

    def days_between(self, first: str, last: str) -> dict[str, dict[str, Stats]]:
        days: dict[str, dict[str, Stats]] = {}
        for key, value in self.daily.items():
            provider, day = split_key(key)
            if first <= day <= last:
                days.setdefault(provider, {})[day] = value
        return days
