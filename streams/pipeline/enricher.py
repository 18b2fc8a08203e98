"""One job's way from raw record to published outcome: decode, repost cache, route, publish.

Identical jobs in flight together (a burst of reposts: same repost key) make one provider call;
the others wait for it and are published ``cached: true``.

``handle`` serves a record of ``jobs.raw`` and never raises for a bad one: an exception
escaping a Faust agent acks and skips its record (Faust 0.15.3), so every per-record failure
becomes a dead letter here and nothing but cancellation leaves it. ``enrich`` is the same path
for a job that came some other way (the web view's ``/process``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from streams.deadline import Deadline
from streams.errors import EnrichmentFailed, ProviderError, PublishRejected
from streams.kafka.topics import Topics
from streams.models import (
    MAX_DEADLINE_MS,
    Attempt,
    DeadLetter,
    EnrichedJob,
    ErrorInfo,
    ProviderCall,
    RawJob,
    Usage,
)
from streams.pipeline.cache import CachedEnrichment, RepostCache, repost_key
from streams.pipeline.dead_letter import dead_letter, job_id_of
from streams.pipeline.lane import BatchLane
from streams.pipeline.lane.records import LaneJob
from streams.pipeline.once import SOURCE_HEADER, source_of
from streams.pipeline.publisher import Outgoing, publish, publish_all
from streams.providers.base import Completion
from streams.providers.prompt import prompt_version
from streams.routing.router import Routed, Router
from streams.vocab import Stage

log = logging.getLogger(__name__)

# A batch-lane job whose batch failed goes live if its deadline leaves at least this long.
LIVE_AFTER_BATCH_MIN_S = 5.0

Headers = dict[str, bytes]


class Enricher:
    def __init__(
        self,
        *,
        topics: Topics,
        router: Router,
        price_version: str,
        cache: RepostCache | None = None,
        lane: BatchLane | None = None,
    ) -> None:
        self.topics = topics
        self.lane = lane
        self.router = router
        self.price_version = price_version
        self.cache = cache
        # Identical jobs in flight (by repost key): one provider call serves them all.
        self._in_flight: dict[str, asyncio.Future[CachedEnrichment]] = {}
        self.jobs_finished = 0  # enriched or failed, since the start

    async def handle(self, event: Any, *, taken_at: float) -> None:
        """Enrich one raw record, or dead-letter it. ``taken_at`` (on the router's clock)
        is when the agent took the record: the job's deadline counts from there."""
        message = event.message
        # Names the record in its outcome, so a redo after a crash finds it published.
        source = {SOURCE_HEADER: source_of(message)}
        stage: Stage = "decode"
        job_id: str | None = None
        attempts: Sequence[Attempt] = ()
        try:
            try:
                # One pass in pydantic's parser; the slow path below only for a bad record.
                job = RawJob.model_validate_json(message.value or b"")
            except ValidationError:
                data = json.loads(bytes(message.value or b"").decode("utf-8"))
                stage, job_id = "validate", job_id_of(data)
                job = RawJob.model_validate(data)
            stage, job_id = "enrich", job.job_id
            choice = self.lane.choose(job) if self.lane is not None else None
            if self.lane is not None and choice is not None:
                await self.lane.accept(job, message, provider=choice[0], model=choice[1])
                return  # finished when its batch is
            deadline = self.router.deadline_for(job, taken_at=taken_at)
            await self.enrich(job, deadline=deadline, source=source)
            self.jobs_finished += 1
            return
        except (EnrichmentFailed, PublishRejected) as exc:
            failure: BaseException = exc
            stage = "publish" if isinstance(exc, PublishRejected) else "enrich"
            attempts = exc.attempts
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError, ValidationError) as exc:
            failure = exc
        except Exception as exc:  # a bug must cost one dead letter, not the record
            log.exception("unexpected error enriching record at offset %s", message.offset)
            failure = exc
        key, letter = dead_letter(message, stage, failure, job_id=job_id, attempts=attempts)
        await publish(self.topics.dead_letter, key, letter, headers=source)
        self.jobs_finished += 1

    async def enrich(
        self, job: RawJob, *, deadline: Deadline, source: Headers | None
    ) -> EnrichedJob:
        """The job enriched from the repost cache, from an identical job in flight, or
        through the router, published with its provider calls (and a new cache entry) in one
        broker round trip; the result itself goes to ``jobs.enriched`` with the ``source``
        headers of its raw record, or nowhere for a job that came another way (None).
        Raises EnrichmentFailed once the failed calls are published, PublishRejected if the
        broker refused a record for good."""
        key = repost_key(job)
        try:
            answer, routed = await self._answer(job, key, deadline)
        except EnrichmentFailed as exc:
            await publish_all(self._calls(job, exc.attempts))
            raise
        # Served without a call of its own (cache or an identical job): no attempts, no cost.
        if routed is None:
            calls = [Outgoing(self.topics.calls, job.job_id, self._cache_hit(job, answer))]
            return await self._publish_enriched(job, answer, calls=calls, source=source)
        return await self._publish_enriched(
            job,
            answer,
            attempts=routed.attempts,
            latency_ms=routed.latency_ms,
            calls=self._calls(job, routed.attempts),
            cache_key=key,
            source=source,
        )

    async def _publish_enriched(
        self,
        job: RawJob,
        answer: CachedEnrichment,
        *,
        calls: list[Outgoing],
        source: Headers | None,
        attempts: Sequence[Attempt] = (),
        latency_ms: float = 0.0,
        cache_key: str | None = None,
    ) -> EnrichedJob:
        """Publish an answer with its provider calls, and a new cache entry under
        ``cache_key`` when it came from a call of its own (without, it is ``cached``)."""
        enriched = EnrichedJob(
            job_id=job.job_id,
            job=job,
            enrichment=answer.enrichment,
            provider=answer.provider,
            model=answer.model,
            attempts=list(attempts),
            usage=answer.usage if cache_key else Usage(),
            latency_ms=latency_ms,
            cached=cache_key is None,
            prompt_version=prompt_version(),
        )
        outgoing = list(calls)
        if cache_key is not None and self.cache is not None:
            self.cache.put(cache_key, answer)  # at once: a repost right behind must not wait
            outgoing.append(Outgoing(self.topics.cache, cache_key, answer))
        if source is not None:
            outgoing.append(Outgoing(self.topics.enriched, job.job_id, enriched, source))
        try:
            await publish_all(outgoing)
        except PublishRejected as exc:
            raise PublishRejected(str(exc), attempts=enriched.attempts) from None
        return enriched

    # --- the batch lane's outcomes (a Finisher) ------------------------------------------------

    async def batch_succeeded(self, job: LaneJob, completion: Completion, *, batch_id: str) -> None:
        waited_ms = (time.time() - job.accepted_at.timestamp()) * 1000
        attempt = Attempt(
            provider=job.provider,
            model=completion.model,
            attempt=1,
            outcome="success",
            http_status=completion.http_status,
            latency_ms=waited_ms,
            usage=completion.usage,
        )
        answer = CachedEnrichment(
            enrichment=completion.enrichment,
            provider=job.provider,
            model=completion.model,
            usage=completion.usage,
        )
        source = {SOURCE_HEADER: job.source.encode()}
        try:
            await self._publish_enriched(
                job.job,
                answer,
                attempts=[attempt],
                latency_ms=waited_ms,
                calls=[self._batch_call(job.job, attempt, batch_id)],
                cache_key=repost_key(job.job),
                source=source,
            )
        except PublishRejected as exc:
            await self._dead_letter(job, "publish", type(exc).__name__, str(exc), exc.attempts)
            return
        self.jobs_finished += 1

    async def batch_failed(
        self, job: LaneJob, reason: str, *, batch_id: str | None, error: ProviderError | None
    ) -> None:
        """Live while the job's deadline leaves time, else its dead letter."""
        attempts: list[Attempt] = []
        if batch_id is not None and error is not None:  # the item ran and failed
            attempt = Attempt(
                provider=job.provider,
                model=job.model,
                attempt=1,
                outcome=error.outcome,
                http_status=error.status_code,
                latency_ms=(time.time() - job.accepted_at.timestamp()) * 1000,
                error=ErrorInfo(type=type(error).__name__, message=str(error)),
            )
            attempts.append(attempt)
            await publish_all([self._batch_call(job.job, attempt, batch_id)])
        detail = f"{reason}: {error}" if error is not None else reason
        left_s = job.deadline_at.timestamp() - time.time()
        if left_s >= LIVE_AFTER_BATCH_MIN_S:
            log.info("job %s goes live after its %s", job.job.job_id, detail)
            deadline = Deadline.after(min(left_s, MAX_DEADLINE_MS / 1000), clock=self.router.clock)
            try:
                await self.enrich(
                    job.job, deadline=deadline, source={SOURCE_HEADER: job.source.encode()}
                )
                self.jobs_finished += 1
                return
            except (EnrichmentFailed, PublishRejected) as exc:
                attempts += exc.attempts
                detail = f"{detail}; then live: {exc}"
        await self._dead_letter(job, "enrich", "BatchFailed", detail, attempts)

    async def _dead_letter(
        self, job: LaneJob, stage: Stage, kind: str, message: str, attempts: Sequence[Attempt]
    ) -> None:
        letter = DeadLetter(
            job_id=job.job.job_id,
            stage=stage,
            error=ErrorInfo(type=kind, message=message[:2000]),
            attempts=list(attempts),
            original=job.original,
        )
        source = {SOURCE_HEADER: job.source.encode()}
        await publish(self.topics.dead_letter, job.job.job_id, letter, headers=source)
        self.jobs_finished += 1

    def _batch_call(self, job: RawJob, attempt: Attempt, batch_id: str) -> Outgoing:
        call = ProviderCall.of(attempt, job_id=job.job_id, price_version=self.price_version)
        return Outgoing(
            self.topics.calls,
            job.job_id,
            call.model_copy(update={"lane": "batch", "batch_id": batch_id}),
        )

    async def _answer(
        self, job: RawJob, key: str, deadline: Deadline
    ) -> tuple[CachedEnrichment, Routed | None]:
        """The answer for ``key``: from the cache, from an identical job already in flight
        (which this one waits for, within its own deadline), or, as the leader of any that
        arrive meanwhile, from the router (then with its Routed). A follower whose leader
        failed takes over rather than failing with it."""
        while True:
            cached = self.cache.get(key) if self.cache is not None else None
            if cached is not None:
                return cached, None
            leader = self._in_flight.get(key)
            if leader is None:
                return await self._lead(job, key, deadline)
            done, _ = await asyncio.wait([leader], timeout=deadline.left())
            if not done:
                raise deadline.exceeded("waiting for an identical job in flight")
            if not leader.cancelled():
                return leader.result(), None

    async def _lead(
        self, job: RawJob, key: str, deadline: Deadline
    ) -> tuple[CachedEnrichment, Routed]:
        answer: asyncio.Future[CachedEnrichment] = asyncio.get_running_loop().create_future()
        self._in_flight[key] = answer
        try:
            routed = await self.router.enrich(job, deadline=deadline)
        except BaseException:
            answer.cancel()  # the followers take over
            raise
        finally:
            del self._in_flight[key]
        result = CachedEnrichment(
            enrichment=routed.completion.enrichment,
            provider=routed.provider,
            model=routed.completion.model,
            usage=routed.completion.usage,
        )
        answer.set_result(result)
        return result, routed

    def _calls(self, job: RawJob, attempts: Sequence[Attempt]) -> list[Outgoing]:
        calls = (
            ProviderCall.of(attempt, job_id=job.job_id, price_version=self.price_version)
            for attempt in attempts
        )
        return [Outgoing(self.topics.calls, job.job_id, call) for call in calls]

    def _cache_hit(self, job: RawJob, cached: CachedEnrichment) -> ProviderCall:
        return ProviderCall(
            provider=cached.provider,
            model=cached.model,
            job_id=job.job_id,
            attempt=1,
            outcome="cache_hit",
            latency_ms=0.0,
            usage=cached.usage,
            price_version=self.price_version,
        )
