"""The stats aggregator's arithmetic: a batch of attempts becomes one partial sum per provider
and minute, exact and with its newest failures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from streams.models import ProviderCall, Usage
from streams.observe.aggregate import partials
from streams.observe.stats import RECENT_KEPT, minute_of

AT = datetime(2026, 12, 1, 9, 0, 30, tzinfo=UTC)


def _call(
    provider: str, outcome: str = "success", *, at: datetime = AT, job: str = "j"
) -> ProviderCall:
    return ProviderCall.model_validate(
        {
            "provider": provider,
            "model": "m",
            "job_id": job,
            "attempt": 1,
            "outcome": outcome,
            "latency_ms": 100.0,
            "usage": Usage(input_tokens=10, output_tokens=5, cost_usd=0.5),
            "price_version": "v",
            "at": at,
        }
    )


def test_one_partial_per_provider_and_minute_with_exact_sums() -> None:
    later = AT + timedelta(minutes=1)
    calls = [
        _call("openai"),
        _call("openai", "rate_limited"),
        _call("openai", at=later),
        _call("deepseek"),
    ]
    by_key = {(p.provider, p.minute): p for p in partials(calls)}
    assert set(by_key) == {
        ("openai", minute_of(AT)),
        ("openai", minute_of(later)),
        ("deepseek", minute_of(AT)),
    }
    first = by_key[("openai", minute_of(AT))].stats
    assert first["calls"] == 2
    assert first["outcomes"] == {"success": 1, "rate_limited": 1}
    assert first["cost_usd"] == 1.0
    assert sum(p.stats["calls"] for p in by_key.values()) == len(calls)


def test_failures_are_kept_newest_first_and_bounded() -> None:
    calls = [_call("openai", "error", job=f"j{n}") for n in range(RECENT_KEPT + 5)]
    (partial,) = partials(calls)
    assert len(partial.failures) == RECENT_KEPT
    assert partial.failures[0]["job_id"] == f"j{RECENT_KEPT + 4}", "the newest first"
    assert all(f["outcome"] == "error" for f in partial.failures)


def test_successes_and_cache_hits_are_not_failures() -> None:
    (partial,) = partials([_call("openai"), _call("openai", "cache_hit")])
    assert partial.failures == []
    assert partial.stats["cache_hits"] == 1


def test_each_tenant_s_calls_are_summed_apart() -> None:
    calls = [_call("openai").model_copy(update={"tenant": t}) for t in ("bulk", "bulk", "fresh")]
    by_tenant = {p.tenant: p.stats["calls"] for p in partials(calls)}
    assert by_tenant == {"bulk": 2, "fresh": 1}
