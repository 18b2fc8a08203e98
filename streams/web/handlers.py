"""What each endpoint does, as the methods of one class; the route table (``routes``) says
which path, method, body and response each one has.

Reads of the stats tables are forwarded to the worker that holds them, so every worker gives
the same figures. State changes are commands on the control topic, never one worker's memory.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import httpx
import openapi_ui_bundles.redoc
import psutil
from pydantic import BaseModel

from streams.config.runtime import RUNTIME_KEYS
from streams.config.slices import WebConfig
from streams.control.commands import publish
from streams.control.follower import ControlFollower
from streams.deadline import Deadline
from streams.errors import ConfigurationError, EnrichmentFailed, ProviderError, RecordRejected
from streams.kafka.outage import broker_reachable
from streams.kafka.producer import Producer
from streams.kafka.publisher import Outgoing, publish_all
from streams.kafka.topics import Topics
from streams.models import ControlCommand, EnrichedJob, RawJob, utcnow
from streams.observe import stats as st
from streams.observe.dead_letters import DeadLetterFollower
from streams.observe.drift import DriftFollower, DriftReport
from streams.observe.flow import FlowUnavailable, JobFlow
from streams.observe.job import JobLookup, JobReport
from streams.observe.metrics import render_metrics
from streams.observe.tables import StatsStore
from streams.pipeline.entry import Pipeline
from streams.providers.base import EnrichRequest
from streams.shadow.source import read_comparison
from streams.vocab import PROVIDER_NAMES
from streams.web import bodies as b
from streams.web.health import (
    consumer_lag,
    passive_health,
    provider_view,
    service_status,
)
from streams.web.openapi import docs_page, document

__all__ = ["Call", "Handlers", "Page", "Problem", "Reply"]

STARTED = time.monotonic()
PROVIDER_TEST_TIMEOUT_S = 15.0
FORWARD_TIMEOUT_S = 30.0
REDOC_PAGE = (
    b"<!doctype html><html><head><meta charset='utf-8'><title>API</title></head><body>"
    b"<redoc spec-url='/openapi.json'></redoc><script src='/redoc.standalone.js'></script>"
    b"</body></html>"
)


class Problem(Exception):
    """An answer other than the route's own: a 4xx with what was wrong."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.field = status, message, field


@dataclass(frozen=True, kw_only=True)
class Call:
    """One request, parsed by the route table: its body, query and path parameter."""

    request: Any
    body: Any = None
    query: Any = None
    name: str = ""  # the {name} of /providers/{name}/...
    job_id: str = ""  # the {job_id} of /jobs/{job_id}


@dataclass(frozen=True, kw_only=True)
class Reply:
    """A response model with a status other than the route's, or with headers."""

    body: BaseModel
    status: int
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Page:
    """Bytes that are not JSON (HTML, JavaScript, Prometheus text)."""

    content: bytes
    content_type: str


class Handlers:
    def __init__(
        self,
        *,
        app: Any,
        config: WebConfig,
        topics: Topics,
        producer: Producer,
        control: ControlFollower,
        stats: StatsStore,
        pipeline: Pipeline,
        flow: JobFlow,
        dead_letters: DeadLetterFollower,
        drift: DriftFollower,
        job_lookup: JobLookup,
    ) -> None:
        self.app = app
        self.config = config
        self.topics = topics
        self.producer = producer
        self.control = control
        self.stats = stats
        self.pipeline = pipeline
        self.flow = flow
        self.dead_letters = dead_letters
        self.drift = drift
        self.job_lookup = job_lookup

    # --- health and status ----------------------------------------------------------------

    async def health(self, call: Call) -> Reply:
        process = psutil.Process()
        memory = process.memory_info()
        rss_mb, vms_mb = round(memory.rss / 2**20, 1), round(memory.vms / 2**20, 1)
        percent = round(process.memory_percent(), 2)
        broker_ok = await broker_reachable(self.app)
        try:
            lag = await self._lag()
        except Exception:  # a worker still starting has no consumer yet
            lag = {}
        routing = self.pipeline.routing()
        providers: dict[str, b.HealthState] = {
            p: passive_health(routing.providers[p], self.stats)["state"] for p in PROVIDER_NAMES
        }
        status = service_status(
            broker_ok=broker_ok, intake_paused=routing.intake_paused, providers=providers
        )
        uptime_s = _uptime_s()
        health = b.Health(
            status=status,
            service_status=status,
            uptime_s=uptime_s,
            uptime=uptime_s,
            memory=b.Memory(rss_mb=rss_mb, vms_mb=vms_mb, percent=percent),
            memory_usage=b.SeedMemory(rss=rss_mb, vms=vms_mb, percent=percent),
            broker=b.Broker(connected=broker_ok, bootstrap=self.config.cluster.bootstrap_servers),
            consumer_lag=lag,
            assigned_partitions=len(self.app.consumer.assignment()) if self.app.consumer else 0,
            providers=providers,
            total_providers=len(routing.providers),
            enabled_providers=sum(p.enabled for p in routing.providers.values()),
            total_requests=self.pipeline.finished,
            timestamp=datetime.now(UTC),
        )
        return Reply(body=health, status=503 if status == "unhealthy" else 200)

    async def status(self, call: Call) -> b.Status:
        routing = self.pipeline.routing()
        return b.Status.model_validate(
            {
                "app_id": self.config.app_id,
                "uptime_s": _uptime_s(),
                "rebalancing": bool(self.app.rebalancing),
                "provider_chain": list(routing.chain),
                "routing_strategy": routing.strategy,
                "intake_paused": routing.intake_paused,
                "jobs_in_flight": routing.in_flight,
                "control_replayed": self.control.ready.is_set(),
                "repost_cache": self.pipeline.cache_status(),
                "budget": asdict(routing.total_budget),
                "providers": {name: p.gate() for name, p in routing.providers.items()},
                "batch_lane": self.pipeline.batch_status(),
                "tenants": self.pipeline.tenant_status(),
            }
        )

    # --- statistics and reports -------------------------------------------------------------

    async def statistics(self, call: Call) -> b.Statistics:
        minutes = min(call.query.minutes, st.MINUTES_KEPT)
        since = st.minute_of(datetime.now(UTC)) - minutes + 1
        series = self.stats.minutes_since(since)
        today = st.day_of(datetime.now(UTC))
        tenants = self.stats.days_between(today, today, by="tenant")
        return b.Statistics.model_validate(
            {
                "recent_failures": self.stats.recent_failures(),
                "totals": {p: st.summary(v) for p, v in self.stats.totals_by_provider().items()},
                "per_minute": {
                    p: [
                        {"minute": datetime.fromtimestamp(m * 60, UTC).isoformat(), **st.summary(v)}
                        for m, v in sorted(by_minute.items())
                    ]
                    for p, by_minute in series.items()
                },
                "tenants_today": {t: st.summary(days[today]) for t, days in tenants.items()},
            }
        )

    async def jobs(self, call: Call) -> b.JobFlow:
        try:
            flow = await self.flow.read(minutes=call.query.minutes)
        except FlowUnavailable as exc:
            raise Problem(503, str(exc)) from None
        stages = self.dead_letters.per_minute()
        totals = self.stats.totals_by_provider().values()
        hits = sum(t.get("cache_hits", 0) for t in totals)
        successes = sum(
            t["outcomes"].get("success", 0) + t["outcomes"].get("repaired", 0) for t in totals
        )
        return b.JobFlow(
            totals=_job_counts(flow.totals),
            lag=b.ConsumerLag(
                total=sum(flow.lag.values()),
                partitions={str(p): lag for p, lag in sorted(flow.lag.items())},
            ),
            per_minute=[
                b.JobsMinute(
                    minute=_iso(m["minute"] * 60),
                    dead_letter_stages=stages.get(m["minute"], {}),
                    **_job_counts(m).model_dump(),
                )
                for m in flow.per_minute
            ],
            recent_dead_letters=[
                b.DeadLetterReason(
                    at=_iso(r["at_ms"] / 1000),
                    **{k: v for k, v in r.items() if k != "at_ms"},
                )
                for r in self.dead_letters.recent()
            ],
            repost_cache=b.RepostCacheFigures(
                hits=hits,
                hit_rate=round(hits / (hits + successes), 4) if hits + successes else None,
                saved_usd=round(sum(t.get("saved_usd", 0.0) for t in totals), 6),
            ),
        )

    async def job(self, call: Call) -> JobReport:
        report = await self.job_lookup.find(call.job_id)
        if report is None:
            days = self.job_lookup.look_back_s / 86400
            raise Problem(404, f"no record of job {call.job_id!r} in the last {days:g} days")
        return report

    async def drift_report(self, call: Call) -> DriftReport:
        return self.drift.report()

    async def shadow(self, call: Call) -> b.ShadowComparison:
        until = utcnow()
        since = until - timedelta(days=call.query.days)
        reports = await read_comparison(
            self.config.cluster,
            shadow_topic=self.topics.shadow.name,
            enriched_topic=self.topics.enriched.name,
            since=since,
            until=until,
            candidate=call.query.candidate,
        )
        return b.ShadowComparison(since=since, until=until, candidates=reports)

    async def statistics_reset(self, call: Call) -> b.ResetAccepted:
        resets = [Outgoing(self.topics.stats_resets.name, p, b"{}") for p in PROVIDER_NAMES]
        await publish_all(self.producer, resets)
        await self._command(ControlCommand(action="reset_stats"))
        return b.ResetAccepted(reset=list(PROVIDER_NAMES))

    async def usage_report(self, call: Call) -> b.UsageReport:
        return self._usage_report(call.query)

    def _usage_report(self, asked: b.UsageRequest) -> b.UsageReport:
        first, last = asked.start, asked.end
        days = self.stats.days_between(first.isoformat(), last.isoformat(), by=asked.by)
        report = st.usage_report(days, first=first, last=last, by=asked.by)
        return b.UsageReport.model_validate(report)

    async def usage_report_posted(self, call: Call) -> b.UsageReport:
        # Faust forwards a request to the worker holding the tables without its body: ask
        # that worker with the equivalent GET instead.
        asked = call.body
        holder = self.app.router.key_store(self.stats.totals.name, "stats")
        if str(holder).rstrip("/") == str(self.app.conf.canonical_url).rstrip("/"):
            return self._usage_report(asked)
        query = {"start": asked.start.isoformat(), "end": asked.end.isoformat(), "by": asked.by}
        async with httpx.AsyncClient(timeout=FORWARD_TIMEOUT_S) as client:
            response = await client.get(f"{str(holder).rstrip('/')}/reports/usage", params=query)
        if response.status_code != 200:
            raise Problem(502, f"the worker holding the statistics answered {response.status_code}")
        return b.UsageReport.model_validate(response.json())

    # --- providers ----------------------------------------------------------------------------

    async def providers(self, call: Call) -> b.ProviderList:
        routing = self.pipeline.routing()
        views = [provider_view(routing.providers[p], self.stats) for p in PROVIDER_NAMES]
        return b.ProviderList.model_validate({"providers": views})

    async def provider(self, call: Call) -> b.ProviderView:
        status = self.pipeline.routing().providers[call.name]
        return b.ProviderView.model_validate(provider_view(status, self.stats))

    async def provider_health(self, call: Call) -> b.ProviderHealth:
        active = await self.pipeline.adapter(call.name).health()
        return b.ProviderHealth.model_validate(
            {
                "name": call.name,
                "active": {"ok": active.ok, "detail": active.detail},
                "passive": self._passive(call.name),
            }
        )

    async def provider_enable(self, call: Call) -> b.Switched:
        return await self._switch(call.name, "enable")

    async def provider_disable(self, call: Call) -> b.Switched:
        return await self._switch(call.name, "disable")

    async def provider_test(self, call: Call) -> b.ProviderTest:
        sample = RawJob(
            job_id=f"test-{uuid.uuid4().hex[:8]}",
            title="Test call",
            description="Junior Python developer, remote. Reply with the JSON.",
        )
        adapter = self.pipeline.adapter(call.name)
        began = time.monotonic()
        try:
            completion = await adapter.enrich(
                EnrichRequest(job=sample, max_tokens=512),
                deadline=Deadline.after(PROVIDER_TEST_TIMEOUT_S),
            )
        except (ProviderError, EnrichmentFailed) as exc:  # the test ran; the call failed
            error = b.ErrorInfoBody(type=type(exc).__name__, message=str(exc))
            return b.ProviderTest(name=call.name, ok=False, error=error)
        return b.ProviderTest(
            name=call.name,
            ok=True,
            model=completion.model,
            latency_ms=round((time.monotonic() - began) * 1000, 1),
            usage=completion.usage,
        )

    # --- configuration ----------------------------------------------------------------------

    async def config_view(self, call: Call) -> b.ConfigView:
        current = self.control.state.config.view()
        return b.ConfigView(settings=current, runtime_keys=sorted(RUNTIME_KEYS))

    async def config_update(self, call: Call) -> b.PatchAccepted:
        patch: dict[str, Any] = call.body.root
        try:
            self.control.state.config.patched(patch)
        except ConfigurationError as exc:
            raise Problem(422, str(exc), ",".join(sorted(patch))) from None
        await self._command(ControlCommand(action="set_config", config=patch))
        return b.PatchAccepted(patch=sorted(patch))

    # --- synchronous processing ----------------------------------------------------------------

    async def process(self, call: Call) -> Reply:
        span = self.pipeline.requested(call.request.headers, method="POST", route="/process")
        result = await span.around(self._process_one(call.body))
        status = 200 if result.ok else 422 if result.caller_error else 502
        return Reply(body=result, status=status)

    async def process_batch(self, call: Call) -> b.BatchResult:
        items = call.body.items
        if len(items) > self.config.process_batch_max:
            raise Problem(422, f"items: at most {self.config.process_batch_max} per batch", "items")
        span = self.pipeline.requested(call.request.headers, method="POST", route="/process/batch")
        return b.BatchResult(results=await span.around(self._process_all(items)))

    async def _process_all(self, items: list[b.ProcessRequest]) -> list[b.ProcessResult]:
        return await asyncio.gather(*map(self._process_one, items))

    async def _process_one(self, item: b.ProcessRequest) -> b.ProcessResult:
        """The job through the same path as a Kafka record (repost cache, router, audit
        events), without publishing the result to the enriched topic."""
        job = item.as_job()
        try:
            enriched = await self.pipeline.process(job)
        except RecordRejected as exc:
            return b.ProcessResult(
                job_id=job.job_id,
                ok=False,
                error=str(exc),
                error_type=type(exc).__name__,
                caller_error=True,
                attempts=[],
            )
        if not isinstance(enriched, EnrichedJob):
            failure = enriched
            return b.ProcessResult(
                job_id=job.job_id,
                ok=False,
                error=str(failure),
                error_type=type(failure).__name__,
                caller_error=isinstance(failure, EnrichmentFailed) and failure.caller_error,
                attempts=getattr(failure, "attempts", []),
            )
        return b.ProcessResult(
            job_id=job.job_id,
            ok=True,
            provider=enriched.provider,
            model=enriched.model,
            enrichment=enriched.enrichment,
            usage=enriched.usage,
            latency_ms=round(enriched.latency_ms, 1),
            cached=enriched.cached,
            attempts=enriched.attempts,
        )

    # --- pages ---------------------------------------------------------------------------------

    async def dashboard(self, call: Call) -> Page:
        return Page(content=_asset("index.html"), content_type="text/html")

    async def dashboard_js(self, call: Call) -> Page:
        return Page(content=_asset("dashboard.js"), content_type="application/javascript")

    async def openapi_json(self, call: Call) -> Page:
        return Page(content=json.dumps(document()).encode(), content_type="application/json")

    async def docs(self, call: Call) -> Page:
        return Page(content=docs_page(document()).encode(), content_type="text/html")

    async def redoc(self, call: Call) -> Page:
        return Page(content=REDOC_PAGE, content_type="text/html")

    async def redoc_js(self, call: Call) -> Page:
        return Page(content=_redoc_script(), content_type="application/javascript")

    async def metrics(self, call: Call) -> Page:
        lane = self.pipeline.batch_status()
        body, content_type = render_metrics(
            totals=self.stats.totals_by_provider(),
            routing=self.pipeline.routing(),
            lag=await self._lag(),
            lane=lane,
            drift={found.field: found.psi for found in self.drift.report().fields},
            tenants=self.pipeline.tenant_status(),
        )
        return Page(content=body, content_type=content_type)

    # --- helpers ---------------------------------------------------------------------------------

    def _passive(self, provider: str) -> dict[str, Any]:
        return passive_health(self.pipeline.routing().providers[provider], self.stats)

    async def _lag(self) -> dict[str, int]:
        return await consumer_lag(self.app, self.topics.raw.name)

    async def _switch(self, name: str, action: str) -> b.Switched:
        command = ControlCommand.model_validate({"action": action, "provider": name})
        await self._command(command)
        return b.Switched(action=action, provider=name)

    async def _command(self, command: ControlCommand) -> None:
        await publish(
            command,
            config=self.control.state.config,
            cluster=self.config.cluster,
            topic=self.config.control_topic,
        )


def _job_counts(counts: dict[str, int]) -> b.JobCounts:
    return b.JobCounts(
        received=counts["in"], enriched=counts["enriched"], dead_lettered=counts["dead_lettered"]
    )


def _iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat()


def _uptime_s() -> float:
    return round(time.monotonic() - STARTED, 1)


@functools.cache
def _redoc_script() -> bytes:
    return (openapi_ui_bundles.redoc.static_path / "redoc.standalone.js").read_bytes()


@functools.cache
def _asset(name: str) -> bytes:
    return resources.files("streams.web.dashboard").joinpath(name).read_bytes()
