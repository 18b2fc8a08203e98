"""Where every job ends, whichever way it came and whichever lane answered it.

An enriched job: its result (on ``jobs.enriched`` for a job that came as a record, with the
source header that lets a redo find it), its provider calls on ``llm.calls`` and, for an
answer of its own, a repost-cache entry, all in one broker round trip. A failed job: its dead
letter (for a record) and its provider calls, also in one. Each job is counted once, by how
it ended, here and nowhere else.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, Literal

from streams.errors import EnrichmentFailed, PublishRejected, RecordRejected
from streams.kafka.producer import Producer
from streams.kafka.publisher import Outgoing, publish_all
from streams.kafka.topics import Topics
from streams.models import Attempt, EnrichedJob, OriginalRecord, ProviderCall, RawJob, Usage
from streams.pipeline.cache import CachedEnrichment, RepostCache
from streams.pipeline.dead_letter import dead_letter, original_of
from streams.pipeline.once import SOURCE_HEADER, source_of
from streams.pipeline.ticket import Ticket
from streams.providers.prompt import prompt_version
from streams.routing.journal import NO_JOURNAL, Journal
from streams.telemetry.spans import Telemetry
from streams.vocab import Stage

__all__ = ["Outcomes"]

log = logging.getLogger(__name__)

# enriched: published (or answered to a caller); dead_lettered: a record's dead letter;
# failed: a caller's job (``/process``) that no provider could answer.
Ending = Literal["enriched", "dead_lettered", "failed"]


class Outcomes:
    def __init__(
        self,
        *,
        topics: Topics,
        producer: Producer,
        price_version: str,
        cache: RepostCache | None,
        remember: Callable[[str], None] | None = None,
        telemetry: Telemetry = Telemetry.OFF,
        shadow: Callable[[Ticket, EnrichedJob], None] | None = None,
        journal: Journal = NO_JOURNAL,
    ) -> None:
        self.topics = topics
        # Where the calls were recorded before they left: a call's ledger event waits for
        # its record (long since written).
        self._journal = journal
        # Told each job answered by calls of its own, once its result is published: the
        # shadow candidates' turn (never before, so they cannot delay or change it).
        self._shadow = shadow or (lambda ticket, enriched: None)
        self.producer = producer
        self.telemetry = telemetry
        self.price_version = price_version
        self.cache = cache
        # Told the source of each record whose outcome is published (pay-once's memory).
        self._remember = remember or (lambda source: None)
        self.counts: Counter[Ending] = Counter()
        self._publishing: set[asyncio.Task[Any]] = set()

    def publishing(self, task: asyncio.Task[Any]) -> bool:
        """Whether ``task`` (a job's) is publishing its outcome now: not to be cut short."""
        return task in self._publishing

    async def _publish(
        self,
        outgoing: list[Outgoing],
        *,
        source: str | None,
        attempts: Sequence[Attempt] = (),
    ) -> None:
        """``outgoing``, with the ledger events of ``attempts`` among them."""
        task = asyncio.current_task()
        assert task is not None
        self._publishing.add(task)
        try:
            await self._journal.written(a.call_id for a in attempts)
            await publish_all(self.producer, outgoing)
        finally:
            self._publishing.discard(task)
        if source is not None:
            self._remember(source)

    @property
    def finished(self) -> int:
        return self.counts.total()

    async def enriched(
        self,
        ticket: Ticket,
        answer: CachedEnrichment,
        *,
        attempts: Sequence[Attempt] = (),
        latency_ms: float = 0.0,
        cache_key: str | None = None,
    ) -> EnrichedJob | PublishRejected:
        """Publish ``answer``. With ``cache_key`` it came from calls of its own (``attempts``)
        and is cached under that key; without, it was served without a call (the repost
        cache, or an identical job in flight) and is ``cached``. When the broker refuses a
        record for good the job fails (``failed``), and the refusal is returned."""
        job = ticket.job
        own = cache_key is not None
        enriched = EnrichedJob(
            job_id=job.job_id,
            job=job,
            enrichment=answer.enrichment,
            provider=answer.provider,
            model=answer.model,
            attempts=list(attempts),
            usage=answer.usage if own else Usage(),
            latency_ms=latency_ms,
            cached=not own,
            prompt_version=prompt_version(),
        )
        if not own:  # the ledger says what the call it replaced cost
            attempts = [
                Attempt(
                    provider=answer.provider,
                    model=answer.model,
                    attempt=1,
                    outcome="cache_hit",
                    latency_ms=0.0,
                    usage=answer.usage,
                )
            ]
        outgoing = self._ledger(job, attempts)
        if cache_key is not None and self.cache is not None:
            entry = self.topics.cache.encode(answer)  # once, for the cache and its topic
            # at once: a repost right behind must not wait
            self.cache.put(cache_key, entry, stored_at=answer.stored_at.timestamp())
            outgoing.append(Outgoing(self.topics.cache.name, cache_key, entry))
        if ticket.source is not None:
            outgoing.append(
                self.topics.enriched.record(job.job_id, enriched, headers=ticket.headers)
            )
        try:
            await self._publish(outgoing, source=ticket.source, attempts=attempts)
        except PublishRejected as exc:
            refused = PublishRejected(str(exc), attempts=enriched.attempts)
            await self.failed_for_good(ticket, refused, stage="publish")
            return refused
        self._ended("enriched")
        if own:
            self._shadow(ticket, enriched)
        return enriched

    async def failed_for_good(
        self,
        ticket: Ticket,
        failure: BaseException,
        *,
        stage: Stage,
    ) -> None:
        """A job no provider answered (``EnrichmentFailed``), whose result the broker
        refused (``PublishRejected``), or that met a bug: its calls on the ledger and, for a
        record, its dead letter."""
        attempts: Sequence[Attempt] = ()
        if isinstance(failure, EnrichmentFailed | PublishRejected):
            attempts = failure.attempts
        # A PublishRejected's attempts are on the ledger already, with the result refused.
        ledger = attempts if not isinstance(failure, PublishRejected) else ()
        outgoing = self._ledger(ticket.job, ledger)
        if ticket.original is not None:
            key, letter = dead_letter(
                ticket.original, stage, failure, job=ticket.job, attempts=attempts
            )
            outgoing.append(self.topics.dead_letter.record(key, letter, headers=ticket.headers))
        await self._publish(outgoing, source=ticket.source, attempts=ledger)
        self._ended("dead_lettered" if ticket.original is not None else "failed", failure)

    async def rejected(self, failure: RecordRejected, *, message: Any) -> None:
        """A record that is not a job (Faust ``message``): its dead letter."""
        await self.refused(
            failure, original=original_of(message), source=source_of(message).decode()
        )

    async def refused(
        self, failure: RecordRejected, *, original: OriginalRecord, source: str
    ) -> None:
        """The record ``original`` (from ``source``) that cannot be taken: its dead letter."""
        key, letter = dead_letter(original, failure.stage, failure, job_id=failure.job_id)
        headers = {SOURCE_HEADER: source.encode()}
        await self._publish(
            [self.topics.dead_letter.record(key, letter, headers=headers)], source=source
        )
        self._ended("dead_lettered", failure)

    async def abandoned(self, calls: Sequence[tuple[RawJob, Attempt]]) -> None:
        """Calls cut off under way when their jobs were given back (a rebalance): on the
        ledger with their estimated cost; the jobs themselves end elsewhere."""
        await self._journal.written(a.call_id for _, a in calls)
        await publish_all(self.producer, [o for job, a in calls for o in self._ledger(job, [a])])

    def _ended(self, ending: Ending, failure: BaseException | None = None) -> None:
        self.counts[ending] += 1
        error_type = type(failure).__name__ if failure is not None else None
        self.telemetry.ended(ending, error_type=error_type)

    def _ledger(self, job: RawJob, attempts: Sequence[Attempt]) -> list[Outgoing]:
        version = self.price_version
        return [
            self.topics.calls.record(
                job.job_id,
                ProviderCall.of(a, job_id=job.job_id, tenant=job.tenant, price_version=version),
            )
            for a in attempts
        ]
