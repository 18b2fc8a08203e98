"""Prometheus text from the stats and the router's live state."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from streams.config.settings import Settings
from streams.observe import stats as st
from streams.observe.metrics import render_metrics
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
