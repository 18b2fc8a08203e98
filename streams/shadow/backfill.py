"""A candidate run over the last N enriched jobs, without waiting for traffic
(``llm-streams compare --backfill N``): through its vendor's Batch API where it has one (at
the batch rate), else live calls under its limits. The results go to ``llm.shadow`` and the
calls to ``llm.calls`` (lane ``shadow``) exactly as live shadowing writes them, so ``compare``
reads both alike. A job already compared for the candidate is not sent again (pay once)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from aiokafka import TopicPartition
from pydantic import BaseModel, ValidationError

from streams.config.slices import KafkaCluster, ShadowCandidate
from streams.kafka.admin import partitions_of, read_range
from streams.kafka.clients import producer, reader
from streams.kafka.producer import ClientProducer
from streams.kafka.publisher import publish_all
from streams.kafka.topics import Topic, Topics
from streams.models import EnrichedJobRecord, ShadowResult
from streams.pipeline.sent import command_line_journal
from streams.pricing import ModelPrice
from streams.providers.prompt import input_tokens_estimate
from streams.shadow.answers import CandidateCalls
from streams.shadow.record import compared, ledger
from streams.shadow.source import shadow_results

__all__ = ["Backfill", "Estimate", "estimate"]

log = logging.getLogger(__name__)

LIVE_CONCURRENCY = 16  # live backfill calls at once, within the candidate's own limits


class Estimate(BaseModel):
    jobs: int
    already_compared: int
    input_tokens: int
    output_tokens: int  # production's answers' length, as the likeliest
    cost_usd: float | None  # None: no price for the model
    batch: bool  # through the vendor's Batch API, at its batch rate


def estimate(
    jobs: list[EnrichedJobRecord],
    *,
    already_compared: int,
    price: ModelPrice | None,
    batch: bool,
) -> Estimate:
    input_tokens = sum(input_tokens_estimate(job.job) for job in jobs)
    output_tokens = sum(job.attempts[-1].usage.output_tokens if job.attempts else 0 for job in jobs)
    cost = None
    if price is not None:
        cost = price.cost_usd(
            input_tokens=input_tokens, cached_input_tokens=0, output_tokens=output_tokens
        )
        if batch and price.batch is not None:
            cost *= price.batch
    return Estimate(
        jobs=len(jobs),
        already_compared=already_compared,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost_usd=None if cost is None else round(cost, 6),
        batch=batch,
    )


@dataclass(frozen=True, kw_only=True)
class Backfill:
    calls: CandidateCalls
    cluster: KafkaCluster
    topics: Topics  # reads enriched and shadow, writes shadow, calls and sent
    price_version: str
    unsettled_grace_s: float | None  # None: calls not recorded before they leave

    @property
    def candidate(self) -> ShadowCandidate:
        return self.calls.candidate

    async def jobs(self, count: int) -> tuple[list[EnrichedJobRecord], int]:
        """The newest ``count`` enriched jobs answered by calls, less those the candidate
        has compared already (and how many those were)."""
        done = await self._compared()
        newest = await _newest_enriched(self.cluster, self.topics.enriched, count)
        todo = [job for job in newest if job.job_id not in done]
        return todo, len(newest) - len(todo)

    async def run(
        self, jobs: list[EnrichedJobRecord], *, progress: Callable[[str], None]
    ) -> list[ShadowResult]:
        journal = command_line_journal(
            self.cluster,
            self.topics.sent,
            price_version=self.price_version,
            grace_s=self.unsettled_grace_s,
        )
        async with journal as recorded:
            answers = await self.calls.answer(
                [job.job for job in jobs], label="backfill", progress=progress, journal=recorded
            )
        results = [
            compared(self.candidate, job, answers[job.job_id], origin="backfill") for job in jobs
        ]
        calls, shadow = self.topics.calls, self.topics.shadow
        outgoing = [
            *(
                calls.record(r.job_id, call)
                for r in results
                for call in ledger(r, price_version=self.price_version)
            ),
            *(shadow.record(r.job_id, r) for r in results),
        ]
        async with producer(self.cluster) as client:
            await publish_all(ClientProducer(client), outgoing)
        return results

    async def _compared(self) -> set[str]:
        results = await shadow_results(self.cluster, self.topics.shadow.name)
        name = self.candidate.name
        return {r.job_id for r in results if r.candidate == name and r.outcome != "dropped"}


async def _newest_enriched(
    cluster: KafkaCluster, topic: Topic[EnrichedJobRecord], count: int
) -> list[EnrichedJobRecord]:
    """The newest ``count`` enriched jobs with an answer of their own (not a repost's)."""
    partitions = [TopicPartition(topic.name, p) for p in await partitions_of(cluster, topic.name)]
    if not partitions:
        return []
    async with reader(cluster) as consumer:
        # Each partition's newest records: every one of the newest N may be on one of them;
        # cached answers are skipped, so some more are read.
        records = await read_range(consumer, partitions, last=2 * count)
    jobs = {}
    for record in records:
        try:
            job = topic.decode(record.value)
        except ValidationError:
            continue
        if not job.cached:
            jobs[job.job_id] = job
    return sorted(jobs.values(), key=lambda j: j.enriched_at)[-count:]
