"""Prometheus text from the stats and the router's live state."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from streams.config.settings import Settings
from streams.observe import stats as st
from streams.observe.metrics import render_metrics
from streams.pipeline.waiting.lane import TenantStatus
from streams.providers.build import build_providers
from streams.routing.router import Router
from tests.observe.test_stats import _call


async def test_the_figures_render_as_counters_histograms_and_gauges() -> None:
    settings = Settings()
    providers = build_providers(settings.provider)
    try:
        router = Router(settings.routing(), providers)
        router.set_enabled("gemini", False)
        record = st.empty()
        for latency in (40.0, 400.0, 400.0):
            record = st.add(record, _call(latency_ms=latency))
        body, content_type = render_metrics(
            totals={"openai": record}, routing=router.status(), lag={"0": 7}
        )
    finally:
        for provider in providers.values():
            await provider.aclose()
    assert content_type.startswith("text/plain")
    samples = [s for f in text_string_to_metric_families(body.decode()) for s in f.samples]

    def values(name: str, *labels: str) -> dict[tuple[str, ...], float]:
        return {tuple(s.labels[k] for k in labels): s.value for s in samples if s.name == name}

    assert values("llm_provider_calls_total", "provider", "outcome")[("openai", "success")] == 3
    buckets = {
        le: value for (le,), value in values("llm_provider_latency_seconds_bucket", "le").items()
    }
    assert buckets["0.05"] == 1
    assert buckets["0.5"] == 3, "buckets are cumulative"
    assert buckets["+Inf"] == 3
    enabled = values("llm_provider_enabled", "provider")
    assert enabled[("gemini",)] == 0
    assert enabled[("openai",)] == 1
    assert values("llm_provider_circuit_state", "provider", "state")[("openai", "closed")] == 1
    assert values("llm_consumer_lag_records", "partition") == {("0",): 7}


def test_tenants_are_labelled_by_name_only_when_configured_or_the_default() -> None:
    tenants = {
        "bulk": TenantStatus(configured=True, waiting=3, daily_budget_usd=5, spent_today_usd=5),
        "default": TenantStatus(in_flight=2),
        "team-a": TenantStatus(in_flight=1, spent_today_usd=0.25),
        "team-b": TenantStatus(waiting=4, in_flight=1, spent_today_usd=0.5),
    }
    router = Router(Settings().routing(), {})
    body, _ = render_metrics(totals={}, routing=router.status(), lag={}, tenants=tenants)
    samples = [s for f in text_string_to_metric_families(body.decode()) for s in f.samples]

    def by_tenant(name: str) -> dict[str, float]:
        return {s.labels["tenant"]: s.value for s in samples if s.name == name}

    assert by_tenant("llm_tenant_jobs_waiting") == {"bulk": 3, "default": 0, "other": 4}
    assert by_tenant("llm_tenant_jobs_in_flight") == {"bulk": 0, "default": 2, "other": 2}
    assert by_tenant("llm_tenant_spent_today_usd") == {"bulk": 5, "default": 0, "other": 0.75}
    assert by_tenant("llm_tenant_budget_usd") == {"bulk": 5}
