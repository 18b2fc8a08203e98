"""One candidate's answers to a list of jobs, paid once each: through its vendor's Batch API
where it has one (at the batch rate), else live calls under its own limits and budget. The
backfill and the evaluation sets ask this way; live shadowing asks per job as traffic comes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from streams.config.slices import RoutingConfig, ShadowCandidate
from streams.deadline import Deadline
from streams.errors import EnrichmentFailed, ProviderUnavailable, failed_attempt
from streams.models import RawJob
from streams.providers.base import EnrichRequest, Provider
from streams.providers.batch.base import BatchAPI, ItemOutcome
from streams.routing.journal import NO_JOURNAL, Journal
from streams.routing.router import Routed, Router, request_for
from streams.shadow.runner import SHADOW_DEADLINE_S, candidate_routing

__all__ = ["LIVE_CONCURRENCY", "Answer", "CandidateCalls", "live_answers"]

LIVE_CONCURRENCY = 16  # live calls at once, within the candidate's own limits

Answer = Routed | EnrichmentFailed


@dataclass(frozen=True, kw_only=True)
class CandidateCalls:
    candidate: ShadowCandidate
    routing: RoutingConfig
    provider: Provider
    batch_api: BatchAPI | None  # None: the vendor has none
    poll_s: float  # how often a batch is polled

    def request(self, job: RawJob) -> EnrichRequest:
        """What the candidate is asked for ``job``: as live shadowing asks it (the job's
        own options, the candidate's model and prompt variant)."""
        return request_for(
            job,
            self.routing,
            model=self.candidate.model,
            instructions=self.candidate.instructions,
        )

    def by_batch(self, *, live: bool = False) -> bool:
        """Whether ``answer`` goes through the Batch API (``live``: never)."""
        return self.batch_api is not None and not live

    async def answer(
        self,
        jobs: Sequence[RawJob],
        *,
        label: str,
        live: bool = False,
        progress: Callable[[str], None] = lambda line: None,
        journal: Journal = NO_JOURNAL,
    ) -> dict[str, Answer]:
        """Each job's answer or failure, by job id (``label``: what a batch is named for,
        with the time; ``journal``: where a live call is recorded before it leaves)."""
        if not jobs:
            return {}
        if self.by_batch(live=live):
            return await self._batched(jobs, f"{label}-{int(time.time())}", progress)
        return await self._live(jobs, journal)

    async def _batched(
        self, jobs: Sequence[RawJob], label: str, progress: Callable[[str], None]
    ) -> dict[str, Answer]:
        api = self.batch_api
        assert api is not None
        model = self.candidate.model
        started = time.monotonic()
        batch_id = await api.submit(
            label=label,
            model=model,
            requests=[(job.job_id, self.request(job)) for job in jobs],
        )
        progress(f"submitted batch {batch_id} of {len(jobs)} jobs to {api.name}")
        # The vendor tells nothing when a batch ends: polled, as the batch lane does.
        while (status := await api.poll(batch_id, model=model)).state == "running":  # noqa: ASYNC110
            await asyncio.sleep(self.poll_s)
        progress(f"batch {batch_id} {status.state} {status.detail}".rstrip())
        latency_ms = (time.monotonic() - started) * 1000
        gone = api.not_run(f"batch {status.state}: {status.detail}")
        return {
            job.job_id: self._read(status.items.get(job.job_id, gone), batch_id, latency_ms)
            for job in jobs
        }

    def _read(self, item: ItemOutcome, batch_id: str, latency_ms: float) -> Answer:
        name, model = self.candidate.provider, self.candidate.model
        if item.completion is not None:
            attempt = item.completion.attempt(
                provider=name, attempt=1, latency_ms=latency_ms, batch_id=batch_id
            )
            return Routed(
                completion=item.completion, provider=name, attempts=[attempt], latency_ms=latency_ms
            )
        error = item.error or ProviderUnavailable("no result", provider=name)
        attempt = failed_attempt(
            error, provider=name, model=model, attempt=1, latency_ms=latency_ms
        )
        return EnrichmentFailed(
            str(error), attempts=[attempt.model_copy(update={"batch_id": batch_id})]
        )

    async def _live(self, jobs: Sequence[RawJob], journal: Journal) -> dict[str, Answer]:
        providers: Mapping[str, Provider] = {self.candidate.provider: self.provider}
        routing = candidate_routing(self.candidate, self.routing)
        router = Router(routing, providers, lane="shadow", journal=journal)
        return await live_answers(router, jobs, request=self.request)


async def live_answers(
    router: Router, jobs: Sequence[RawJob], *, request: Callable[[RawJob], EnrichRequest]
) -> dict[str, Answer]:
    """Each job's answer from ``router``, ``LIVE_CONCURRENCY`` at a time, by job id."""
    room = asyncio.Semaphore(LIVE_CONCURRENCY)

    async def ask(job: RawJob) -> Answer:
        async with room:
            try:
                return await router.enrich(request(job), deadline=Deadline.after(SHADOW_DEADLINE_S))
            except EnrichmentFailed as exc:
                return exc

    answers = await asyncio.gather(*(ask(job) for job in jobs))
    return {job.job_id: answer for job, answer in zip(jobs, answers, strict=True)}
