"""Per-provider statistics from ``llm.calls``: the arithmetic, kept apart from the tables.

A stats record is a plain dict (it lives in changelog-backed Faust tables as JSON): counts and
cost by outcome, latency sum, max and a histogram (for p50/p95/p99), tokens and cost. Records
add up, so minutes roll up into hours, days and totals. Cost by outcome is what compares a
repair with a fallback: a ``repaired`` answer's cost beside a ``success`` on the provider
fallen back to.
"""

from __future__ import annotations

import bisect
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from streams.models import ProviderCall

__all__ = [
    "BUCKETS_MS",
    "DAYS_KEPT",
    "MINUTES_KEPT",
    "RECENT_KEPT",
    "Stats",
    "add",
    "day_key",
    "day_of",
    "empty",
    "merge",
    "minute_key",
    "minute_of",
    "oldest_day_kept",
    "oldest_minute_kept",
    "percentile_ms",
    "split_key",
    "summary",
    "usage_report",
]

# Upper bounds (ms) of the latency histogram's buckets; the last one catches the rest.
BUCKETS_MS: tuple[float, ...] = (50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 120_000)
MINUTES_KEPT = 24 * 60
RECENT_KEPT = 20  # failures shown with their reasons
DAYS_KEPT = 400

Stats = dict[str, Any]


def empty() -> Stats:
    return {
        "calls": 0,
        "outcomes": {},
        "latency_ms_sum": 0.0,
        "latency_ms_max": 0.0,
        "latency_buckets": [0] * (len(BUCKETS_MS) + 1),
        "input_tokens": 0,
        "cached_input_tokens": 0,
        "cache_write_tokens": 0,
        "output_tokens": 0,
        "cost_usd": 0.0,
        "prompt_cache_saved_usd": 0.0,
        "cache_hits": 0,
        "saved_usd": 0.0,
        "batch_calls": 0,
        "batch_cost_usd": 0.0,
        "batch_saved_usd": 0.0,
        "estimated_calls": 0,
        "estimated_cost_usd": 0.0,
        "shadow_calls": 0,
        "shadow_cost_usd": 0.0,
        "outcome_cost_usd": {},
    }


def add(stats: Stats | None, call: ProviderCall) -> Stats:
    """A new record: ``stats`` plus one call."""
    out = merge(stats or empty(), empty())
    if call.outcome == "cache_hit":  # no call was made: counted apart, with what it saved
        out["cache_hits"] += 1
        out["saved_usd"] = round(out["saved_usd"] + call.usage.cost_usd, 10)
        return out
    out["cost_usd"] = round(out["cost_usd"] + call.usage.cost_usd, 10)  # the bill, all of it
    if call.lane == "shadow":  # a candidate's: on the bill, not in production's figures
        out["shadow_calls"] += 1
        out["shadow_cost_usd"] = round(out["shadow_cost_usd"] + call.usage.cost_usd, 10)
        return out
    out["calls"] += 1
    out["outcomes"][call.outcome] = out["outcomes"].get(call.outcome, 0) + 1
    spent = out["outcome_cost_usd"]
    spent[call.outcome] = round(spent.get(call.outcome, 0.0) + call.usage.cost_usd, 10)
    out["latency_ms_sum"] += call.latency_ms
    out["latency_ms_max"] = max(out["latency_ms_max"], call.latency_ms)
    out["latency_buckets"][bisect.bisect_left(BUCKETS_MS, call.latency_ms)] += 1
    out["input_tokens"] += call.usage.input_tokens
    out["cached_input_tokens"] += call.usage.cached_input_tokens
    out["cache_write_tokens"] += call.usage.cache_write_tokens
    out["output_tokens"] += call.usage.output_tokens
    out["prompt_cache_saved_usd"] = round(
        out["prompt_cache_saved_usd"] + call.usage.prompt_cache_saved_usd, 10
    )
    if call.lane == "batch":  # a part of the figures above, told apart
        out["batch_calls"] += 1
        out["batch_cost_usd"] = round(out["batch_cost_usd"] + call.usage.cost_usd, 10)
        out["batch_saved_usd"] = round(out["batch_saved_usd"] + call.usage.batch_saved_usd, 10)
    if call.usage_estimated:  # a part of cost_usd, told apart: no answer said what it cost
        out["estimated_calls"] += 1
        out["estimated_cost_usd"] = round(out["estimated_cost_usd"] + call.usage.cost_usd, 10)
    return out


def merge(a: Stats, b: Stats) -> Stats:
    outcomes = dict(a["outcomes"])
    for outcome, count in b["outcomes"].items():
        outcomes[outcome] = outcomes.get(outcome, 0) + count
    spent = dict(a.get("outcome_cost_usd", {}))
    for outcome, usd in b.get("outcome_cost_usd", {}).items():
        spent[outcome] = round(spent.get(outcome, 0.0) + usd, 10)
    return {
        "calls": a["calls"] + b["calls"],
        "outcomes": outcomes,
        "latency_ms_sum": a["latency_ms_sum"] + b["latency_ms_sum"],
        "latency_ms_max": max(a["latency_ms_max"], b["latency_ms_max"]),
        "latency_buckets": [
            x + y for x, y in zip(a["latency_buckets"], b["latency_buckets"], strict=True)
        ],
        "input_tokens": a["input_tokens"] + b["input_tokens"],
        "cached_input_tokens": a["cached_input_tokens"] + b["cached_input_tokens"],
        "output_tokens": a["output_tokens"] + b["output_tokens"],
        "cost_usd": round(a["cost_usd"] + b["cost_usd"], 10),
        # .get: records stored before these existed lack them
        "cache_write_tokens": a.get("cache_write_tokens", 0) + b.get("cache_write_tokens", 0),
        "prompt_cache_saved_usd": round(
            a.get("prompt_cache_saved_usd", 0.0) + b.get("prompt_cache_saved_usd", 0.0), 10
        ),
        "cache_hits": a.get("cache_hits", 0) + b.get("cache_hits", 0),
        "saved_usd": round(a.get("saved_usd", 0.0) + b.get("saved_usd", 0.0), 10),
        "batch_calls": a.get("batch_calls", 0) + b.get("batch_calls", 0),
        "batch_cost_usd": round(a.get("batch_cost_usd", 0.0) + b.get("batch_cost_usd", 0.0), 10),
        "batch_saved_usd": round(a.get("batch_saved_usd", 0.0) + b.get("batch_saved_usd", 0.0), 10),
        "estimated_calls": a.get("estimated_calls", 0) + b.get("estimated_calls", 0),
        "estimated_cost_usd": round(
            a.get("estimated_cost_usd", 0.0) + b.get("estimated_cost_usd", 0.0), 10
        ),
        "shadow_calls": a.get("shadow_calls", 0) + b.get("shadow_calls", 0),
        "shadow_cost_usd": round(a.get("shadow_cost_usd", 0.0) + b.get("shadow_cost_usd", 0.0), 10),
        "outcome_cost_usd": spent,
    }


def percentile_ms(stats: Stats, q: float) -> float | None:
    """The q-th percentile latency: the upper bound of the bucket it falls in, or the
    largest latency seen if that is lower."""
    total = sum(stats["latency_buckets"])
    if not total:
        return None
    rank = q / 100 * total
    seen = 0
    for index, count in enumerate(stats["latency_buckets"]):
        seen += count
        if seen >= rank and count:
            bound = BUCKETS_MS[index] if index < len(BUCKETS_MS) else stats["latency_ms_max"]
            return float(min(bound, stats["latency_ms_max"]))
    return float(stats["latency_ms_max"])


def summary(stats: Stats) -> dict[str, Any]:
    """What people read: rates and percentiles next to the raw counts."""
    calls = stats["calls"]
    outcomes = stats["outcomes"]
    answered = outcomes.get("success", 0) + outcomes.get("repaired", 0)
    return {
        "calls": calls,
        "outcomes": outcomes,
        "success_rate": round(answered / calls, 4) if calls else None,
        "rate_limited_rate": round(outcomes.get("rate_limited", 0) / calls, 4) if calls else None,
        "latency_ms": {
            "mean": round(stats["latency_ms_sum"] / calls, 1) if calls else None,
            "p50": percentile_ms(stats, 50),
            "p95": percentile_ms(stats, 95),
            "p99": percentile_ms(stats, 99),
            "max": round(stats["latency_ms_max"], 1),
        },
        "input_tokens": stats["input_tokens"],
        "cached_input_tokens": stats["cached_input_tokens"],
        "cache_write_tokens": stats.get("cache_write_tokens", 0),
        "output_tokens": stats["output_tokens"],
        "cost_usd": round(stats["cost_usd"], 6),
        "prompt_cache_saved_usd": round(stats.get("prompt_cache_saved_usd", 0.0), 6),
        "cache_hits": stats.get("cache_hits", 0),
        "saved_usd": round(stats.get("saved_usd", 0.0), 6),
        "batch_calls": stats.get("batch_calls", 0),
        "batch_cost_usd": round(stats.get("batch_cost_usd", 0.0), 6),
        "batch_saved_usd": round(stats.get("batch_saved_usd", 0.0), 6),
        "estimated_calls": stats.get("estimated_calls", 0),
        "estimated_cost_usd": round(stats.get("estimated_cost_usd", 0.0), 6),
        "shadow_calls": stats.get("shadow_calls", 0),
        "shadow_cost_usd": round(stats.get("shadow_cost_usd", 0.0), 6),
        "outcome_cost_usd": {
            outcome: round(usd, 6) for outcome, usd in stats.get("outcome_cost_usd", {}).items()
        },
    }


def usage_report(
    days: dict[str, dict[str, Stats]],
    *,
    first: date,
    last: date,
    by: Literal["provider", "tenant"] = "provider",
) -> dict[str, Any]:
    """Per provider (or tenant): the range's total and each day's figures (``days``: name ->
    day -> stats). The web view and ``llm-streams report`` both answer with this."""
    group = f"{by}s"
    report: dict[str, Any] = {"start": first.isoformat(), "end": last.isoformat(), group: {}}
    for name, by_day in sorted(days.items()):
        total = empty()
        for value in by_day.values():
            total = merge(total, value)
        report[group][name] = {
            "total": summary(total),
            "days": {day: summary(value) for day, value in sorted(by_day.items())},
        }
    return report


def minute_of(at: datetime) -> int:
    return int(at.timestamp() // 60)


def day_of(at: datetime) -> str:
    return at.astimezone(UTC).date().isoformat()


def minute_key(provider: str, minute: int) -> str:
    return f"{provider}|{minute}"


def day_key(provider: str, day: str) -> str:
    return f"{provider}|{day}"


def split_key(key: str) -> tuple[str, str]:
    provider, _, rest = key.partition("|")
    return provider, rest


def oldest_minute_kept(now: datetime) -> int:
    return minute_of(now) - MINUTES_KEPT


def oldest_day_kept(now: datetime) -> str:
    return (now.astimezone(UTC).date() - timedelta(days=DAYS_KEPT)).isoformat()
