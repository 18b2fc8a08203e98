"""Shadow candidates on live traffic (``LLM_SHADOW``): after a sampled job's answer is
published, each candidate that samples it gets the same request, and the two answers go to
``llm.shadow`` compared field by field (``record``), the candidate's calls to ``llm.calls``
with lane ``shadow``.

A job is sampled by a hash of its id, so every worker, and a replay, picks the same jobs.
The shadow call starts only after the live result is published (``Outcomes`` hands the job
over then) and runs in a task of its own, so it never delays or changes the live result.
Each candidate has a router of its own: its group limits (shared out by partition like the
providers'), its daily budget (summed from ``llm.shadow`` by every worker, ``spend``), its
retries and circuit; a live budget its provider is over stops it too. A sampled job finds
room in the candidate's queue on this worker or is dropped, and a drop is published as such,
so reports count it.

Pay-once holds: the call follows a published live result, and a raw record redone after a
crash whose result was published is skipped whole (``pipeline.once``), shadow included. What
was queued or under way when a worker died is lost, not redone: a sample, not a job.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from streams.config.slices import RoutingConfig, ShadowCandidate
from streams.deadline import Deadline
from streams.errors import EnrichmentFailed
from streams.kafka.producer import Producer
from streams.kafka.publisher import publish_all
from streams.kafka.topics import Topics
from streams.models import MAX_DEADLINE_MS, EnrichedJob, ShadowResult
from streams.pipeline.ticket import Ticket
from streams.providers.base import EnrichRequest, Provider
from streams.routing.journal import NO_JOURNAL, Journal
from streams.routing.limits import WHOLE, Share
from streams.routing.router import Routed, Router
from streams.shadow.record import compared, dropped, ledger
from streams.telemetry.spans import Telemetry

__all__ = ["SHADOW_DEADLINE_S", "Shadows", "candidate_routing", "sampled"]

log = logging.getLogger(__name__)

# A shadow call may wait this long for its limits once it leaves the queue.
SHADOW_DEADLINE_S = MAX_DEADLINE_MS / 1000


def sampled(job_id: str, share: float) -> bool:
    """Whether the job is in the ``share`` of jobs a candidate sees: the same answer on
    every worker and every run, and a smaller share's jobs are within a larger one's."""
    digest = hashlib.blake2b(job_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < share


def candidate_routing(candidate: ShadowCandidate, routing: RoutingConfig) -> RoutingConfig:
    """The live routing with the candidate alone in the chain, under its limits and budget."""
    name = candidate.provider
    budget = candidate.daily_budget_usd
    return dataclasses.replace(
        routing,
        chain=(name,),
        strategy="priority",
        limits={name: candidate.limits},
        budgets={} if budget is None else {name: budget},
    )


@dataclasses.dataclass(kw_only=True)
class _Candidate:
    config: ShadowCandidate
    router: Router
    tasks: set[asyncio.Task[None]] = dataclasses.field(default_factory=set)


class Shadows:
    def __init__(
        self,
        candidates: Sequence[ShadowCandidate],
        *,
        routing: RoutingConfig,
        providers: Mapping[str, Provider],
        topics: Topics,  # writes shadow and calls
        producer: Producer,
        price_version: str,
        provider_over_budget: Callable[[str], bool],
        telemetry: Telemetry = Telemetry.OFF,
        journal: Journal = NO_JOURNAL,
    ) -> None:
        self.topics = topics
        self.journal = journal
        self.producer = producer
        self.price_version = price_version
        self.telemetry = telemetry
        self._providers = providers
        self._provider_over_budget = provider_over_budget
        self._share = WHOLE
        self._spent: Mapping[str, float] = {}
        self._candidates: dict[str, _Candidate] = {}
        self._tasks: set[asyncio.Task[None]] = set()  # every candidate's, also one taken out
        self.reconfigure(candidates, routing)

    def reconfigure(self, candidates: Sequence[ShadowCandidate], routing: RoutingConfig) -> None:
        """At start and for every config patch. A candidate taken out finishes what it was
        sent and takes nothing more."""
        kept: dict[str, _Candidate] = {}
        for config in candidates:
            slot = self._candidates.get(config.name)
            routed = candidate_routing(config, routing)
            if slot is None:
                providers: dict[str, Provider] = {config.provider: self._providers[config.provider]}
                router = Router(
                    routed,
                    providers,
                    telemetry=self.telemetry,
                    lane="shadow",
                    journal=self.journal,
                )
                router.set_share(self._share)
                slot = _Candidate(config=config, router=router)
            else:
                slot.config = config
                slot.router.reconfigure(routed)
            slot.router.set_spent_today({config.provider: self._spent.get(config.name, 0.0)})
            kept[config.name] = slot
        self._candidates = kept

    def set_share(self, share: Share) -> None:
        self._share = share
        for slot in self._candidates.values():
            slot.router.set_share(share)

    def set_spent_today(self, spent: Mapping[str, float]) -> None:
        """Today's shadow spend per candidate for the whole group (USD)."""
        self._spent = spent
        for name, slot in self._candidates.items():
            slot.router.set_spent_today({slot.config.provider: spent.get(name, 0.0)})

    def offer(self, ticket: Ticket, enriched: EnrichedJob) -> None:
        """A job whose live result is published: sent to each candidate that samples it."""
        for slot in self._candidates.values():
            if sampled(enriched.job_id, slot.config.sample):
                self._start(slot, self._shadowed(slot, ticket, enriched))

    def _start(self, slot: _Candidate, work: Any) -> None:
        task = asyncio.ensure_future(work)
        for tasks in (slot.tasks, self._tasks):
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    async def _shadowed(self, slot: _Candidate, ticket: Ticket, enriched: EnrichedJob) -> None:
        config = slot.config
        reason = self._why_not(slot)
        if reason is not None:
            await self._publish(dropped(config, enriched, origin="live", reason=reason), ticket)
            return
        request = slot.router.request_for(
            ticket.job, model=config.model, instructions=config.instructions
        )
        try:
            answer = await self._ask(slot.router, request)
            result = compared(config, enriched, answer, origin="live")
            await self._publish(result, ticket)
        except Exception:  # a bug costs one sample, never the worker
            log.exception("shadow %s: job %s", config.name, enriched.job_id)

    def _why_not(self, slot: _Candidate) -> str | None:
        """Why the candidate cannot take one more job now, or None."""
        config = slot.config
        if len(slot.tasks) > config.queue:  # this job's task is one of them
            return f"queue full ({config.queue} waiting on this worker)"
        if slot.router.over_budget(config.provider):
            return f"over its daily budget ({config.daily_budget_usd} USD)"
        if self._provider_over_budget(config.provider):
            return f"{config.provider} is over its live daily budget"
        return None

    @staticmethod
    async def _ask(router: Router, request: EnrichRequest) -> Routed | EnrichmentFailed:
        try:
            return await router.enrich(request, deadline=Deadline.after(SHADOW_DEADLINE_S))
        except EnrichmentFailed as exc:
            return exc

    async def _publish(self, result: ShadowResult, ticket: Ticket) -> None:
        """The result, and its candidate's calls on the ledger."""
        calls = ledger(result, price_version=self.price_version)
        await self.journal.written(c.call_id for c in calls)
        await publish_all(
            self.producer,
            [
                *(self.topics.calls.record(result.job_id, call) for call in calls),
                self.topics.shadow.record(result.job_id, result, headers=ticket.headers),
            ],
        )

    def over_budget(self, name: str) -> bool:
        """Whether candidate ``name`` has spent its daily budget (for the whole group)."""
        slot = self._candidates[name]
        return slot.router.over_budget(slot.config.provider)

    def pending(self) -> dict[str, int]:
        """Shadow calls queued or under way on this worker, per candidate."""
        return {name: len(slot.tasks) for name, slot in self._candidates.items()}

    async def close(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
