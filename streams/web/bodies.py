"""What the web view reads and answers: its request bodies and its response models. The route
table names one of each per endpoint, and the OpenAPI document is generated from them, so the
document is what the handlers do."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    RootModel,
    model_validator,
)

from streams.enrichment import Enrichment
from streams.models import Attempt, JobOptions, RawJob, Usage
from streams.observe.stats import DAYS_KEPT
from streams.pipeline.batch.lane import BatchLaneStatus
from streams.pipeline.entry import CacheStatus
from streams.pipeline.waiting.lane import TenantStatus
from streams.routing.status import GateStatus, ProviderStatus
from streams.shadow.report import CandidateReport
from streams.vocab import ProviderName

__all__ = [
    "BatchRequest",
    "BatchResult",
    "Broker",
    "ConfigPatch",
    "ConfigView",
    "ConsumerLag",
    "DeadLetterReason",
    "ErrorBody",
    "ErrorDetail",
    "ErrorInfoBody",
    "Health",
    "HealthState",
    "JobCounts",
    "JobFlow",
    "JobsMinute",
    "JobsQuery",
    "Memory",
    "PatchAccepted",
    "ProcessRequest",
    "ProcessResult",
    "ProviderHealth",
    "ProviderList",
    "ProviderTest",
    "ProviderView",
    "RepostCacheFigures",
    "ResetAccepted",
    "SeedMemory",
    "Statistics",
    "StatisticsQuery",
    "Status",
    "Switched",
    "UsageReport",
    "UsageRequest",
]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- requests ------------------------------------------------------------------------------


class ProcessRequest(Body):
    """One job (``{"job": ...}``, or the bare job: the JSON a producer puts on ``jobs.raw``),
    or a free-form prompt treated as a job's text (the seed service's request)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"job": {"job_id": "j1", "title": "Data Engineer", "description": "Spark."}},
                {"job_id": "j1", "title": "Data Engineer", "description": "Spark."},
                {"prompt": "Senior Go developer. Remote.", "max_tokens": 512},
            ]
        }
    )

    job: RawJob | None = None
    prompt: str | None = Field(default=None, min_length=1, max_length=100_000)
    max_tokens: int | None = Field(default=None, ge=16, le=65536)
    temperature: float | None = Field(default=None, ge=0, le=2)
    preferred_provider: ProviderName | None = None

    @model_validator(mode="before")
    @classmethod
    def _bare_job(cls, data: Any) -> Any:
        if isinstance(data, dict) and "job_id" in data and not {"job", "prompt"} & set(data):
            return {"job": data}
        return data

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


class BatchRequest(Body):
    """``{"items": [...]}``, the seed service's ``{"requests": [...]}``, or a bare list."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"items": [{"prompt": "x"}]},
                {"requests": [{"prompt": "x"}]},
                [{"prompt": "x"}],
            ]
        }
    )

    items: list[ProcessRequest] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _other_shapes(cls, data: Any) -> Any:
        if isinstance(data, list):
            return {"items": data}
        if isinstance(data, dict) and set(data) == {"requests"}:
            return {"items": data["requests"]}
        return data


def _day(value: Any) -> Any:
    """A date, or the date of a datetime (the seed service took datetimes)."""
    if isinstance(value, str) and len(value) > len("2026-12-01"):
        return datetime.fromisoformat(value).date()
    return value.date() if isinstance(value, datetime) else value


Day = Annotated[date, BeforeValidator(_day)]


class UsageRequest(Body):
    start: Day = Field(validation_alias=AliasChoices("start", "start_date"))
    end: Day = Field(
        validation_alias=AliasChoices("end", "end_date"),
        description="inclusive; also accepted as start_date / end_date, dates or datetimes",
    )
    by: Literal["provider", "tenant"] = Field(
        default="provider", description="a row per provider, or per tenant (whose jobs)"
    )

    @model_validator(mode="after")
    def _ordered(self) -> UsageRequest:
        if self.end < self.start:
            raise ValueError("'end' is before 'start'")
        if (self.end - self.start).days > DAYS_KEPT:
            raise ValueError(f"a report covers at most {DAYS_KEPT} days")
        return self


class ConfigPatch(RootModel[dict[str, Any]]):
    """Settings to change at run time, by name (any case), e.g. {"LLM_JOB_DEADLINE_S": 30}."""

    @model_validator(mode="after")
    def _not_empty(self) -> ConfigPatch:
        if not self.root:
            raise ValueError("the body must be a non-empty object of settings")
        return self


class StatisticsQuery(Body):
    minutes: int = Field(default=60, ge=1, description="clamped to the minutes kept (a day)")


# --- responses -----------------------------------------------------------------------------


class ErrorDetail(Body):
    status: int
    message: str
    field: str | None = Field(default=None, description="the input that was wrong")


class ErrorBody(Body):
    error: ErrorDetail


class LatencySummary(Body):
    mean: float | None
    p50: float | None
    p95: float | None
    p99: float | None
    max: float


class Summary(Body):
    """A provider's figures over some span: counts, rates, latency, tokens, cost."""

    calls: int
    outcomes: dict[str, int]
    success_rate: float | None
    rate_limited_rate: float | None
    latency_ms: LatencySummary
    input_tokens: int
    cached_input_tokens: int = Field(description="read from the vendors' prompt caches")
    cache_write_tokens: int = Field(description="written to the vendors' prompt caches")
    output_tokens: int
    cost_usd: float = Field(description="confirmed by the vendors' answers, and estimated")
    prompt_cache_saved_usd: float = Field(description="what the prompt caches took off cost_usd")
    cache_hits: int = Field(description="reposts served from the repost cache, no call made")
    saved_usd: float = Field(description="what the repost cache hits would have cost")
    batch_calls: int = Field(default=0, description="of the calls, those of the batch lane")
    batch_cost_usd: float = Field(default=0.0, description="of cost_usd, the batch lane's")
    batch_saved_usd: float = Field(
        default=0.0, description="what the batch lane's calls would have cost more live"
    )
    estimated_calls: int = Field(
        default=0, description="of the calls, those cut off after they were sent (still billed)"
    )
    estimated_cost_usd: float = Field(
        default=0.0,
        description="of cost_usd, the estimate for calls cut off: their prompt and, as output, "
        "their max_tokens (an upper bound); the rest is confirmed",
    )
    shadow_calls: int = Field(
        default=0,
        description="shadow candidates' calls (LLM_SHADOW): not in calls, outcomes, latency or "
        "tokens, which are production's",
    )
    shadow_cost_usd: float = Field(default=0.0, description="of cost_usd, the shadow calls'")
    outcome_cost_usd: dict[str, float] = Field(
        default_factory=dict,
        description="production's cost_usd by outcome: a repaired answer's cost beside a "
        "success on the provider fallen back to",
    )


HealthState = Literal["healthy", "degraded", "down", "disabled", "unknown"]


class Memory(Body):
    rss_mb: float
    vms_mb: float
    percent: float


class Broker(Body):
    connected: bool
    bootstrap: str


class SeedMemory(Body):
    rss: float = Field(description="MB")
    vms: float = Field(description="MB")
    percent: float


class Health(Body):
    """This worker's health. ``status``, ``service_status``, ``total_providers``,
    ``enabled_providers``, ``total_requests``, ``uptime``, ``memory_usage`` and ``timestamp``
    are the fields of the service this one replaces, for its clients."""

    status: Literal["healthy", "degraded", "unhealthy"] = Field(
        description="unhealthy (answered with 503): no broker; degraded: intake paused or a "
        "provider down"
    )
    service_status: Literal["healthy", "degraded", "unhealthy"]
    uptime_s: float
    uptime: float
    memory: Memory
    memory_usage: SeedMemory
    broker: Broker
    consumer_lag: dict[str, int] = Field(description="records not yet read, per partition")
    assigned_partitions: int
    providers: dict[str, HealthState]
    total_providers: int
    enabled_providers: int
    total_requests: int = Field(description="jobs this worker has finished since it started")
    timestamp: datetime


class Budget(Body):
    daily_usd: float | None = Field(description="USD per UTC day for the group (LLM_BUDGETS)")
    spent_today_usd: float = Field(description="by the whole group, since 00:00 UTC")


class Status(Body):
    app_id: str
    uptime_s: float
    rebalancing: bool
    provider_chain: list[str]
    routing_strategy: str
    intake_paused: bool
    jobs_in_flight: int
    control_replayed: bool
    repost_cache: CacheStatus
    budget: Budget = Field(description="the whole service's (LLM_BUDGETS' total)")
    providers: dict[str, GateStatus]
    batch_lane: dict[str, BatchLaneStatus] = Field(
        description="per provider, the batch lanes of the raw partitions this worker holds"
    )
    tenants: dict[str, TenantStatus] = Field(
        description="the configured tenants (LLM_TENANTS) and those with jobs on this worker"
    )


class RecentFailure(Body):
    at: str
    provider: str
    job_id: str
    outcome: str
    http_status: int | None
    error: str


class MinuteSummary(Summary):
    minute: str


class Statistics(Body):
    recent_failures: list[RecentFailure]
    totals: dict[str, Summary]
    per_minute: dict[str, list[MinuteSummary]]
    tenants_today: dict[str, Summary] = Field(
        description="each tenant's jobs' calls today (UTC), every provider's"
    )


class ShadowQuery(Body):
    days: float = Field(default=7, gt=0, le=400, description="the window: the last days")
    candidate: str | None = Field(default=None, description="provider/model: one candidate")


class ShadowComparison(Body):
    since: datetime
    until: datetime
    candidates: list[CandidateReport] = Field(
        description="each candidate against production; empty without LLM_SHADOW"
    )


class JobsQuery(Body):
    minutes: int = Field(default=60, ge=1, le=60, description="the last minutes to count")


class JobCounts(Body):
    received: int = Field(description="records on the raw topic")
    enriched: int
    dead_lettered: int


class JobsMinute(JobCounts):
    minute: str
    dead_letter_stages: dict[str, int] = Field(description="stage -> dead letters")


class ConsumerLag(Body):
    total: int
    partitions: dict[str, int] = Field(description="raw partition -> records not yet committed")


class DeadLetterReason(Body):
    at: str
    job_id: str | None
    stage: str
    error_type: str
    message: str


class RepostCacheFigures(Body):
    hits: int
    hit_rate: float | None = Field(description="hits / (hits + successful calls)")
    saved_usd: float = Field(description="what the calls the hits replaced cost")


class JobFlow(Body):
    """The whole group's jobs: counted from the topics' offsets, the group's commits, the
    last hour's dead letters and the stats tables."""

    totals: JobCounts = Field(description="since the topics were created")
    lag: ConsumerLag
    per_minute: list[JobsMinute] = Field(description="oldest first")
    recent_dead_letters: list[DeadLetterReason] = Field(description="newest first")
    repost_cache: RepostCacheFigures


class ProviderUsage(Body):
    total: Summary
    days: dict[str, Summary]


class UsageReport(Body):
    start: str
    end: str
    providers: dict[str, ProviderUsage] = Field(
        default_factory=dict, description="asked by provider (the default)"
    )
    tenants: dict[str, ProviderUsage] | None = Field(
        default=None, description="asked by tenant: each tenant's jobs' calls, every provider"
    )


class PassiveHealth(Body):
    state: HealthState
    last_5_minutes: Summary


class ProviderView(ProviderStatus):
    health: PassiveHealth
    totals: Summary


class ProviderList(Body):
    providers: list[ProviderView]


class ActiveHealth(Body):
    ok: bool
    detail: str


class ProviderHealth(Body):
    name: str
    active: ActiveHealth
    passive: PassiveHealth


class ErrorInfoBody(Body):
    type: str
    message: str


class ProviderTest(Body):
    name: str
    ok: bool
    model: str | None = None
    latency_ms: float | None = None
    usage: Usage | None = None
    error: ErrorInfoBody | None = None


class Accepted(Body):
    """A command was published; every worker applies it."""

    accepted: Literal[True] = True


class Switched(Accepted):
    action: Literal["enable", "disable"]
    provider: ProviderName


class ResetAccepted(Accepted):
    reset: list[str]


class PatchAccepted(Accepted):
    patch: list[str] = Field(description="the settings changed")


class ConfigView(Body):
    settings: dict[str, Any] = Field(description="every setting; secrets as **********")
    runtime_keys: list[str]


class ProcessResult(Body):
    job_id: str
    ok: bool
    provider: str | None = None
    model: str | None = None
    enrichment: Enrichment | None = None
    usage: Usage | None = None
    latency_ms: float | None = None
    cached: bool = False
    error: str | None = None
    error_type: str | None = None
    caller_error: bool = False
    attempts: list[Attempt]


class BatchResult(Body):
    results: list[ProcessResult]
