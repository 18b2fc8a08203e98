"""``GET /metrics``: Prometheus text built at scrape time from the stats tables and the
router's status (prometheus-client renders it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from streams.models import DEFAULT_TENANT
from streams.observe import stats as st
from streams.pipeline.batch.lane import BatchLaneStatus
from streams.pipeline.waiting.lane import TenantStatus
from streams.routing.status import RoutingStatus
from streams.vocab import TOTAL_BUDGET

__all__ = ["render_metrics"]

CIRCUIT_STATES = ("closed", "half_open", "open")
OTHER_TENANTS = "other"  # the label of every tenant not configured, but the default
# What generate_latest writes (aiohttp sets the charset itself, and refuses it in here).
PROMETHEUS_TEXT = "text/plain; version=0.0.4"


class _Snapshot(Collector):
    def __init__(
        self,
        totals: dict[str, st.Stats],
        routing: RoutingStatus,
        lag: dict[str, int],
        lane: Mapping[str, BatchLaneStatus],
        drift: Mapping[str, float | None],
        tenants: Mapping[str, TenantStatus],
    ) -> None:
        self.totals, self.routing, self.lag, self.lane = totals, routing, lag, lane
        self.drift, self.tenants = drift, tenants

    def collect(self) -> Any:
        calls = CounterMetricFamily(
            "llm_provider_calls", "Provider attempts by outcome", labels=["provider", "outcome"]
        )
        tokens = CounterMetricFamily(
            "llm_provider_tokens", "Tokens by direction", labels=["provider", "direction"]
        )
        cost = CounterMetricFamily("llm_provider_cost_usd", "Cost in USD", labels=["provider"])
        latency = HistogramMetricFamily(
            "llm_provider_latency_seconds", "Attempt latency", labels=["provider"]
        )
        for provider, record in sorted(self.totals.items()):
            for outcome, count in sorted(record["outcomes"].items()):
                calls.add_metric([provider, outcome], count)
            tokens.add_metric([provider, "input"], record["input_tokens"])
            tokens.add_metric([provider, "output"], record["output_tokens"])
            cost.add_metric([provider], record["cost_usd"])
            cumulative, buckets = 0, []
            for bound, count in zip(
                [*st.BUCKETS_MS, float("inf")], record["latency_buckets"], strict=True
            ):
                cumulative += count
                le = "+Inf" if bound == float("inf") else f"{bound / 1000:g}"
                buckets.append((le, cumulative))
            latency.add_metric([provider], buckets, record["latency_ms_sum"] / 1000)
        circuit = GaugeMetricFamily(
            "llm_provider_circuit_state",
            "1 for the circuit's current state",
            labels=["provider", "state"],
        )
        enabled = GaugeMetricFamily("llm_provider_enabled", "1 if enabled", labels=["provider"])
        in_flight = GaugeMetricFamily(
            "llm_provider_calls_in_flight", "Calls in flight on this worker", labels=["provider"]
        )
        spent = GaugeMetricFamily(
            "llm_spent_today_usd", "USD spent since 00:00 UTC by the group", labels=["budget"]
        )
        budget = GaugeMetricFamily(
            "llm_budget_usd", "Daily budget in USD (LLM_BUDGETS), where set", labels=["budget"]
        )
        over = GaugeMetricFamily(
            "llm_provider_over_budget", "1 while skipped for a spent budget", labels=["provider"]
        )
        total = self.routing.total_budget
        spent.add_metric([TOTAL_BUDGET], total.spent_today_usd)
        if total.daily_usd is not None:
            budget.add_metric([TOTAL_BUDGET], total.daily_usd)
        for provider, status in sorted(self.routing.providers.items()):
            for state in CIRCUIT_STATES:
                circuit.add_metric([provider, state], float(status.circuit.state == state))
            enabled.add_metric([provider], float(status.enabled))
            in_flight.add_metric([provider], status.in_flight)
            over.add_metric([provider], float(status.budget.over_budget))
            spent.add_metric([provider], status.budget.spent_today_usd)
            if status.budget.daily_usd is not None:
                budget.add_metric([provider], status.budget.daily_usd)
        lag = GaugeMetricFamily(
            "llm_consumer_lag_records", "Records of jobs.raw not yet read", labels=["partition"]
        )
        for partition, records in sorted(self.lag.items()):
            lag.add_metric([partition], records)
        metrics: list[Metric] = [calls, tokens, cost, latency, circuit, enabled, in_flight, lag]
        metrics += [spent, budget, over, *self._batch_lane(), self._drift(), *self._tenants()]
        yield from metrics

    def _tenants(self) -> list[Metric]:
        """Per tenant, of bounded cardinality: the configured ones and ``default`` by name,
        every other tenant's figures summed as ``other``."""
        labels = ["tenant"]
        waiting = GaugeMetricFamily(
            "llm_tenant_jobs_waiting", "Jobs in this worker's waiting lane", labels=labels
        )
        in_flight = GaugeMetricFamily(
            "llm_tenant_jobs_in_flight", "Jobs being answered on this worker", labels=labels
        )
        spent = GaugeMetricFamily(
            "llm_tenant_spent_today_usd", "USD spent since 00:00 UTC by the group", labels=labels
        )
        budget = GaugeMetricFamily(
            "llm_tenant_budget_usd", "Daily budget in USD (LLM_TENANTS), where set", labels=labels
        )
        summed: dict[str, list[float]] = {}
        for name, status in self.tenants.items():
            label = name if status.configured or name == DEFAULT_TENANT else OTHER_TENANTS
            figures = summed.setdefault(label, [0, 0, 0.0])
            figures[0] += status.waiting
            figures[1] += status.in_flight
            figures[2] += status.spent_today_usd
            if status.daily_budget_usd is not None:
                budget.add_metric([label], status.daily_budget_usd)
        for label, (jobs_waiting, jobs_in_flight, usd) in sorted(summed.items()):
            waiting.add_metric([label], jobs_waiting)
            in_flight.add_metric([label], jobs_in_flight)
            spent.add_metric([label], usd)
        return [waiting, in_flight, spent, budget]

    def _drift(self) -> Metric:
        psi = GaugeMetricFamily(
            "llm_drift_psi",
            "Population stability index of the field's values, the latest window against "
            "the reference (watch at 0.1, act at 0.25)",
            labels=["field"],
        )
        for field, index in self.drift.items():
            if index is not None:
                psi.add_metric([field], index)
        return psi

    def _batch_lane(self) -> list[Metric]:
        waiting = GaugeMetricFamily(
            "llm_batch_jobs_waiting",
            "Batch-lane jobs not yet in a batch, on this worker's partitions",
            labels=["provider"],
        )
        out = GaugeMetricFamily(
            "llm_batches_out",
            "Batches sent and not finished, on this worker's partitions",
            labels=["provider"],
        )
        oldest = GaugeMetricFamily(
            "llm_batch_oldest_wait_seconds",
            "The longest a waiting job has waited",
            labels=["provider"],
        )
        for provider, state in sorted(self.lane.items()):
            waiting.add_metric([provider], state.jobs_waiting)
            out.add_metric([provider], state.batches_out)
            oldest.add_metric([provider], state.oldest_wait_s)
        saved = CounterMetricFamily(
            "llm_batch_saved_usd",
            "What the batch lane's calls would have cost more live",
            labels=["provider"],
        )
        for provider, record in sorted(self.totals.items()):
            saved.add_metric([provider], record.get("batch_saved_usd", 0.0))
        return [waiting, out, oldest, saved]


def render_metrics(
    *,
    totals: dict[str, st.Stats],
    routing: RoutingStatus,
    lag: dict[str, int],
    lane: Mapping[str, BatchLaneStatus] | None = None,
    drift: Mapping[str, float | None] | None = None,
    tenants: Mapping[str, TenantStatus] | None = None,
) -> tuple[bytes, str]:
    """``drift``: each field's PSI (None: too few answers to say)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(totals, routing, lag, lane or {}, drift or {}, tenants or {}))
    return generate_latest(registry), PROMETHEUS_TEXT
