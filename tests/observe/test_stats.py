"""The stats arithmetic: records add up exactly, percentiles come from the histogram, cache
hits are counted apart from calls."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from streams.models import ProviderCall, Usage
from streams.observe import stats as st

AT = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _call(outcome: str = "success", latency_ms: float = 120.0, cost: float = 0.001) -> ProviderCall:
    return ProviderCall.model_validate(
        {
            "provider": "openai",
            "model": "gpt-5.4-mini",
            "job_id": "j",
            "attempt": 1,
            "outcome": outcome,
            "latency_ms": latency_ms,
            "usage": Usage(
                input_tokens=100, cached_input_tokens=20, output_tokens=50, cost_usd=cost
            ),
            "price_version": "v",
            "at": AT,
        }
    )


def test_adding_calls_counts_outcomes_tokens_cost_and_latency() -> None:
    record = None
    for call in (_call(), _call("rate_limited", 40.0), _call(latency_ms=900.0)):
        record = st.add(record, call)
    assert record is not None
    assert record["calls"] == 3
    assert record["outcomes"] == {"success": 2, "rate_limited": 1}
    assert record["input_tokens"] == 300
    assert record["cached_input_tokens"] == 60
    assert record["output_tokens"] == 150
    assert record["cost_usd"] == 0.003
    assert record["latency_ms_max"] == 900.0
    assert sum(record["latency_buckets"]) == 3


def test_add_does_not_change_the_record_it_is_given() -> None:
    first = st.add(None, _call())
    st.add(first, _call())
    assert first["calls"] == 1


def test_a_cache_hit_is_counted_apart_with_what_it_saved() -> None:
    record = st.add(None, _call("cache_hit", 0.0, cost=0.25))
    assert record["calls"] == 0
    assert record["cache_hits"] == 1
    assert record["saved_usd"] == 0.25
    assert record["cost_usd"] == 0.0


def test_merge_is_the_sum_of_its_parts() -> None:
    a = st.add(st.add(None, _call()), _call("error", 3000.0))
    b = st.add(None, _call(latency_ms=10.0))
    merged = st.merge(a, b)
    assert merged["calls"] == 3
    assert merged["outcomes"] == {"success": 2, "error": 1}
    assert merged["latency_ms_max"] == 3000.0
    assert merged["latency_ms_sum"] == a["latency_ms_sum"] + b["latency_ms_sum"]
    assert st.merge(st.empty(), a) == a


def test_percentiles_are_bucket_bounds_capped_by_the_largest_latency() -> None:
    record = st.empty()
    for latency in [30.0] * 90 + [700.0] * 9 + [4000.0]:
        record = st.add(record, _call(latency_ms=latency))
    assert st.percentile_ms(record, 50) == 50.0
    assert st.percentile_ms(record, 95) == 1000.0
    assert st.percentile_ms(record, 99) == 1000.0
    assert st.percentile_ms(record, 100) == 4000.0
    assert st.percentile_ms(st.empty(), 50) is None


def test_summary_gives_rates_and_none_without_calls() -> None:
    record = st.add(st.add(None, _call()), _call("rate_limited"))
    summary = st.summary(record)
    assert summary["success_rate"] == 0.5
    assert summary["rate_limited_rate"] == 0.5
    assert st.summary(st.empty())["success_rate"] is None


def test_a_usage_report_totals_its_days() -> None:
    day = st.add(None, _call())
    report = st.usage_report(
        {"openai": {"2026-11-29": day, "2026-11-30": day}},
        first=date(2026, 11, 29),
        last=date(2026, 11, 30),
    )
    openai = report["providers"]["openai"]
    assert openai["total"]["calls"] == 2
    assert sorted(openai["days"]) == ["2026-11-29", "2026-11-30"]


def test_keys_and_horizons() -> None:
    minute = st.minute_of(AT)
    assert st.split_key(st.minute_key("openai", minute)) == ("openai", str(minute))
    assert st.day_of(AT) == "2026-11-30"
    assert st.oldest_minute_kept(AT) == minute - st.MINUTES_KEPT
    assert st.oldest_day_kept(AT) < "2026-11-30"


def test_estimated_spend_is_part_of_the_cost_and_told_apart() -> None:
    cut_off = _call("deadline_exceeded", cost=0.004).model_copy(update={"usage_estimated": True})
    record = st.add(st.add(None, _call(cost=0.001)), cut_off)
    figures = st.summary(st.merge(record, st.empty()))
    assert figures["cost_usd"] == pytest.approx(0.005), "budgets count both"
    assert figures["estimated_calls"] == 1
    assert figures["estimated_cost_usd"] == pytest.approx(0.004)


def test_a_shadow_call_is_on_the_bill_and_out_of_production_figures() -> None:
    shadow = _call(latency_ms=5000.0, cost=0.002).model_copy(update={"lane": "shadow"})
    record = st.add(st.add(None, _call(cost=0.001)), shadow)
    figures = st.summary(st.merge(record, st.empty()))
    assert figures["cost_usd"] == pytest.approx(0.003), "budgets count both"
    assert figures["shadow_calls"] == 1
    assert figures["shadow_cost_usd"] == pytest.approx(0.002)
    assert figures["calls"] == 1
    assert figures["latency_ms"]["max"] == 120.0, "production's latency alone"
    assert figures["input_tokens"] == 100


def test_cost_by_outcome_sets_a_repair_beside_a_fallback() -> None:
    first = _call("invalid_output", cost=0.001)
    repaired = _call("repaired", cost=0.0015)
    fallback = _call(cost=0.004)  # the answer another provider gave
    record = st.add(st.add(st.add(None, first), repaired), fallback)
    figures = st.summary(st.merge(record, st.add(None, _call("repaired", cost=0.0005))))
    assert figures["outcome_cost_usd"] == {
        "invalid_output": pytest.approx(0.001),
        "repaired": pytest.approx(0.002),
        "success": pytest.approx(0.004),
    }
    assert figures["outcomes"]["repaired"] == 2
