"""The web view's one route table. Each entry names its handler (a method of
``handlers.Handlers``), its request body or query, its response model and status, whether it
needs the admin token and whether it reads the stats tables. The server registers pages from
it and the OpenAPI document is generated from it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel

from streams.observe.drift import DriftReport
from streams.observe.job import JobReport
from streams.web import bodies as b

__all__ = ["ROUTES", "Route"]

HTML, JAVASCRIPT, JSON, PROMETHEUS = (
    "text/html",
    "application/javascript",
    "application/json",
    "text/plain",
)


@dataclass(frozen=True, kw_only=True)
class Route:
    method: Literal["get", "post"]
    path: str
    handler: str
    summary: str
    response: type[BaseModel] | str  # a model (JSON), or the content type of a page
    status: int = 200
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    admin: bool = False
    # Served by the worker holding the stats tables (Faust forwards the request there).
    reads_tables: bool = False
    # Other answers than ``status`` that carry a model other than the error body.
    also: Mapping[int, type[BaseModel]] = field(default_factory=dict)
    in_docs: bool = True

    @property
    def names_provider(self) -> bool:
        return "{name}" in self.path

    @property
    def names_job(self) -> bool:
        return "{job_id}" in self.path


ROUTES: tuple[Route, ...] = (
    Route(
        method="get",
        path="/health",
        handler="health",
        summary="Worker, broker, consumer lag, memory and provider health",
        response=b.Health,
        also={503: b.Health},
    ),
    Route(
        method="get",
        path="/status",
        handler="status",
        summary="Routing state of this worker",
        response=b.Status,
    ),
    Route(
        method="get",
        path="/statistics",
        handler="statistics",
        summary="Totals per provider and the last minutes",
        response=b.Statistics,
        query=b.StatisticsQuery,
        reads_tables=True,
    ),
    Route(
        method="get",
        path="/jobs",
        handler="jobs",
        summary="Jobs in and out per minute, consumer lag, dead letters and the repost cache",
        response=b.JobFlow,
        query=b.JobsQuery,
        reads_tables=True,
        also={503: b.ErrorBody},
    ),
    Route(
        method="get",
        path="/jobs/{job_id}",
        handler="job",
        summary="One job across the group: where it is, its attempts, lineage, trace id and "
        "time line, read from the topics",
        response=JobReport,
    ),
    Route(
        method="get",
        path="/drift",
        handler="drift_report",
        summary="Drift on live traffic: per enum and boolean field, the share of each value "
        "in the latest window against the reference window before it (PSI), and per day and "
        "provider, model and prompt version",
        response=DriftReport,
    ),
    Route(
        method="get",
        path="/shadow",
        handler="shadow",
        summary="Shadow candidates against production: agreement per field with 95 % "
        "intervals, failure rates, latency, cost per 1,000 jobs, projected monthly saving",
        response=b.ShadowComparison,
        query=b.ShadowQuery,
    ),
    Route(
        method="post",
        path="/statistics/reset",
        handler="statistics_reset",
        summary="Reset the totals on every worker",
        response=b.ResetAccepted,
        status=202,
        admin=True,
    ),
    Route(
        method="get",
        path="/reports/usage",
        handler="usage_report",
        summary="Daily usage per provider over a date range",
        response=b.UsageReport,
        query=b.UsageRequest,
        reads_tables=True,
    ),
    Route(
        method="post",
        path="/reports/usage",
        handler="usage_report_posted",
        summary="The same report, asked with a JSON body (start_date / end_date too)",
        response=b.UsageReport,
        body=b.UsageRequest,
    ),
    Route(
        method="get",
        path="/config",
        handler="config_view",
        summary="Effective settings, secrets redacted",
        response=b.ConfigView,
    ),
    Route(
        method="post",
        path="/config/update",
        handler="config_update",
        summary="Change runtime settings on every worker (validated first)",
        response=b.PatchAccepted,
        body=b.ConfigPatch,
        status=202,
        admin=True,
    ),
    Route(
        method="get",
        path="/providers",
        handler="providers",
        summary="Every provider: state, health, totals",
        response=b.ProviderList,
        reads_tables=True,
    ),
    Route(
        method="get",
        path="/providers/{name}",
        handler="provider",
        summary="One provider",
        response=b.ProviderView,
        reads_tables=True,
    ),
    Route(
        method="get",
        path="/providers/{name}/health",
        handler="provider_health",
        summary="Active (free) and passive health",
        response=b.ProviderHealth,
    ),
    Route(
        method="post",
        path="/providers/{name}/enable",
        handler="provider_enable",
        summary="Route jobs to it again",
        response=b.Switched,
        status=202,
        admin=True,
    ),
    Route(
        method="post",
        path="/providers/{name}/disable",
        handler="provider_disable",
        summary="Stop routing jobs to it",
        response=b.Switched,
        status=202,
        admin=True,
    ),
    Route(
        method="post",
        path="/providers/{name}/test",
        handler="provider_test",
        summary="A live, tiny call",
        response=b.ProviderTest,
        admin=True,
    ),
    Route(
        method="post",
        path="/process",
        handler="process",
        summary="Enrich one job or prompt now, the way a Kafka record is (repost cache included)",
        response=b.ProcessResult,
        body=b.ProcessRequest,
        also={422: b.ProcessResult, 502: b.ProcessResult},
    ),
    Route(
        method="post",
        path="/process/batch",
        handler="process_batch",
        summary="Enrich several at once",
        response=b.BatchResult,
        body=b.BatchRequest,
    ),
    Route(
        method="get",
        path="/metrics",
        handler="metrics",
        summary="Prometheus text format",
        response=PROMETHEUS,
        reads_tables=True,
    ),
    Route(
        method="get",
        path="/",
        handler="dashboard",
        summary="The dashboard",
        response=HTML,
        in_docs=False,
    ),
    Route(
        method="get",
        path="/dashboard.js",
        handler="dashboard_js",
        summary="The dashboard's script",
        response=JAVASCRIPT,
        in_docs=False,
    ),
    Route(
        method="get",
        path="/openapi.json",
        handler="openapi_json",
        summary="This document",
        response=JSON,
        in_docs=False,
    ),
    Route(
        method="get",
        path="/docs",
        handler="docs",
        summary="The API at a glance",
        response=HTML,
        in_docs=False,
    ),
    Route(
        method="get",
        path="/redoc",
        handler="redoc",
        summary="The OpenAPI document in ReDoc",
        response=HTML,
        in_docs=False,
    ),
    Route(
        method="get",
        path="/redoc.standalone.js",
        handler="redoc_js",
        summary="ReDoc's script, served here (no CDN)",
        response=JAVASCRIPT,
        in_docs=False,
    ),
)
