"""A job's ticket: made once, when the worker takes the job, and carried to its outcome.

Every way in makes one: a record of the raw topic (``Intake.take``), a ``/process`` request
(``Intake.ticket``), a batch-lane job read back after a restart (``Ticket.restored``). It
holds what every later step needs: where the job came from, the job, its one deadline, its
lane, the provider request, and the trace context it travels in.

The deadline is one value with two faces: ``deadline`` on the monotonic clock for waiting
in this process, and ``due_at`` on the wall clock for what must outlive it (the batch lane).
Both come from ``budget_s``, counted from when the job was taken.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from streams.deadline import Clock, Deadline
from streams.errors import RecordRejected
from streams.models import (
    MAX_BATCH_DEADLINE_MS,
    MAX_DEADLINE_MS,
    OriginalRecord,
    RawJob,
    tenant_named,
)
from streams.pipeline.dead_letter import job_id_of, original_of, reason
from streams.pipeline.once import SOURCE_HEADER, source_of
from streams.providers.base import EnrichRequest
from streams.routing.router import Router
from streams.telemetry.propagation import as_headers, trace_of
from streams.vocab import Lane

__all__ = [
    "BATCH_DEFAULT_S",
    "LIVE_MAX_S",
    "TENANT_HEADER",
    "WINDOW_S",
    "BatchTarget",
    "Intake",
    "Ticket",
]

# A live call never waits longer than this, whatever the job's deadline.
LIVE_MAX_S = MAX_DEADLINE_MS / 1000
# A batch-lane job without a deadline of its own: the longest a vendor's batch may take.
BATCH_DEFAULT_S = MAX_BATCH_DEADLINE_MS / 1000


# A record may name its job's tenant here instead of in the job (a producer that cannot
# change the jobs it forwards).
TENANT_HEADER = "tenant"

# The vendors' completion window: "auto" sends a job to the batch lane only with this long.
WINDOW_S = 24 * 3600.0


@dataclass(frozen=True, kw_only=True)
class BatchTarget:
    provider: str
    model: str


def batch_target(job: RawJob, router: Router, *, apis: Collection[str]) -> BatchTarget | None:
    """Its preferred provider, or the first in the chain, that has a Batch API (OpenAI,
    Anthropic, Gemini) and is switched on; with none (DeepSeek, Ollama, or all off) it goes
    live."""
    options = job.options
    preferred = options.preferred_provider if options else None
    if preferred is not None and preferred not in apis:
        return None  # asked for a provider without a Batch API: live
    for name in ([preferred] if preferred else []) + list(router.chain):
        if name in apis and name in router.providers and router.enabled(name):
            model = options.model if options and options.model else router.adapter(name).model
            return BatchTarget(provider=name, model=model)
    return None


@dataclass(frozen=True, kw_only=True)
class Ticket:
    job: RawJob
    request: EnrichRequest
    taken_at: datetime  # wall clock
    budget_s: float  # the job's whole time, from taken_at
    deadline: Deadline  # the same, on the monotonic clock, at most LIVE_MAX_S
    batch: BatchTarget | None = None  # None: live
    source: str | None = None  # topic/partition/offset of its raw record; None: not a record
    original: OriginalRecord | None = None  # the record as it came, for a dead letter
    trace: Mapping[str, str] = field(default_factory=dict)  # the context it travels in

    @property
    def lane(self) -> Lane:
        return "live" if self.batch is None else "batch"

    @property
    def due_at(self) -> datetime:
        return self.taken_at + timedelta(seconds=self.budget_s)

    @property
    def headers(self) -> dict[str, bytes]:
        """Headers its outcome carries: the source, so a redo finds it published, and its
        trace context, so the outcome's consumer continues the job's trace."""
        headers = as_headers(self.trace)
        if self.source is not None:
            headers[SOURCE_HEADER] = self.source.encode()
        return headers

    def gone_live(self, *, clock: Clock = time.monotonic) -> Ticket:
        """This job in the live lane with the time it has left (its batch failed)."""
        return dataclasses.replace(self, batch=None, deadline=_left_until(self.due_at, clock))

    @classmethod
    def restored(
        cls,
        *,
        job: RawJob,
        request: EnrichRequest,
        taken_at: datetime,
        due_at: datetime,
        batch: BatchTarget,
        source: str,
        original: OriginalRecord,
        trace: Mapping[str, str],
    ) -> Ticket:
        """A batch-lane job's ticket as its partition's lane recorded it."""
        return cls(
            job=job,
            request=request,
            taken_at=taken_at,
            budget_s=(due_at - taken_at).total_seconds(),
            deadline=_left_until(due_at, time.monotonic),
            batch=batch,
            source=source,
            original=original,
            trace=trace,
        )


def _left_until(due_at: datetime, clock: Clock) -> Deadline:
    """A wall-clock deadline as a monotonic one, at most a live call's."""
    left = (due_at - datetime.now(UTC)).total_seconds()
    return Deadline.after(max(0.0, min(left, LIVE_MAX_S)), clock=clock)


class Intake:
    """Makes tickets with the router's current defaults and, for a job that may wait, the
    batch lane's choice of provider. ``clock`` is what deadlines count by (the router's)."""

    def __init__(
        self,
        *,
        router: Router,
        default_lane: Lane,
        batch_providers: Collection[str] = (),
        clock: Clock = time.monotonic,
    ) -> None:
        self.router = router
        self.default_lane = default_lane
        self.batch_providers = batch_providers  # those with a Batch API
        self.clock = clock

    def take(
        self,
        message: Any,
        *,
        since: float,
        trace: Mapping[str, str] | None = None,
        payload: bytes | None = None,
    ) -> Ticket:
        """The ticket for a raw record, or RecordRejected (from the parse error) for one
        that is not a job. ``since`` (on ``clock``): when the agent took it, its deadline's start;
        ``trace``, the context the job is worked in (by default, the record's own);
        ``payload``, its JSON when it came framed (by default, its value)."""
        value = message.value if payload is None else payload
        try:
            # One pass in pydantic's parser; the slow path below only for a bad record.
            job = RawJob.model_validate_json(value or b"")
        except ValidationError:
            job = _parse_slowly(value)
        job = _with_header_tenant(job, message.headers)
        return self.ticket(
            job,
            since=since,
            source=source_of(message).decode(),
            original=original_of(message),
            trace=trace_of(message.headers) if trace is None else trace,
        )

    def ticket(
        self,
        job: RawJob,
        *,
        since: float | None = None,
        source: str | None = None,
        original: OriginalRecord | None = None,
        trace: Mapping[str, str] | None = None,
    ) -> Ticket:
        """The ticket for a job that came as ``source`` (a record), or another way (None:
        always live). RecordRejected for a live job asking for more than a live call gets."""
        options = job.options
        lane = (
            (options.lane if options else None)
            or self.router.tenant(job.tenant).lane
            or self.default_lane
        )
        asked_s = options.deadline_ms / 1000 if options and options.deadline_ms else None
        if lane == "live" and asked_s is not None and asked_s > LIVE_MAX_S:
            raise RecordRejected(
                f"options.deadline_ms above {LIVE_MAX_S * 1000:.0f} needs lane 'batch' or "
                "'auto' (the lane is live: LLM_LANE, and the job sets none)",
                stage="validate",
                job_id=job.job_id,
            )
        batch = None
        if source is not None and _may_wait(lane, asked_s):
            batch = batch_target(job, self.router, apis=self.batch_providers)
        if batch is None:
            budget_s = min(asked_s or self.router.default_deadline_s, LIVE_MAX_S)
        else:
            budget_s = asked_s or BATCH_DEFAULT_S
        return Ticket(
            job=job,
            request=self.router.request_for(job),
            taken_at=datetime.now(UTC),
            budget_s=budget_s,
            deadline=Deadline.after(min(budget_s, LIVE_MAX_S), clock=self.clock, start=since),
            batch=batch,
            source=source,
            original=original,
            trace=trace or {},
        )


def _may_wait(lane: Lane, asked_s: float | None) -> bool:
    """Batch, or auto with a deadline of its own that leaves room for the vendors' window
    (a job without one has the live default)."""
    return lane == "batch" or (lane == "auto" and asked_s is not None and asked_s >= WINDOW_S)


def _with_header_tenant(job: RawJob, headers: Any) -> RawJob:
    """The job with the tenant its record's ``tenant`` header names, when the job names none;
    RecordRejected when the header is not a tenant or names another than the job."""
    pairs = headers.items() if isinstance(headers, Mapping) else headers or ()
    named = next((value for key, value in pairs if key == TENANT_HEADER), None)
    if named is None:
        return job
    try:
        tenant = tenant_named(bytes(named).decode("utf-8", errors="replace"))
    except ValidationError as exc:
        raise RecordRejected(
            f"header {TENANT_HEADER!r}: {reason(exc)}", stage="validate", job_id=job.job_id
        ) from exc
    if "tenant" not in job.model_fields_set:
        return job.model_copy(update={"tenant": tenant})
    if job.tenant != tenant:
        raise RecordRejected(
            f"the job's tenant is {job.tenant!r} and its {TENANT_HEADER!r} header says {tenant!r}",
            stage="validate",
            job_id=job.job_id,
        )
    return job


def _parse_slowly(value: bytes | None) -> RawJob:
    """The job, or RecordRejected naming the stage and, where the record has one, its id."""
    try:
        data = json.loads(bytes(value or b"").decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise RecordRejected(reason(exc), stage="decode", job_id=None) from exc
    try:
        return RawJob.model_validate(data)
    except (ValidationError, RecursionError) as exc:
        raise RecordRejected(reason(exc), stage="validate", job_id=job_id_of(data)) from exc
