"""The live lane: a ticket answered from the repost cache, by an identical job in flight, or
through the router, and finished through the outcome sink.

Identical jobs in flight together (a burst of reposts: same repost key) make one provider call;
the others wait for it and are published ``cached: true``.

``finish`` never raises for a job that fails: an exception escaping a Faust agent acks and
skips its record (Faust 0.15.3), so every per-job failure becomes a dead letter (or, for a
caller's job, a failed answer) here, and nothing but cancellation leaves it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from streams.deadline import Deadline
from streams.errors import EnrichmentFailed
from streams.models import Attempt, EnrichedJob
from streams.pipeline.cache import CachedEnrichment, RepostCache, repost_key
from streams.pipeline.outcome import Outcomes
from streams.pipeline.ticket import Ticket
from streams.providers.base import EnrichRequest
from streams.routing.router import Routed, Router

__all__ = ["LiveLane"]

log = logging.getLogger(__name__)


class LiveLane:
    def __init__(self, *, router: Router, outcomes: Outcomes, cache: RepostCache | None) -> None:
        self.router = router
        self.outcomes = outcomes
        self.cache = cache
        # Identical jobs in flight (by repost key): one provider call serves them all.
        self._in_flight: dict[str, asyncio.Future[CachedEnrichment]] = {}

    async def finish(
        self, ticket: Ticket, *, earlier: Sequence[Attempt] = ()
    ) -> EnrichedJob | Exception:
        """The job enriched and published, or its failure, published and returned.
        ``earlier``: attempts made for it before (a batch that failed), kept in its history."""
        try:
            key = repost_key(ticket.job)
            answer, routed = await self._answer(ticket, key)
            if routed is None:  # served without a call of its own
                return await self.outcomes.enriched(ticket, answer)
            return await self.outcomes.enriched(
                ticket,
                answer,
                attempts=[*earlier, *routed.attempts],
                latency_ms=routed.latency_ms,
                cache_key=key,
            )
        except EnrichmentFailed as exc:
            exc.attempts[:0] = earlier
            failure: Exception = exc
        except Exception as exc:  # a bug must cost one dead letter, not the record
            log.exception("unexpected error enriching job %s", ticket.job.job_id)
            failure = exc
        await self.outcomes.failed_for_good(ticket, failure, stage="enrich")
        return failure

    async def _answer(self, ticket: Ticket, key: str) -> tuple[CachedEnrichment, Routed | None]:
        """The answer for ``key``: from the cache, from an identical job already in flight
        (which this one waits for, within its own deadline), or, as the leader of any that
        arrive meanwhile, from the router (then with its Routed). A follower whose leader
        failed takes over rather than failing with it."""
        while True:
            cached = self.cache.get(key) if self.cache is not None else None
            if cached is not None:
                return cached, None
            leader = self._in_flight.get(key)
            deadline = ticket.deadline
            if leader is None:
                return await self._lead(ticket.request, key, deadline)
            done, _ = await asyncio.wait([leader], timeout=deadline.left())
            if not done:
                raise deadline.exceeded("waiting for an identical job in flight")
            if not leader.cancelled():
                return leader.result(), None

    async def _lead(
        self, request: EnrichRequest, key: str, deadline: Deadline
    ) -> tuple[CachedEnrichment, Routed]:
        answer: asyncio.Future[CachedEnrichment] = asyncio.get_running_loop().create_future()
        self._in_flight[key] = answer
        try:
            routed = await self.router.enrich(request, deadline=deadline)
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
