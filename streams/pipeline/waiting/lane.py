"""The waiting lane of a worker: the jobs of a tenant over its daily budget, or above its fair
share of the worker's calls (``share``), held on ``llm.waiting`` (``records``) so that the
raw partitions move on and other tenants' jobs behind them are taken; released in the order
they were taken as soon as their tenant is within its budget and its share again.

A tenant's jobs keep their order: once one of its jobs waits in a partition, the next ones
of that partition wait behind it. A caller's job (``/process``) never waits here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable

from pydantic import BaseModel, Field

from streams.config.slices import WaitingConfig
from streams.kafka.admin import ensure_topic
from streams.kafka.producer import Producer
from streams.kafka.publisher import publish
from streams.kafka.readers import retried
from streams.kafka.topics import Topic
from streams.pipeline.once import published_sources
from streams.pipeline.ticket import Ticket
from streams.pipeline.waiting.records import WaitingJob, recover, waiting_key
from streams.pipeline.waiting.share import Shares
from streams.routing.router import Router

__all__ = ["TenantStatus", "WaitingLane"]

log = logging.getLogger(__name__)

POLL_S = 1.0  # how soon a budget raised or a day turned is noticed without a call ending

Release = Callable[[WaitingJob], Awaitable[object]]


class TenantStatus(BaseModel):
    """One tenant's work on this worker and its budget for the group, as ``/status``, the
    metrics and the dashboard show it."""

    configured: bool = Field(default=False, description="named in LLM_TENANTS")
    in_flight: int = Field(default=0, description="its jobs being answered on this worker")
    waiting: int = Field(default=0, description="its jobs in this worker's waiting lane")
    oldest_wait_s: float = 0.0
    weight: float = 1.0
    daily_budget_usd: float | None = Field(default=None, description="for the whole group")
    spent_today_usd: float = Field(default=0.0, description="by the whole group, since 00:00 UTC")
    over_budget: bool = False


class WaitingLane:
    def __init__(
        self,
        *,
        config: WaitingConfig,
        topic: Topic[BaseModel],
        producer: Producer,
        router: Router,
    ) -> None:
        self.config = config
        self.topic = topic
        self.producer = producer
        self.router = router
        self.shares = Shares(capacity=config.capacity, weight=lambda t: router.tenant(t).weight)
        self._queues: dict[int, list[WaitingJob]] = {}  # by raw partition, oldest first
        self._loading: dict[int, asyncio.Task[None]] = {}
        self._releasing: dict[int, set[asyncio.Task[None]]] = {}
        self._wake = asyncio.Event()
        self._unsaved: set[str] = set()  # sources reserved a place, not yet on the topic
        self._counts: Counter[tuple[int, str]] = Counter()  # jobs waiting by partition, tenant

    # --- taking a job ----------------------------------------------------------------------

    def reason_to_wait(self, ticket: Ticket) -> str | None:
        """Why the job must wait, or None to answer it now."""
        if ticket.original is None:
            return None  # a caller's: never
        tenant = ticket.job.tenant
        if self.router.tenant_over_budget(tenant):
            return f"tenant {tenant!r} is over its daily budget"
        if self._counts[(ticket.original.partition, tenant)]:
            return f"behind tenant {tenant!r}'s jobs waiting"
        if (
            ticket.batch is None
            and self.router.tenants_configured
            and not self.shares.has_room(tenant, waiting=self._wanting())
        ):
            return f"tenant {tenant!r} is at its share of the calls"
        return None

    def reserve(self, ticket: Ticket, *, reason: str) -> WaitingJob:
        """The job's place in its partition's queue, taken now, in the order the records
        are taken (their writes may end in another); not released before ``hold`` saved it."""
        assert ticket.original is not None, "a record's job"
        assert ticket.source is not None, "a record's job"
        entry = WaitingJob(
            source=ticket.source,
            job=ticket.job,
            original=ticket.original,
            reason=reason,
            trace=dict(ticket.trace),
        )
        self._queued(ticket.original.partition, [entry])
        self._unsaved.add(entry.source)
        return entry

    async def hold(self, entry: WaitingJob) -> None:
        """Keep the reserved job on the topic; returns once it is safe on the broker (then
        its raw record may be acknowledged). Its place is given up if the broker refuses it
        for good (PublishRejected)."""
        partition = entry.original.partition
        try:
            await self._loaded(partition)
            await publish(
                self.producer,
                self.topic.record(waiting_key(entry.source), entry, partition=partition),
            )
        except BaseException:
            self._dequeued(partition, entry)
            raise
        finally:
            self._unsaved.discard(entry.source)
        self._wake.set()

    @contextlib.asynccontextmanager
    async def working(self, tenant: str) -> AsyncIterator[None]:
        """Counts a job of ``tenant`` in flight while it is answered, in one of the worker's
        call slots."""
        self.shares.started(tenant)
        try:
            async with self.shares.slot():
                yield
        finally:
            self.shares.ended(tenant)
            self._wake.set()

    # --- releasing -------------------------------------------------------------------------

    async def release(self, finish: Release) -> None:
        """For ever: each waiting job whose tenant is within its budget and its share handed
        to ``finish`` (which publishes its outcome), then deleted from the topic."""
        while True:
            self._wake.clear()
            for partition in list(self._queues):
                for entry in self._releasable(partition):
                    self._dequeued(partition, entry)
                    self.shares.started(entry.job.tenant)
                    task = asyncio.ensure_future(self._released(partition, entry, finish))
                    tasks = self._releasing.setdefault(partition, set())
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=POLL_S)

    def _releasable(self, partition: int) -> list[WaitingJob]:
        """The partition's jobs that may go now, each tenant's oldest first: the walk ends
        once every tenant with jobs here is held back, so a long queue costs little."""
        here = {tenant for (p, tenant), n in self._counts.items() if p == partition and n}
        wanting = self._wanting()
        room = Counter[str]()
        held_back: set[str] = set()
        going = []
        for entry in self._queues.get(partition, []):
            if held_back >= here:
                break
            tenant = entry.job.tenant
            if tenant in held_back:
                continue
            if entry.source in self._unsaved or not self._may_go(tenant, wanting, room[tenant]):
                held_back.add(tenant)
                continue
            room[tenant] += 1
            going.append(entry)
        return going

    def _may_go(self, tenant: str, wanting: set[str], going: int) -> bool:
        """Whether one more of ``tenant``'s jobs may go, with ``going`` let go in this walk."""
        if self.router.tenant_over_budget(tenant):
            return False
        return self.shares.has_room(tenant, waiting=wanting, starting=going)

    async def _released(self, partition: int, entry: WaitingJob, finish: Release) -> None:
        try:  # counted in its tenant's share already, by the loop that let it go
            async with self.shares.slot():
                await finish(entry)
            await self._forget(partition, entry.source)
        finally:
            self.shares.ended(entry.job.tenant)
            self._wake.set()

    async def _forget(self, partition: int, source: str) -> None:
        await publish(
            self.producer,
            self.topic.record(waiting_key(source), None, partition=partition),
        )

    # --- partitions come and go ------------------------------------------------------------

    def assigned(self, partitions: list[int]) -> None:
        for partition in partitions:
            if partition not in self._loading:
                self._loading[partition] = asyncio.ensure_future(self._load(partition))

    async def revoked(self, partitions: list[int]) -> None:
        """Stop releasing the partitions' jobs before another worker may: a job cut off is
        still on the topic, and its next owner releases it."""
        tasks: list[asyncio.Task[None]] = []
        for partition in partitions:
            tasks += self._releasing.pop(partition, set())
            if (loading := self._loading.pop(partition, None)) is not None:
                tasks.append(loading)
            for entry in self._queues.pop(partition, []):
                self._counts[(partition, entry.job.tenant)] -= 1
                self._unsaved.discard(entry.source)  # reserved, its record given back
            self._counts = +self._counts  # the zeros gone
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _loaded(self, partition: int) -> None:
        if partition not in self._loading:
            self.assigned([partition])
        await asyncio.shield(self._loading[partition])

    async def _load(self, partition: int) -> None:
        """The partition's jobs as the last owner left them, less those whose outcome it
        published before it could delete them."""
        await ensure_topic(
            self.config.cluster, self.topic.name, partitions=self.config.partitions, compacted=True
        )
        jobs = await retried(
            f"waiting lane {partition}: reading it back",
            lambda: recover(self.config.cluster, self.topic.name, partition),
        )
        if jobs:
            since_ms = int(jobs[0].taken_at.timestamp() * 1000)
            published = await retried(
                f"waiting lane {partition}: reading the outcomes already published",
                lambda: published_sources(
                    self.config.cluster, self.config.outcome_topics, since_ms=since_ms
                ),
            )
            for entry in [job for job in jobs if job.source in published]:
                jobs.remove(entry)
                await self._forget(partition, entry.source)
            log.info("waiting lane %d: %d jobs waiting taken over", partition, len(jobs))
        self._queued(partition, jobs, first=True)
        self._wake.set()

    # --- the queues ---------------------------------------------------------------------------

    def _queued(self, partition: int, entries: list[WaitingJob], *, first: bool = False) -> None:
        """``entries`` at the end of the partition's queue (``first``: at its head)."""
        queue = self._queues.setdefault(partition, [])
        if first:
            queue[:0] = entries
        else:
            queue.extend(entries)
        for entry in entries:
            self._counts[(partition, entry.job.tenant)] += 1

    def _dequeued(self, partition: int, entry: WaitingJob) -> None:
        """``entry`` out of its queue (found by identity: it is near the head)."""
        queue = self._queues.get(partition, [])
        for index, queued in enumerate(queue):
            if queued is entry:
                del queue[index]
                key = (partition, entry.job.tenant)
                self._counts[key] -= 1
                if self._counts[key] <= 0:
                    del self._counts[key]
                return

    def _wanting(self) -> set[str]:
        """The tenants with jobs waiting that could use calls now (not over budget)."""
        return {t for t in self.waiting_tenants() if not self.router.tenant_over_budget(t)}

    # --- what the web view shows -----------------------------------------------------------

    def waiting_tenants(self) -> set[str]:
        return {tenant for (_, tenant), n in self._counts.items() if n > 0}

    def status(self) -> dict[str, TenantStatus]:
        """The configured tenants and those with work here."""
        now = time.time()
        view = {t: TenantStatus(configured=True) for t in self.router.tenants_configured}
        for tenant, count in self.shares.in_flight.items():
            view.setdefault(tenant, TenantStatus()).in_flight = count
        for queue in self._queues.values():
            for entry in queue:
                status = view.setdefault(entry.job.tenant, TenantStatus())
                status.waiting += 1
                age = round(now - entry.taken_at.timestamp(), 1)
                status.oldest_wait_s = max(status.oldest_wait_s, age)
        for tenant, status in view.items():
            budget = self.router.tenant_budget(tenant)
            status.weight = self.router.tenant(tenant).weight
            status.daily_budget_usd = budget.daily_usd
            status.spent_today_usd = round(budget.spent_today_usd, 6)
            status.over_budget = budget.exhausted
        return dict(sorted(view.items()))
