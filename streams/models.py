"""The messages on every topic. These Pydantic models are the source of truth for the
JSON Schema files in ``schemas/`` (``llm-streams schemas`` writes them, a test checks them)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, TypeAdapter, model_validator

from streams.enrichment import ENRICHMENT_VERSION, Enrichment, EnrichmentV1
from streams.message import Message
from streams.pricing import ModelPrice
from streams.vocab import Lane, LedgerOutcome, Outcome, ProviderName, Stage

__all__ = [
    "DEFAULT_TENANT",
    "MAX_BATCH_DEADLINE_MS",
    "MAX_DEADLINE_MS",
    "MAX_JOB_ID_CHARS",
    "SCHEMA_VERSION",
    "TOPIC_MESSAGES",
    "Attempt",
    "ControlCommand",
    "DeadLetter",
    "EnrichedJob",
    "EnrichedJobRecord",
    "ErrorInfo",
    "JobOptions",
    "OriginalRecord",
    "ProviderCall",
    "RawJob",
    "SentCall",
    "ShadowAnswer",
    "ShadowResult",
    "Tenant",
    "Usage",
    "tenant_named",
    "utcnow",
]

SCHEMA_VERSION: Literal[1] = 1

# Kafka's default message limit is 1 MB; a job must fit in one record with room to spare.
MAX_DESCRIPTION_CHARS = 100_000
MAX_JOB_ID_CHARS = 200
# The longest deadline a live job may ask for; the rebalance timeout is derived from it.
MAX_DEADLINE_MS = 300_000
# A batch-lane job's: the longest a vendor's Batch API may take (Gemini's 48 h expiry).
MAX_BATCH_DEADLINE_MS = 48 * 3600 * 1000


# Who a job is for: its bill, its budget and its share of the providers. A short identifier,
# since it becomes a metric label, a report row and part of the waiting lane's keys.
Tenant = Annotated[
    str,
    Field(
        pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$",
        description="lower-case letters, digits, '-' and '_', at most 63, starting with a "
        "letter or digit",
    ),
]
DEFAULT_TENANT = "default"
_TENANT = TypeAdapter(Tenant)


def tenant_named(text: str) -> str:
    """``text`` as a tenant, or pydantic's ValidationError saying why it is not one."""
    return _TENANT.validate_python(text)


def utcnow() -> datetime:
    return datetime.now(UTC)


class JobOptions(Message):
    preferred_provider: ProviderName | None = None
    model: str | None = Field(default=None, min_length=1, max_length=200)
    max_tokens: int | None = Field(default=None, ge=16, le=65536)
    temperature: float | None = Field(default=None, ge=0, le=2)
    deadline_ms: int | None = Field(
        default=None,
        ge=100,
        le=MAX_BATCH_DEADLINE_MS,
        description=f"up to {MAX_DEADLINE_MS} live; up to 48 h with lane batch or auto",
    )
    lane: Lane | None = Field(
        default=None,
        description="live (a call now); batch (a vendor's Batch API, about half the price, "
        "within a day); auto (batch when the deadline leaves room for the vendor's window); "
        "unset: LLM_LANE",
    )

    @model_validator(mode="after")
    def _check_deadline(self) -> JobOptions:
        # A job without a lane has LLM_LANE's, known to the worker that takes it: checked
        # there (streams.pipeline.ticket).
        if self.deadline_ms and self.deadline_ms > MAX_DEADLINE_MS and self.lane == "live":
            raise ValueError(
                f"deadline_ms above {MAX_DEADLINE_MS} needs lane 'batch' or 'auto' "
                "(a live call never waits that long)"
            )
        return self


class RawJob(Message):
    """A job posting as the collection pipeline publishes it to ``jobs.raw``."""

    contract_version: ClassVar[int] = 2  # 2: tenant

    job_id: str = Field(min_length=1, max_length=MAX_JOB_ID_CHARS)
    title: str = Field(min_length=1, max_length=500)
    description: str = Field(min_length=1, max_length=MAX_DESCRIPTION_CHARS)
    company: str | None = Field(default=None, max_length=500)
    location: str | None = Field(default=None, max_length=500)
    url: str | None = Field(default=None, max_length=2000)
    source: str | None = Field(default=None, max_length=200)
    posted_at: datetime | None = None
    salary_text: str | None = Field(default=None, max_length=500)
    options: JobOptions | None = None
    tenant: Tenant = Field(
        default=DEFAULT_TENANT,
        description="whose job it is; a record may name it in a 'tenant' header instead",
    )


# --- What the service publishes ----------------------------------------------------------


class Usage(Message):
    input_tokens: int = Field(default=0, ge=0, description="every prompt token, cached or not")
    cached_input_tokens: int = Field(default=0, ge=0, description="read from the prompt cache")
    cache_write_tokens: int = Field(default=0, ge=0, description="written to the prompt cache")
    reasoning_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(default=0, ge=0)
    cost_usd: float = Field(default=0.0, ge=0)
    prompt_cache_saved_usd: float = Field(
        default=0.0, description="the same call without the prompt cache, less cost_usd"
    )

    batch_saved_usd: float = Field(
        default=0.0, description="the same call live, less cost_usd (batch-lane calls)"
    )

    def priced(self, price: ModelPrice, *, batch: bool = False) -> Usage:
        """The same tokens at ``price`` (re-pricing from raw usage); ``batch``: at the
        vendor's batch rate."""
        live = price.cost_usd(
            input_tokens=self.input_tokens,
            cached_input_tokens=self.cached_input_tokens,
            cache_write_tokens=self.cache_write_tokens,
            output_tokens=self.output_tokens,
        )
        uncached = price.cost_usd(
            input_tokens=self.input_tokens, cached_input_tokens=0, output_tokens=self.output_tokens
        )
        factor = price.batch if batch and price.batch is not None else 1.0
        return self.model_copy(
            update={
                "cost_usd": round(live * factor, 10),
                "prompt_cache_saved_usd": round((uncached - live) * factor, 10),
                "batch_saved_usd": round(live - live * factor, 10),
            }
        )


class ErrorInfo(Message):
    type: str
    message: str


class Attempt(Message):
    """One call to one provider, as the router made it."""

    provider: str
    model: str
    attempt: int = Field(ge=1, description="1-based, counted per provider")
    outcome: Outcome
    http_status: int | None = None
    latency_ms: float = Field(ge=0)
    usage: Usage = Field(default_factory=Usage)
    error: ErrorInfo | None = None
    # In memory only (the ledger's ``ProviderCall`` carries them): the published attempts
    # keep the contract of schema version 1.
    batch_id: str | None = Field(default=None, exclude=True)
    estimate: Usage | None = Field(
        default=None, exclude=True, description="a cut-off call's assumed usage and cost"
    )
    ended_at: datetime = Field(default_factory=utcnow, exclude=True)  # made as the call ends
    # The id its write-ahead record was sent under (None: a call without one): its ledger
    # event names it, and so settles the record.
    call_id: str | None = Field(default=None, exclude=True)


class EnrichedJobRecord(Message):
    """A ``jobs.enriched`` record of any schema version, as a reader takes it: version 1
    records (written before the Enrichment contract narrowed) hold ``EnrichmentV1`` answers."""

    schema_version: Literal[1, 2]
    job_id: str
    job: RawJob
    enrichment: EnrichmentV1
    provider: str
    model: str
    attempts: list[Attempt]
    usage: Usage
    latency_ms: float = Field(ge=0)
    cached: bool = False
    enriched_at: datetime = Field(default_factory=utcnow)
    prompt_version: str | None = Field(
        default=None,
        description="a hash of the instructions and schema the answer was made with; with "
        "schema_version, model and the job's options, what produced this result",
    )


class EnrichedJob(EnrichedJobRecord):
    """What this version writes to ``jobs.enriched``: an answer held to Enrichment version 2."""

    contract_version: ClassVar[int] = 3  # 2: Enrichment version 2; 3: the job's tenant

    schema_version: Literal[2] = ENRICHMENT_VERSION
    enrichment: Enrichment


class OriginalRecord(Message):
    """Where a dead-lettered record came from, and what it held."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None = None
    key: str | None = Field(description="UTF-8 text, or base64 when key_encoding says so")
    key_encoding: Literal["utf-8", "base64"] = "utf-8"
    value: str | None = Field(description="UTF-8 text, or base64 when value_encoding says so")
    value_encoding: Literal["utf-8", "base64"] = "utf-8"
    value_truncated: bool = Field(
        default=False, description="Only a prefix is kept; the record is at topic/partition/offset"
    )

    def key_bytes(self) -> bytes | None:
        return _decoded(self.key, self.key_encoding)

    def value_bytes(self) -> bytes | None:
        return _decoded(self.value, self.value_encoding)


def _decoded(text: str | None, encoding: str) -> bytes | None:
    if text is None:
        return None
    return base64.b64decode(text) if encoding == "base64" else text.encode("utf-8")


class DeadLetter(Message):
    contract_version: ClassVar[int] = 2  # 2: tenant

    schema_version: Literal[1] = SCHEMA_VERSION
    job_id: str | None
    tenant: Tenant | None = Field(
        default=None, description="the job's; None when the record is not a job"
    )
    stage: Stage
    error: ErrorInfo
    attempts: list[Attempt] = Field(default_factory=list)
    original: OriginalRecord
    failed_at: datetime = Field(default_factory=utcnow)


class ProviderCall(Message):
    """One provider attempt on ``llm.calls``: the audit trail and the source of the stats.

    It carries raw usage and the price-table version so costs can be recomputed later,
    and never the prompt or any secret."""

    contract_version: ClassVar[int] = 3  # 2: tenant; 3: call_id and outcome worker_lost

    schema_version: Literal[1] = SCHEMA_VERSION
    provider: str
    model: str
    job_id: str
    tenant: Tenant = DEFAULT_TENANT
    attempt: int = Field(ge=1)
    outcome: LedgerOutcome
    http_status: int | None = None
    latency_ms: float = Field(ge=0)
    usage: Usage = Field(
        default_factory=Usage,
        description="Raw usage and its cost; for a cache hit, those of the call it replaced",
    )
    price_version: str
    error_type: str | None = None
    error_message: str | None = Field(default=None, max_length=500)
    at: datetime = Field(default_factory=utcnow, description="when the call ended")
    lane: Literal["live", "batch", "shadow"] = Field(
        default="live", description="shadow: a candidate model's call, compared, never served"
    )
    batch_id: str | None = Field(default=None, description="the vendor's, for a batch-lane call")
    usage_estimated: bool = Field(
        default=False,
        description="the call was cut off after it was sent (its cap, the job's deadline or "
        "its worker's death): the vendor bills it, and usage and cost are this service's "
        "estimate, not the vendor's",
    )
    call_id: str | None = Field(
        default=None,
        description="the id the call was recorded under before it was sent (llm.sent); "
        "this event settles that record. None: a call made without one",
    )

    @classmethod
    def of(
        cls,
        attempt: Attempt,
        *,
        job_id: str,
        tenant: str,
        price_version: str,
        shadow: bool = False,
    ) -> ProviderCall:
        lane: Literal["live", "batch", "shadow"] = "live" if attempt.batch_id is None else "batch"
        return cls(
            provider=attempt.provider,
            model=attempt.model,
            job_id=job_id,
            tenant=tenant,
            attempt=attempt.attempt,
            outcome=attempt.outcome,
            http_status=attempt.http_status,
            latency_ms=attempt.latency_ms,
            usage=attempt.estimate or attempt.usage,
            usage_estimated=attempt.estimate is not None,
            price_version=price_version,
            error_type=attempt.error.type if attempt.error else None,
            error_message=attempt.error.message[:500] if attempt.error else None,
            lane="shadow" if shadow else lane,
            batch_id=attempt.batch_id,
            at=attempt.ended_at,
            call_id=attempt.call_id,
        )


class SentCall(Message):
    """One provider call as it left (on ``llm.sent``, by ``call_id``), until its ledger
    event settles it. The service's own record: no published contract."""

    call_id: str
    job_id: str
    tenant: Tenant
    provider: str
    model: str
    attempt: int = Field(ge=1)
    lane: Literal["live", "shadow"]
    estimate: Usage = Field(description="its prompt and the most output it may be billed")
    price_version: str
    worker: str = Field(description="the process that sent it")
    sent_at: datetime
    settle_by: datetime = Field(description="past this, unsettled means its worker died")

    def lost(self) -> ProviderCall:
        """The ledger event of this call, its worker having died before settling it: billed
        as the most it may have cost, its latency unknown (0)."""
        return ProviderCall(
            provider=self.provider,
            model=self.model,
            job_id=self.job_id,
            tenant=self.tenant,
            attempt=self.attempt,
            outcome="worker_lost",
            latency_ms=0.0,
            usage=self.estimate,
            usage_estimated=True,
            price_version=self.price_version,
            error_type="WorkerLost",
            error_message=f"{self.worker} stopped with the call under way; not settled by "
            f"{self.settle_by.isoformat()}",
            at=self.sent_at,
            lane=self.lane,
            call_id=self.call_id,
        )


class ControlCommand(Message):
    """A runtime change on the compacted ``llm.control`` topic, applied by every worker."""

    schema_version: Literal[1] = SCHEMA_VERSION
    action: Literal["enable", "disable", "set_config", "reset_stats"]
    provider: ProviderName | None = None
    config: dict[str, Any] | None = None
    at: datetime = Field(default_factory=utcnow)

    @model_validator(mode="after")
    def _check_arguments(self) -> ControlCommand:
        if self.action in ("enable", "disable") and self.provider is None:
            raise ValueError(f"'{self.action}' needs a provider")
        if self.action == "set_config" and not self.config:
            raise ValueError("'set_config' needs a non-empty config patch")
        return self


class ShadowAnswer(Message):
    """One side of a shadow comparison: who answered, what, at what cost and speed."""

    provider: str
    model: str
    enrichment: EnrichmentV1 | None = Field(
        description="None: no valid answer; a version 1 answer when read from a version 1 "
        "enriched job (a backfill of older jobs)"
    )
    usage: Usage = Field(default_factory=Usage, description="every attempt's, summed")
    latency_ms: float = Field(ge=0, description="from the first attempt to the answer")
    attempts: list[Attempt] = Field(default_factory=list)


class ShadowResult(Message):
    """A candidate model's answer to a job production answered, compared field by field
    (``llm.shadow``, keyed by job id). Never served: it is evidence for choosing a model."""

    contract_version: ClassVar[int] = 2  # 2: tenant

    schema_version: Literal[1] = SCHEMA_VERSION
    job_id: str
    tenant: Tenant = DEFAULT_TENANT
    candidate: str = Field(description="provider/model, and @variant with a prompt variant")
    origin: Literal["live", "backfill"] = Field(
        description="live: sampled from traffic; backfill: an earlier enriched job replayed"
    )
    outcome: Literal["compared", "invalid", "failed", "dropped"] = Field(
        description="compared: both answered; invalid: the candidate's answer failed "
        "validation; failed: it gave no answer otherwise; dropped: no call was made"
    )
    reason: str | None = Field(default=None, description="why invalid, failed or dropped")
    sample: float = Field(gt=0, le=1, description="the share of jobs the candidate is sent")
    prompt_version: str = Field(description="the candidate's instructions and schema")
    production: ShadowAnswer
    shadow: ShadowAnswer | None = Field(description="None when dropped")
    scores: dict[str, float] = Field(
        default_factory=dict, description="per field (dotted path), 1 = the same answer"
    )
    agreement: float | None = Field(default=None, description="the scores' mean")
    at: datetime = Field(default_factory=utcnow)


TOPIC_MESSAGES: dict[str, type[Message]] = {
    "raw-job": RawJob,
    "enrichment": Enrichment,
    "enriched-job": EnrichedJob,
    "dead-letter": DeadLetter,
    "provider-call": ProviderCall,
    "control-command": ControlCommand,
    "shadow-result": ShadowResult,
}
