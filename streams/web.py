"""The web view, on Faust's web server on every worker: health, status, statistics, usage
reports, providers, configuration, synchronous processing and Prometheus metrics.

Reads of the stats tables are forwarded to the worker that holds them (``table_route``), so
every worker gives the same figures. State changes are commands on the control topic, never
one worker's memory, and need ``Authorization: Bearer <LLM_SERVICE_ADMIN_TOKEN>``.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import html
import json
import time
import uuid
from datetime import UTC, date, datetime
from importlib import resources
from typing import Any

import psutil
from faust.web import View
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from streams import openapi
from streams import stats as st
from streams.agents import Enricher
from streams.control import RUNTIME_KEYS, ControlFollower, apply_patch, publish
from streams.errors import ConfigurationError, EnrichmentFailed, ProviderError
from streams.metrics import render_metrics
from streams.models import ControlCommand, JobOptions, RawJob
from streams.providers import EnrichRequest
from streams.router import Router
from streams.settings import PROVIDER_NAMES, ProviderName, Settings
from streams.topics import Topics

STARTED = time.monotonic()
PASSIVE_WINDOW_MIN = 5


class ProcessRequest(BaseModel):
    """One job, or a free-form prompt treated as a job's text."""

    model_config = ConfigDict(extra="forbid")

    job: RawJob | None = None
    prompt: str | None = Field(default=None, min_length=1, max_length=100_000)
    max_tokens: int | None = Field(default=None, ge=16, le=65536)
    temperature: float | None = Field(default=None, ge=0, le=2)
    preferred_provider: ProviderName | None = None

    @model_validator(mode="after")
    def _one_input(self) -> ProcessRequest:
        if (self.job is None) == (self.prompt is None):
            raise ValueError("give exactly one of 'job' and 'prompt'")
        return self

    def as_job(self) -> RawJob:
        job = self.job or RawJob(
            job_id=f"prompt-{uuid.uuid4().hex[:12]}",
            title=(self.prompt or "").strip().splitlines()[0][:500] or "prompt",
            description=self.prompt or "",
        )
        overrides = {
            k: v
            for k, v in {
                "max_tokens": self.max_tokens,
                "temperature": self.temperature,
                "preferred_provider": self.preferred_provider,
            }.items()
            if v is not None
        }
        if not overrides:
            return job
        options = (job.options or JobOptions()).model_copy(update=overrides)
        return job.model_copy(update={"options": options})


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[ProcessRequest] = Field(min_length=1)


class UsageRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: date
    end: date

    @model_validator(mode="after")
    def _ordered(self) -> UsageRequest:
        if self.end < self.start:
            raise ValueError("'end' is before 'start'")
        if (self.end - self.start).days > st.DAYS_KEPT:
            raise ValueError(f"a report covers at most {st.DAYS_KEPT} days")
        return self


def post_only(handler: Any) -> type[View]:
    """A view class answering POST with ``handler(view, request, **match_info)``."""

    class PostView(View):
        async def post(self, request: Any, **match_info: Any) -> Any:
            return await handler(self, request, **match_info)

    return PostView


def install(
    app: Any,
    *,
    settings: Settings,
    topics: Topics,
    router: Router,
    control: ControlFollower,
    stats: st.StatsStore,
    enricher: Enricher,
) -> None:
    """Register every page on the Faust app."""

    def error(web: Any, status: int, message: str, field: str | None = None) -> Any:
        return web.json(
            {"error": {"status": status, "message": message, "field": field}}, status=status
        )

    def invalid(web: Any, exc: ValidationError) -> Any:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or None
        return error(web, 422, f"{where + ': ' if where else ''}{first['msg']}", where)

    async def body_of(web: Any, request: Any, model: type[BaseModel]) -> Any:
        """The parsed body, or an error response."""
        try:
            raw = await request.read()
            return model.model_validate_json(raw or b"{}")
        except ValidationError as exc:
            if any(e["type"] == "json_invalid" for e in exc.errors()):
                return error(web, 400, "the body is not valid JSON")
            return invalid(web, exc)

    def admin_refusal(web: Any, request: Any) -> Any:
        token = settings.llm_service_admin_token
        if token is None:
            return error(
                web,
                403,
                "state-changing endpoints are disabled; set LLM_SERVICE_ADMIN_TOKEN to enable them",
            )
        given = request.headers.get("Authorization", "")
        expected = f"Bearer {token.get_secret_value()}"
        if not hmac.compare_digest(given.encode(), expected.encode()):
            return error(web, 401, "missing or wrong bearer token")
        return None

    def known(provider: str) -> bool:
        return provider in PROVIDER_NAMES

    def passive_health(provider: str) -> dict[str, Any]:
        """From real traffic in the last minutes, and the circuit."""
        since = st.minute_of(datetime.now(UTC)) - PASSIVE_WINDOW_MIN
        recent = st.empty()
        for value in stats.minutes_since(since).get(provider, {}).values():
            recent = st.merge(recent, value)
        figures = st.summary(recent)
        gate = router.gates[provider]
        if not gate.enabled:
            state = "disabled"
        elif gate.breaker.state == "open":
            state = "down"
        elif not figures["calls"]:
            state = "unknown"
        elif (figures["success_rate"] or 0) >= 0.9 and (figures["rate_limited_rate"] or 0) < 0.1:
            state = "healthy"
        else:
            state = "degraded"
        return {"state": state, f"last_{PASSIVE_WINDOW_MIN}_minutes": figures}

    def provider_view(provider: str) -> dict[str, Any]:
        now = router.clock()
        return {
            "name": provider,
            "in_chain": provider in router.chain,
            "model": router.gates[provider].provider.model,
            **router.gates[provider].snapshot(now),
            "health": passive_health(provider),
            "totals": st.summary(stats.totals.get(provider) or st.empty()),
        }

    async def consumer_lag() -> dict[str, int]:
        lag: dict[str, int] = {}
        consumer = app.consumer
        for tp in consumer.assignment():
            if tp.topic != topics.raw.get_topic_name():
                continue
            position = await consumer.position(tp)
            lag[str(tp.partition)] = max(0, consumer.highwater(tp) - (position or 0))
        return lag

    # --- health and status ----------------------------------------------------------------

    @app.page("/health")
    async def health(web: Any, request: Any) -> Any:
        memory = psutil.Process().memory_info()
        producer = app.producer
        try:
            broker_ok = bool(producer and producer._producer and producer._producer.client)
            lag = await consumer_lag()
        except Exception:  # a worker still starting has no consumer yet
            broker_ok, lag = False, {}
        return web.json(
            {
                "status": "ok" if broker_ok else "starting",
                "uptime_s": round(time.monotonic() - STARTED, 1),
                "memory": {
                    "rss_mb": round(memory.rss / 2**20, 1),
                    "vms_mb": round(memory.vms / 2**20, 1),
                    "percent": round(psutil.Process().memory_percent(), 2),
                },
                "broker": {"connected": broker_ok, "bootstrap": settings.kafka_bootstrap_servers},
                "consumer_lag": lag,
                "assigned_partitions": len(app.consumer.assignment()) if app.consumer else 0,
                "providers": {p: passive_health(p)["state"] for p in PROVIDER_NAMES},
            }
        )

    def repost_cache_status() -> dict[str, Any]:
        cache = enricher.cache
        if cache is None:
            return {"enabled": False}
        return {"enabled": True, "entries": cache.entries, "replayed": cache.replayed.is_set()}

    @app.page("/status")
    async def status(web: Any, request: Any) -> Any:
        return web.json(
            {
                "app_id": settings.llm_app_id,
                "uptime_s": round(time.monotonic() - STARTED, 1),
                "rebalancing": bool(app.rebalancing),
                "provider_chain": router.chain,
                "routing_strategy": router.settings.llm_routing_strategy,
                "intake_paused": router.next_ready_at() > router.clock(),
                "jobs_in_flight": sum(g.limiter.in_flight for g in router.gates.values()),
                "control_replayed": control.replayed.is_set(),
                "repost_cache": repost_cache_status(),
                "providers": router.status(),
            }
        )

    # --- statistics and reports -------------------------------------------------------------

    @app.page("/statistics")
    @app.table_route(table=stats.totals, exact_key="stats")
    async def statistics(web: Any, request: Any) -> Any:
        try:
            minutes = int(request.query.get("minutes", "60"))
        except ValueError:
            return error(web, 400, "minutes: not a whole number", "minutes")
        minutes = max(1, min(minutes, st.MINUTES_KEPT))
        since = st.minute_of(datetime.now(UTC)) - minutes + 1
        series = stats.minutes_since(since)
        return web.json(
            {
                "recent_failures": stats.recent_failures(),
                "totals": {p: st.summary(v) for p, v in stats.totals_by_provider().items()},
                "per_minute": {
                    p: [
                        {"minute": datetime.fromtimestamp(m * 60, UTC).isoformat(), **st.summary(v)}
                        for m, v in sorted(by_minute.items())
                    ]
                    for p, by_minute in series.items()
                },
            }
        )

    async def statistics_reset(web: Any, request: Any) -> Any:
        refused = admin_refusal(web, request)
        if refused is not None:
            return refused
        for provider in PROVIDER_NAMES:
            await topics.stats_resets.send(key=provider.encode(), value=b"{}", force=True)
        await publish(settings, ControlCommand(action="reset_stats"))
        return web.json({"accepted": True, "reset": list(PROVIDER_NAMES)}, status=202)

    def usage_report(first: date, last: date) -> dict[str, Any]:
        return st.usage_report(
            stats.days_between(first.isoformat(), last.isoformat()), first=first, last=last
        )

    @app.page("/reports/usage")
    class ReportsUsage(View):
        @app.table_route(table=stats.totals, exact_key="stats")
        async def get(self, request: Any) -> Any:
            try:
                parsed = UsageRequest.model_validate(
                    {"start": request.query.get("start", ""), "end": request.query.get("end", "")}
                )
            except ValidationError as exc:
                return invalid(self, exc)
            return self.json(usage_report(parsed.start, parsed.end))

        async def post(self, request: Any) -> Any:
            # A POST body is not forwarded to the worker holding the tables: answer with
            # the equivalent GET, which is.
            parsed = await body_of(self, request, UsageRequest)
            if not isinstance(parsed, UsageRequest):
                return parsed
            query = f"start={parsed.start.isoformat()}&end={parsed.end.isoformat()}"
            return self.json(
                {"see": f"/reports/usage?{query}"},
                status=303,
                headers={"Location": f"/reports/usage?{query}"},
            )

    # --- providers ----------------------------------------------------------------------------

    @app.page("/providers")
    @app.table_route(table=stats.totals, exact_key="stats")
    async def providers(web: Any, request: Any) -> Any:
        return web.json({"providers": [provider_view(p) for p in PROVIDER_NAMES]})

    @app.page("/providers/{name}")
    @app.table_route(table=stats.totals, exact_key="stats")
    async def provider(web: Any, request: Any, name: str) -> Any:
        if not known(name):
            return error(web, 404, f"unknown provider {name!r}", "name")
        return web.json(provider_view(name))

    @app.page("/providers/{name}/health")
    async def provider_health(web: Any, request: Any, name: str) -> Any:
        if not known(name):
            return error(web, 404, f"unknown provider {name!r}", "name")
        active = await router.gates[name].provider.health()
        return web.json(
            {
                "name": name,
                "active": {"ok": active.ok, "detail": active.detail},
                "passive": passive_health(name),
            }
        )

    def switch(action: str) -> Any:
        async def view(web: Any, request: Any, name: str) -> Any:
            if not known(name):
                return error(web, 404, f"unknown provider {name!r}", "name")
            refused = admin_refusal(web, request)
            if refused is not None:
                return refused
            await publish(settings, ControlCommand(action=action, provider=name))
            return web.json({"accepted": True, "action": action, "provider": name}, status=202)

        return view

    for action in ("enable", "disable"):
        app.page(f"/providers/{{name}}/{action}")(post_only(switch(action)))

    async def provider_test(web: Any, request: Any, name: str) -> Any:
        if not known(name):
            return error(web, 404, f"unknown provider {name!r}", "name")
        refused = admin_refusal(web, request)
        if refused is not None:
            return refused
        sample = RawJob(
            job_id=f"test-{uuid.uuid4().hex[:8]}",
            title="Test call",
            description="Junior Python developer, remote. Reply with the JSON.",
        )
        adapter = router.gates[name].provider
        began = time.monotonic()
        try:
            completion = await adapter.enrich(
                EnrichRequest(job=sample, max_tokens=512), timeout_s=15
            )
        except ProviderError as exc:  # the test ran; its answer is that the call failed
            return web.json(
                {
                    "name": name,
                    "ok": False,
                    "error": {"type": type(exc).__name__, "message": str(exc)},
                }
            )
        return web.json(
            {
                "name": name,
                "ok": True,
                "model": completion.model,
                "latency_ms": round((time.monotonic() - began) * 1000, 1),
                "usage": completion.usage.model_dump(),
            }
        )

    # --- configuration ----------------------------------------------------------------------

    @app.page("/config")
    async def config(web: Any, request: Any) -> Any:
        current = control.state.settings
        # model_dump(mode="json") writes every secret as "**********"
        return web.json(
            {
                "settings": json.loads(current.model_dump_json()),
                "runtime_keys": sorted(RUNTIME_KEYS),
            }
        )

    async def config_update(web: Any, request: Any) -> Any:
        refused = admin_refusal(web, request)
        if refused is not None:
            return refused
        try:
            patch = json.loads(await request.read() or b"{}")
        except ValueError:  # not UTF-8, or not JSON
            return error(web, 400, "the body is not valid JSON")
        if not isinstance(patch, dict) or not patch:
            return error(web, 422, "the body must be a non-empty object of settings")
        try:
            apply_patch(control.state.settings, patch)
        except ConfigurationError as exc:
            return error(web, 422, str(exc), ",".join(sorted(patch)))
        await publish(settings, ControlCommand(action="set_config", config=patch))
        return web.json({"accepted": True, "patch": sorted(patch)}, status=202)

    # --- synchronous processing ------------------------------------------------------------------

    async def process_one(item: ProcessRequest) -> dict[str, Any]:
        job = item.as_job()
        try:
            routed = await router.enrich(job)
        except EnrichmentFailed as exc:
            await enricher.record_calls(job, exc.attempts)
            return {
                "job_id": job.job_id,
                "ok": False,
                "error": str(exc),
                # every provider refused the request itself (e.g. an unknown model): the
                # caller's to fix, not an outage
                "caller_error": bool(exc.attempts)
                and all(a.error is not None and a.error.type == "BadRequest" for a in exc.attempts),
                "attempts": [a.model_dump(mode="json") for a in exc.attempts],
            }
        await enricher.record_calls(job, routed.attempts)
        return {
            "job_id": job.job_id,
            "ok": True,
            "provider": routed.provider,
            "model": routed.completion.model,
            "enrichment": routed.completion.enrichment.model_dump(mode="json"),
            "usage": routed.completion.usage.model_dump(),
            "latency_ms": round(routed.latency_ms, 1),
            "attempts": [a.model_dump(mode="json") for a in routed.attempts],
        }

    async def process(web: Any, request: Any) -> Any:
        item = await body_of(web, request, ProcessRequest)
        if not isinstance(item, ProcessRequest):
            return item
        result = await process_one(item)
        status = 200 if result["ok"] else 422 if result["caller_error"] else 502
        return web.json(result, status=status)

    async def process_batch(web: Any, request: Any) -> Any:
        batch = await body_of(web, request, BatchRequest)
        if not isinstance(batch, BatchRequest):
            return batch
        if len(batch.items) > settings.llm_process_batch_max:
            return error(
                web, 422, f"items: at most {settings.llm_process_batch_max} per batch", "items"
            )
        results = await asyncio.gather(*(process_one(item) for item in batch.items))
        return web.json({"results": results})

    app.page("/statistics/reset")(post_only(statistics_reset))
    app.page("/providers/{name}/test")(post_only(provider_test))
    app.page("/config/update")(post_only(config_update))
    app.page("/process")(post_only(process))
    app.page("/process/batch")(post_only(process_batch))

    # --- dashboard and API documents ---------------------------------------------------------

    @app.page("/")
    async def dashboard(web: Any, request: Any) -> Any:
        return web.html(_asset("index.html"))

    @app.page("/dashboard.js")
    async def dashboard_js(web: Any, request: Any) -> Any:
        return web.bytes(_asset("dashboard.js").encode(), content_type="application/javascript")

    @app.page("/openapi.json")
    async def openapi_json(web: Any, request: Any) -> Any:
        return web.json(openapi.document())

    @app.page("/docs")
    async def docs(web: Any, request: Any) -> Any:
        return web.html(_docs_page(openapi.document()))

    # --- metrics ---------------------------------------------------------------------------------

    @app.page("/metrics")
    @app.table_route(table=stats.totals, exact_key="stats")
    async def metrics(web: Any, request: Any) -> Any:
        body, content_type = render_metrics(
            totals=stats.totals_by_provider(),
            router=router,
            lag=await consumer_lag(),
        )
        return web.bytes(body, content_type=content_type)


@functools.cache
def _asset(name: str) -> str:
    return resources.files("streams.dashboard").joinpath(name).read_text(encoding="utf-8")


def _docs_page(document: dict[str, Any]) -> str:
    """The API at a glance, rendered here (no external scripts); the full document is at
    /openapi.json."""
    rows = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            secured = " (admin token)" if operation.get("security") else ""
            rows.append(
                f"<tr><td><code>{method.upper()}</code></td><td><code>{html.escape(path)}</code></td>"
                f"<td>{html.escape(operation.get('summary', ''))}{secured}</td></tr>"
            )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>API</title>"
        "<style>body{font:14px system-ui;margin:2em}td{padding:4px 12px}</style></head><body>"
        f"<h1>{html.escape(document['info']['title'])}</h1>"
        "<p>The full OpenAPI 3.1 document: <a href='/openapi.json'>/openapi.json</a>.</p>"
        f"<table>{''.join(rows)}</table></body></html>"
    )
