"""The batch lane of one raw partition: gather its jobs per provider and model, send them as a
batch once enough are waiting or the oldest has waited long enough, poll the batches, and hand
each job's outcome on. Only the worker holding the raw partition runs its lane, so no two
workers send or finish the same jobs.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Collection
from datetime import UTC, datetime

from pydantic import BaseModel

from streams.config.slices import BatchConfig
from streams.errors import ProviderError
from streams.kafka.producer import Producer
from streams.kafka.publisher import publish
from streams.kafka.topics import Topic
from streams.pipeline.batch.finish import LaneFinisher
from streams.pipeline.batch.records import (
    LaneBatch,
    LaneJob,
    PartitionState,
    batch_key,
    job_key,
)
from streams.providers.base import EnrichRequest
from streams.providers.batch.base import BatchAPI, BatchStatus

__all__ = ["PartitionLane"]

log = logging.getLogger(__name__)

TICK_S = 1.0
# A batch sent but not acknowledged is looked up among those the vendor created since its
# intent was written, less this much (clocks differ).
CLOCK_SKEW_S = 120.0


class PartitionLane:
    def __init__(
        self,
        *,
        partition: int,
        state: PartitionState,
        config: BatchConfig,
        topic: Topic[BaseModel],
        producer: Producer,
        apis: dict[str, BatchAPI],
        finisher: LaneFinisher,
        request_for: Callable[[LaneJob], EnrichRequest],
        may_spend: Callable[[str], bool],
        published: Collection[str] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.partition = partition
        self.state = state
        self.config = config
        self.topic = topic
        self.producer = producer
        self.apis = apis
        self.finisher = finisher
        self.request_for = request_for
        self.may_spend = may_spend
        self.clock = clock
        # Sources whose outcome a previous owner published while finishing a batch.
        self.published = set(published)
        self._polled: dict[str, float] = {}  # local id -> when last polled

    async def add(self, job: LaneJob) -> None:
        """Take a job: recorded before this returns (then its raw offset may move on)."""
        await self._write(job_key(job.source), job)
        self.state.pending[job.source] = job

    async def run(self) -> None:
        while True:
            try:
                await self._expire_waiting()
                await self._send_unacknowledged()
                await self._send_due()
                await self._poll_due()
            except ProviderError as exc:  # the vendor is away: the same step again next tick
                log.warning("batch lane %d: %s", self.partition, exc)
            except Exception:  # a bug must not stop the lane: its records stay as they are
                log.exception("batch lane %d: unexpected error; trying again", self.partition)
            await asyncio.sleep(TICK_S)

    # --- sending ----------------------------------------------------------------------------

    async def _send_due(self) -> None:
        groups: dict[tuple[str, str], list[LaneJob]] = defaultdict(list)
        for job in sorted(self.state.pending.values(), key=lambda j: j.taken_at):
            groups[(job.provider, job.model)].append(job)
        for (provider, model), jobs in groups.items():
            while jobs and self.may_spend(provider):
                chunk = self._chunk(jobs)
                full = len(chunk) < len(jobs) or len(chunk) == self.config.max_jobs
                waited = self.clock() - chunk[0].taken_at.timestamp()
                if not full and waited < self.config.max_age_s:
                    break
                await self._send(await self._record(provider, model, chunk))
                jobs = jobs[len(chunk) :]

    def _chunk(self, jobs: list[LaneJob]) -> list[LaneJob]:
        """The oldest jobs that fit in one batch (at least one)."""
        size = 0
        for count, job in enumerate(jobs):
            size += job.size
            if count == self.config.max_jobs or (count and size > self.config.max_bytes):
                return jobs[:count]
        return jobs

    async def _record(self, provider: str, model: str, jobs: list[LaneJob]) -> LaneBatch:
        """A new batch of ``jobs``, written before anything is sent (the jobs' own records,
        if they were waiting, deleted after)."""
        # Each request's custom id starts with the batch's label: what tells a batch of ours
        # at a vendor that keeps no label (Anthropic) from another with as many requests.
        local_id = f"llm-streams-{uuid.uuid4().hex[:20]}"
        batch = LaneBatch(
            local_id=local_id,
            provider=provider,
            model=model,
            jobs={f"{local_id}_{n}": job for n, job in enumerate(jobs)},
        )
        await self._write(batch_key(batch.local_id), batch)
        self.state.batches[batch.local_id] = batch
        for job in jobs:
            if self.state.pending.pop(job.source, None) is not None:
                await self._write(job_key(job.source), None)
        return batch

    async def _send_unacknowledged(self) -> None:
        """Batches whose sending was cut short: found at the vendor, or sent (again)."""
        for batch in [b for b in self.state.batches.values() if b.vendor_id is None]:
            if self.clock() > max(job.due_at.timestamp() for job in batch.jobs.values()):
                await self._finish(batch, BatchStatus(state="expired", detail="never acknowledged"))
                continue
            api = self.apis[batch.provider]
            created_after = batch.intent_at.timestamp() - CLOCK_SKEW_S
            found = await api.find(
                label=batch.local_id, created_after=created_after, count=len(batch.jobs)
            )
            if found is not None:
                log.info(
                    "batch lane %d: %s was sent before: %s", self.partition, batch.local_id, found
                )
                await self._acknowledged(batch, found)
            else:
                await self._send(batch)

    async def _send(self, batch: LaneBatch) -> None:
        api = self.apis[batch.provider]
        requests = [(key, self.request_for(job)) for key, job in batch.jobs.items()]
        telemetry = self.finisher.telemetry
        try:
            with telemetry.batch_call("submit", provider=batch.provider, batch_id=batch.local_id):
                vendor_id = await api.submit(
                    label=batch.local_id, model=batch.model, requests=requests
                )
        except ProviderError as exc:
            if exc.retryable:
                raise  # looked up, then sent again, on the next tick
            await self._rejected(batch, exc)
            return
        log.info(
            "batch lane %d: sent %d jobs to %s as %s",
            self.partition,
            len(batch.jobs),
            batch.provider,
            vendor_id,
        )
        await self._acknowledged(batch, vendor_id)

    async def _acknowledged(self, batch: LaneBatch, vendor_id: str) -> None:
        batch.vendor_id, batch.submitted_at = vendor_id, datetime.now(UTC)
        await self._write(batch_key(batch.local_id), batch)

    async def _rejected(self, batch: LaneBatch, exc: ProviderError) -> None:
        """The vendor refused the batch: two halves are tried, a single job goes live."""
        jobs = list(batch.jobs.values())
        log.warning(
            "batch lane %d: %s refused a batch of %d: %s",
            self.partition,
            batch.provider,
            len(jobs),
            exc,
        )
        if len(jobs) == 1:
            await self.finisher.fall_back(
                jobs[0], f"batch refused: {exc}", batch_id=None, error=exc
            )
            await self._forget(batch)
            return
        # The halves are written before the refused batch is forgotten (a crash in between
        # leaves a job in two unsent batches, never in none), and sent after it is.
        half = len(jobs) // 2
        parts = [
            await self._record(batch.provider, batch.model, p) for p in (jobs[:half], jobs[half:])
        ]
        await self._forget(batch)
        for part in parts:
            await self._send(part)

    # --- polling and finishing ----------------------------------------------------------------

    async def _poll_due(self) -> None:
        now = self.clock()
        for batch in [b for b in self.state.batches.values() if b.vendor_id is not None]:
            if now - self._polled.get(batch.local_id, 0.0) < self.config.poll_s:
                continue
            self._polled[batch.local_id] = now
            assert batch.vendor_id is not None
            api, telemetry = self.apis[batch.provider], self.finisher.telemetry
            with telemetry.batch_call("poll", provider=batch.provider, batch_id=batch.vendor_id):
                status = await api.poll(batch.vendor_id, model=batch.model)
            if status.state != "running":
                await self._finish(batch, status)
            elif now > max(job.due_at.timestamp() for job in batch.jobs.values()):
                await self._finish(
                    batch, BatchStatus(state="expired", detail="past every job's deadline")
                )

    async def _finish(self, batch: LaneBatch, status: BatchStatus) -> None:
        vendor_id = batch.vendor_id or batch.local_id
        log.info(
            "batch lane %d: %s %s (%d jobs)",
            self.partition,
            vendor_id,
            status.state,
            len(batch.jobs),
        )

        batch.finishing_at = datetime.now(UTC)  # a redo then publishes only what is missing
        await self._write(batch_key(batch.local_id), batch)

        async def one(key: str, job: LaneJob) -> None:
            if job.source in self.published:
                return
            outcome = status.items.get(key)
            if outcome is not None and outcome.completion is not None:
                await self.finisher.succeeded(job, outcome.completion, batch_id=vendor_id)
                return
            error = outcome.error if outcome is not None else None
            reason = f"batch {vendor_id} {status.state}" + (
                f": {status.detail}" if status.detail and status.detail != status.state else ""
            )
            await self.finisher.fall_back(job, reason, batch_id=vendor_id, error=error)

        await asyncio.gather(*(one(key, job) for key, job in batch.jobs.items()))
        await self._forget(batch)

    async def _expire_waiting(self) -> None:
        """Jobs whose deadline passed before a batch could take them (a budget spent)."""
        now = self.clock()
        for job in [j for j in self.state.pending.values() if j.due_at.timestamp() <= now]:
            del self.state.pending[job.source]
            await self.finisher.fall_back(
                job, "its deadline passed before a batch took it", batch_id=None, error=None
            )
            await self._write(job_key(job.source), None)

    async def _forget(self, batch: LaneBatch) -> None:
        self.state.batches.pop(batch.local_id, None)
        self._polled.pop(batch.local_id, None)
        await self._write(batch_key(batch.local_id), None)

    async def _write(self, key: str, record: BaseModel | None) -> None:
        await publish(self.producer, self.topic.record(key, record, partition=self.partition))
