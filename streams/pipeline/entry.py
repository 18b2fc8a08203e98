"""The pipeline's one door: the enrich agent hands it records, the web view a caller's jobs
and its questions (the routing, the batch lane, the repost cache), so neither reaches past it
into a lane, the router or the sink."""

from __future__ import annotations

import logging
import time
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict

from streams.errors import BudgetExhausted, PublishRejected, RecordRejected
from streams.models import EnrichedJob, RawJob
from streams.pipeline.batch.lane import BatchLane, BatchLaneStatus
from streams.pipeline.live import LiveLane
from streams.pipeline.outcome import Outcomes
from streams.pipeline.ticket import Intake, Ticket
from streams.pipeline.unframe import RawValues
from streams.pipeline.waiting.lane import TenantStatus, WaitingLane
from streams.pipeline.waiting.records import WaitingJob
from streams.providers.base import Provider
from streams.routing.status import RoutingStatus
from streams.telemetry.spans import JobSpan, Telemetry

__all__ = ["CacheStatus", "Pipeline"]

log = logging.getLogger(__name__)


class CacheStatus(BaseModel):
    """The repost cache on this worker."""

    model_config = ConfigDict(frozen=True)

    enabled: bool
    entries: int | None = None
    replayed: bool | None = None


@dataclass(frozen=True, kw_only=True)
class Pipeline:
    """Where a record goes once taken: its ticket, then the lane it asks for."""

    intake: Intake
    live: LiveLane
    batch: BatchLane
    waiting: WaitingLane
    outcomes: Outcomes
    telemetry: Telemetry = Telemetry.OFF
    group: str = ""  # the consumer group, for the process spans
    raw_values: RawValues = field(default_factory=RawValues)  # plain or framed records

    async def take(self, message: Any) -> Coroutine[Any, Any, object]:
        """What finishes the record (waiting first, for a live job, until some provider can
        take a call: the time waited counts against its deadline), in its trace."""
        since = self.intake.clock()
        span = self.telemetry.consumed(message, group=self.group)
        try:
            payload = await self.raw_values.payload(message.value)
            ticket = self.intake.take(message, since=since, trace=span.trace, payload=payload)
        except RecordRejected as exc:
            return span.around(self.outcomes.rejected(exc, message=message))
        if (reason := self.waiting.reason_to_wait(ticket)) is not None:
            entry = self.waiting.reserve(ticket, reason=reason)
            return span.around(self._to_waiting(ticket, entry))
        if ticket.batch is not None:
            return span.around(self._to_batch(ticket))
        waiting_since = time.time_ns()
        try:
            await self.live.router.wait_for_capacity()
        except BaseException:
            span.close()
            raise
        span.waited("intake paused", started_ns=waiting_since)
        return span.around(self._live(ticket))

    async def _live(self, ticket: Ticket) -> None:
        async with self.waiting.working(ticket.job.tenant):
            await self.live.finish(ticket)

    async def _to_waiting(self, ticket: Ticket, entry: WaitingJob) -> None:
        try:
            await self.waiting.hold(entry)
        except PublishRejected as exc:  # the broker refuses to keep it: said, not lost
            await self.outcomes.failed_for_good(ticket, exc, stage="publish")

    async def released(self, entry: WaitingJob) -> None:
        """A job the waiting lane lets go: answered as a record's job is (the ticket made
        now, so its deadline counts from here); its shares are counted by the lane."""
        try:
            ticket = self.intake.ticket(
                entry.job,
                since=self.intake.clock(),
                source=entry.source,
                original=entry.original,
                trace=entry.trace,
            )
        except RecordRejected as exc:  # the settings changed while it waited
            await self.outcomes.refused(exc, original=entry.original, source=entry.source)
            return
        if ticket.batch is not None:
            await self._to_batch(ticket)
        else:
            await self.live.finish(ticket)

    async def _to_batch(self, ticket: Ticket) -> None:
        try:
            await self.batch.accept(ticket)
        except Exception as exc:  # a bug must cost one dead letter, not the record
            log.exception("unexpected error taking job %s into the batch lane", ticket.job.job_id)
            await self.outcomes.failed_for_good(ticket, exc, stage="enrich")

    # --- a caller's job, and the web view's questions ----------------------------------------

    async def process(self, job: RawJob) -> EnrichedJob | BaseException:
        """A caller's job through the live path a record takes (repost cache, router, audit
        events), its answer not published: the enriched job, or why it failed.
        RecordRejected when the job cannot be taken (the caller's mistake)."""
        ticket = self.intake.ticket(job)
        if self.live.router.tenant_over_budget(job.tenant):
            return BudgetExhausted(f"tenant {job.tenant!r} is over its daily budget")
        async with self.waiting.working(job.tenant):
            return await self.live.finish(ticket)

    def requested(self, headers: Any, *, method: str, route: str) -> JobSpan:
        """The span of a request to the web view, in the trace its headers name."""
        return self.telemetry.requested(headers, method=method, route=route)

    def routing(self) -> RoutingStatus:
        return self.live.router.status()

    def batch_status(self) -> Mapping[str, BatchLaneStatus]:
        return self.batch.status()

    def tenant_status(self) -> dict[str, TenantStatus]:
        return self.waiting.status()

    def cache_status(self) -> CacheStatus:
        cache = self.live.cache
        if cache is None:
            return CacheStatus(enabled=False)
        return CacheStatus(enabled=True, entries=cache.entries, replayed=cache.ready.is_set())

    def adapter(self, name: str) -> Provider:
        """A provider's adapter, for a call outside routing (a health check, a test call)."""
        return self.live.router.adapter(name)

    @property
    def finished(self) -> int:
        """Jobs finished on this worker since it started."""
        return self.outcomes.finished
