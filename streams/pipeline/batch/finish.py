"""A batch-lane job's end: its batch answered it, or it goes live while its deadline leaves
time, or it is a dead letter. Every end goes through the outcome sink, like a live job's."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from streams.errors import BatchFailed, ProviderError, failed_attempt
from streams.models import Attempt
from streams.pipeline.batch.records import LaneJob
from streams.pipeline.cache import CachedEnrichment, repost_key
from streams.pipeline.live import LiveLane
from streams.pipeline.outcome import Outcomes
from streams.pipeline.ticket import BatchTarget, Ticket
from streams.providers.base import Completion, EnrichRequest
from streams.telemetry.spans import Telemetry

__all__ = ["LaneFinisher"]

log = logging.getLogger(__name__)

# A batch-lane job whose batch failed goes live if its deadline leaves at least this long.
LIVE_AFTER_BATCH_MIN_S = 5.0


class LaneFinisher:
    def __init__(
        self,
        *,
        outcomes: Outcomes,
        live: LiveLane,
        request_for: Callable[[LaneJob], EnrichRequest],
        base_urls: Mapping[str, str],
        telemetry: Telemetry = Telemetry.OFF,
    ) -> None:
        self.outcomes = outcomes
        self.live = live
        self.request_for = request_for
        self.base_urls = base_urls  # each provider's, for its spans
        self.telemetry = telemetry

    def ticket(self, job: LaneJob) -> Ticket:
        """The job's ticket, as its lane recorded it."""
        return Ticket.restored(
            job=job.job,
            request=self.request_for(job),
            taken_at=job.taken_at,
            due_at=job.due_at,
            batch=BatchTarget(provider=job.provider, model=job.model),
            source=job.source,
            original=job.original,
            trace=job.trace,
        )

    async def succeeded(self, job: LaneJob, completion: Completion, *, batch_id: str) -> None:
        waited_ms = (datetime.now(UTC) - job.taken_at).total_seconds() * 1000
        attempt = completion.attempt(
            provider=job.provider, attempt=1, latency_ms=waited_ms, batch_id=batch_id
        )
        answer = CachedEnrichment(
            enrichment=completion.enrichment,
            provider=job.provider,
            model=completion.model,
            usage=completion.usage,
        )
        ticket = self.ticket(job)
        with self.telemetry.resumed(ticket.trace):
            self._traced(ticket, attempt, completion)
            await self.outcomes.enriched(
                ticket,
                answer,
                attempts=[attempt],
                latency_ms=waited_ms,
                cache_key=repost_key(job.job),
            )

    async def fall_back(
        self, job: LaneJob, reason: str, *, batch_id: str | None, error: ProviderError | None
    ) -> None:
        """The batch did not answer ``job``: not final while its deadline leaves time for a
        live call, which it then gets; else its dead letter."""
        attempts: list[Attempt] = []
        if batch_id is not None and error is not None:  # the item ran and failed
            waited_ms = (datetime.now(UTC) - job.taken_at).total_seconds() * 1000
            attempts.append(
                failed_attempt(
                    error,
                    provider=job.provider,
                    model=job.model,
                    attempt=1,
                    latency_ms=waited_ms,
                    batch_id=batch_id,
                )
            )
        detail = f"{reason}: {error}" if error is not None else reason
        ticket = self.ticket(job)
        left_s = (ticket.due_at - datetime.now(UTC)).total_seconds()
        with self.telemetry.resumed(ticket.trace):
            for attempt in attempts:
                self._traced(ticket, attempt, None)
            if left_s < LIVE_AFTER_BATCH_MIN_S:
                await self.outcomes.failed_for_good(
                    ticket, BatchFailed(detail, attempts=attempts), stage="enrich"
                )
                return
            log.info("job %s goes live after its %s", job.job.job_id, detail)
            await self.live.finish(ticket.gone_live(), earlier=attempts)

    def _traced(self, ticket: Ticket, attempt: Attempt, completion: Completion | None) -> None:
        """The batch item as an attempt span: from the lane taking the job to its answer,
        the time at the vendor included."""
        self.telemetry.batch_item(
            attempt,
            job_id=ticket.job.job_id,
            request=ticket.request,
            base_url=self.base_urls[attempt.provider],
            started_ns=int(ticket.taken_at.timestamp() * 1e9),
            completion=completion,
        )
