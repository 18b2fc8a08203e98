"""The comparison read from the topics: ``llm.shadow`` in a window, and the volume that
``jobs.enriched`` received in it (for the projected saving). Used by ``llm-streams compare``
and the web view alike."""

from __future__ import annotations

from datetime import datetime

from pydantic import ValidationError

from streams.config.slices import KafkaCluster
from streams.kafka.admin import count_between, read_to_end
from streams.kafka.framing import decoded
from streams.models import ShadowResult, utcnow
from streams.shadow.report import CandidateReport, compare_report

__all__ = ["read_comparison", "shadow_results"]

DAY_S = 86_400


async def read_comparison(
    cluster: KafkaCluster,
    *,
    shadow_topic: str,
    enriched_topic: str,
    since: datetime | None = None,
    until: datetime | None = None,
    candidate: str | None = None,
) -> list[CandidateReport]:
    """Each candidate's report over [since, until) (default: all that is kept, to now)."""
    until = until or utcnow()
    since_ms = int(since.timestamp() * 1000) if since is not None else None
    results = [
        result
        for result in await shadow_results(cluster, shadow_topic, since_ms=since_ms)
        if result.at < until and candidate in (None, result.candidate)
    ]
    if not results:
        return []
    start = since or min(r.at for r in results)
    seconds = (until - start).total_seconds()
    volume = await count_between(
        cluster,
        enriched_topic,
        int(start.timestamp() * 1000),
        int(until.timestamp() * 1000),
    )
    per_day = round(volume / seconds * DAY_S, 1) if seconds > 0 else None
    return compare_report(results, enriched_per_day=per_day)


async def shadow_results(
    cluster: KafkaCluster, topic: str, *, since_ms: int | None = None
) -> list[ShadowResult]:
    """Every shadow result on ``topic`` (stamped ``since_ms`` or later), plain or framed; a
    record that is not one is skipped: nothing to count."""
    results = []
    for record in await read_to_end(cluster, topic, since_ms=since_ms):
        try:
            results.append(decoded(ShadowResult, record.value))
        except ValidationError:
            continue
    return results
