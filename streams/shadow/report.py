"""The answer to "should we switch?": ``llm.shadow`` summed per candidate against production.

Per candidate: the jobs compared; agreement per field and overall, each with a 95 %
interval (Wilson's score interval where every score is 0 or 1, the exact fields; otherwise
the normal approximation, mean ± 1.96·s/√n, for graded scores such as F1); the shares of
jobs whose answer failed validation or that got no answer; latency p50/p95 and cost per
1,000 jobs of each side over the same jobs; and the monthly saving projected from the
volume enriched in the window. A job compared twice for a candidate counts once, its latest.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from datetime import datetime

from pydantic import BaseModel

from streams.models import ShadowResult

__all__ = ["CandidateReport", "Interval", "compare_report", "interval", "percentile"]

Z_95 = 1.959964
DAYS_PER_MONTH = 30


class Interval(BaseModel):
    mean: float
    low: float
    high: float
    n: int
    method: str  # wilson or normal


class Side(BaseModel):
    """One side's figures over the jobs the candidate was sent."""

    models: list[str]
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    cost_per_1000_usd: float | None


class CandidateReport(BaseModel):
    candidate: str
    jobs: int  # sampled: compared, invalid, failed or dropped
    compared: int
    invalid: int
    failed: int
    dropped: int
    invalid_rate: float | None  # of the jobs the candidate was sent
    failure_rate: float | None
    overall: Interval | None
    fields: dict[str, Interval]
    production: Side
    shadow: Side
    enriched_per_day: float | None
    projected_monthly_saving_usd: float | None  # negative: the candidate costs more
    first_at: datetime
    last_at: datetime


def interval(values: list[float]) -> Interval:
    n = len(values)
    mean = sum(values) / n
    if all(v in (0.0, 1.0) for v in values):
        # Wilson: right at 0 and 1 and with few jobs, where mean ± z·s collapses.
        centre = (mean + Z_95**2 / (2 * n)) / (1 + Z_95**2 / n)
        half = Z_95 * math.sqrt(mean * (1 - mean) / n + Z_95**2 / (4 * n * n)) / (1 + Z_95**2 / n)
        low, high, method = centre - half, centre + half, "wilson"
    else:
        half = Z_95 * statistics.stdev(values) / math.sqrt(n) if n > 1 else 1.0
        low, high, method = mean - half, mean + half, "normal"
    return Interval(
        mean=round(mean, 4),
        low=round(max(0.0, low), 4),
        high=round(min(1.0, high), 4),
        n=n,
        method=method,
    )


def percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)], 1)


def _side(results: list[ShadowResult], *, production: bool) -> Side:
    """One side's latency and cost over the jobs sent to the candidate."""
    answers = [r.production if production else r.shadow for r in results]
    present = [a for a in answers if a is not None]
    answered = [a for a in present if a.enrichment is not None]
    cost = sum(a.usage.cost_usd for a in present)
    return Side(
        models=sorted({f"{a.provider}/{a.model}" for a in present}),
        latency_p50_ms=percentile([a.latency_ms for a in answered], 0.5),
        latency_p95_ms=percentile([a.latency_ms for a in answered], 0.95),
        cost_per_1000_usd=round(cost / len(present) * 1000, 6) if present else None,
    )


def compare_report(
    results: Iterable[ShadowResult], *, enriched_per_day: float | None = None
) -> list[CandidateReport]:
    """One report per candidate, by name."""
    latest: dict[tuple[str, str], ShadowResult] = {}
    for result in results:
        key = (result.candidate, result.job_id)
        if key not in latest or latest[key].at <= result.at:
            latest[key] = result
    by_candidate: dict[str, list[ShadowResult]] = {}
    for (candidate, _), result in sorted(latest.items()):
        by_candidate.setdefault(candidate, []).append(result)
    return [
        _report(name, found, enriched_per_day=enriched_per_day)
        for name, found in by_candidate.items()
    ]


def _report(
    name: str, results: list[ShadowResult], *, enriched_per_day: float | None
) -> CandidateReport:
    count = {o: sum(r.outcome == o for r in results) for o in ("compared", "invalid", "failed")}
    sent = [r for r in results if r.outcome != "dropped"]
    compared = [r for r in results if r.outcome == "compared"]
    paths = list(dict.fromkeys(path for r in compared for path in r.scores))  # schema order
    production, shadow = _side(sent, production=True), _side(sent, production=False)
    saving = None
    ours, theirs = production.cost_per_1000_usd, shadow.cost_per_1000_usd
    if enriched_per_day is not None and ours is not None and theirs is not None:
        saving = round((ours - theirs) / 1000 * enriched_per_day * DAYS_PER_MONTH, 2)
    return CandidateReport(
        candidate=name,
        jobs=len(results),
        compared=count["compared"],
        invalid=count["invalid"],
        failed=count["failed"],
        dropped=len(results) - len(sent),
        invalid_rate=round(count["invalid"] / len(sent), 4) if sent else None,
        failure_rate=round(count["failed"] / len(sent), 4) if sent else None,
        overall=interval([r.agreement or 0.0 for r in compared]) if compared else None,
        fields={
            path: interval([r.scores[path] for r in compared if path in r.scores]) for path in paths
        },
        production=production,
        shadow=shadow,
        enriched_per_day=enriched_per_day,
        projected_monthly_saving_usd=saving,
        first_at=min(r.at for r in results),
        last_at=max(r.at for r in results),
    )
