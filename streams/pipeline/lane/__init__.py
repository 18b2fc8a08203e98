"""The batch lane: jobs that can wait go to a vendor's Batch API at about half the price.

A job asks with ``options.lane`` (``batch``, or ``auto``: batch when its deadline leaves room
for the vendor's 24-hour window; ``LLM_LANE`` is the default). It goes to its preferred
provider, or the first in the chain, that has a Batch API (OpenAI, Anthropic, Gemini) and is
enabled; with none (DeepSeek, Ollama) it goes live. The lane records the job on ``llm.batch``
before its raw offset moves on, and one ``PartitionLane`` per raw partition this worker holds
gathers, sends, polls and finishes (``runner``); a rebalance hands the partition's lane over
with its records (``records``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka.errors import KafkaError

from streams.config.slices import BatchConfig
from streams.kafka.topics import Topics
from streams.models import MAX_BATCH_DEADLINE_MS, RawJob
from streams.pipeline.dead_letter import original_of
from streams.pipeline.lane.records import LaneJob, recover
from streams.pipeline.lane.runner import Finisher, PartitionLane
from streams.pipeline.once import source_of
from streams.providers.batch.base import BatchAPI
from streams.routing.router import Router

log = logging.getLogger(__name__)

# The vendors' completion window: a job with less time than this goes live under "auto".
WINDOW_S = 24 * 3600.0
RECOVER_RETRY_S = 1.0


class BatchLane:
    def __init__(
        self,
        *,
        config: BatchConfig,
        topics: Topics,
        apis: dict[str, BatchAPI],
        router: Router,
    ) -> None:
        self.config = config
        self.topics = topics
        self.apis = apis
        self.router = router
        self.finisher: Finisher | None = None  # the enricher, once built
        self._lanes: dict[int, asyncio.Task[PartitionLane]] = {}
        self._running: dict[int, asyncio.Task[None]] = {}

    def choose(self, job: RawJob) -> tuple[str, str] | None:
        """The provider and model of a batch-lane job, or None for a live one."""
        options = job.options
        lane = (options.lane if options else None) or self.config.default_lane
        if lane == "live" or (lane == "auto" and _deadline_s(job) < WINDOW_S):
            return None
        preferred = options.preferred_provider if options else None
        if preferred is not None and preferred not in self.apis:
            return None  # asked for a provider without a Batch API (DeepSeek, Ollama): live
        for name in ([preferred] if preferred else []) + list(self.router.chain):
            gate = self.router.gates.get(name)
            if name in self.apis and gate is not None and gate.enabled:
                return name, (options.model if options and options.model else gate.provider.model)
        return None

    async def accept(self, job: RawJob, message: Any, *, provider: str, model: str) -> None:
        """Record ``job`` in its partition's lane; returns once it is safe on the broker."""
        lane = await self._lane(message.partition)
        source = source_of(message).decode()
        if lane.state.knows(source):  # a record redone after a crash: taken before
            return
        request = self.router.request_for(job)
        size = len(json.dumps(self.apis[provider].body(request, model)))
        entry = LaneJob(
            source=source,
            job=job,
            original=original_of(message),
            provider=provider,
            model=model,
            size=size,
            deadline_at=datetime.now(UTC) + timedelta(seconds=_deadline_s(job)),
        )
        await lane.add(entry)

    def snapshot(self) -> dict[str, Any]:
        """Per provider: jobs waiting, batches sent and not yet acknowledged, the oldest wait."""
        now = time.time()
        view: dict[str, dict[str, Any]] = {}
        for task in self._lanes.values():
            if not task.done() or task.cancelled() or task.exception():
                continue
            state = task.result().state
            for job in state.pending.values():
                entry = view.setdefault(job.provider, _empty())
                entry["jobs_waiting"] += 1
                age = now - job.accepted_at.timestamp()
                entry["oldest_wait_s"] = max(entry["oldest_wait_s"], round(age, 1))
            for batch in state.batches.values():
                entry = view.setdefault(batch.provider, _empty())
                entry["batches_sent" if batch.vendor_id else "batches_unacknowledged"] += 1
                entry["jobs_in_batches"] += len(batch.jobs)
        return view

    # --- partitions come and go ------------------------------------------------------------

    def assigned(self, partitions: list[int]) -> None:
        for partition in partitions:
            if partition not in self._lanes:
                self._lanes[partition] = asyncio.ensure_future(self._start(partition))

    async def revoked(self, partitions: list[int]) -> None:
        """Stop the partitions' lanes before another worker may start them."""
        tasks: list[asyncio.Task[Any]] = [
            self._running.pop(p) for p in partitions if p in self._running
        ]
        tasks += [self._lanes.pop(p) for p in partitions if p in self._lanes]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _lane(self, partition: int) -> PartitionLane:
        if partition not in self._lanes:
            self.assigned([partition])
        return await asyncio.shield(self._lanes[partition])

    async def _start(self, partition: int) -> PartitionLane:
        assert self.finisher is not None, "the enricher attaches itself before intake"
        while True:  # the partition's jobs wait for this; a broker away now is back later
            try:
                state = await recover(self.config.bootstrap_servers, self.config.topic, partition)
                break
            except KafkaError as exc:
                log.warning("batch lane %d: reading it back failed (%s); retrying", partition, exc)
                await asyncio.sleep(RECOVER_RETRY_S)
        if state.pending or state.batches:
            log.info(
                "batch lane %d: %d jobs waiting and %d batches taken over",
                partition,
                len(state.pending),
                len(state.batches),
            )
        lane = PartitionLane(
            partition=partition,
            state=state,
            config=self.config,
            topic=self.topics.batch,
            apis=self.apis,
            finisher=self.finisher,
            request_for=lambda entry: self.router.request_for(entry.job),
            may_spend=lambda provider: not self.router.gates[provider].over_budget,
        )
        self._running[partition] = asyncio.ensure_future(lane.run())
        return lane


def _deadline_s(job: RawJob) -> float:
    options = job.options
    if options and options.deadline_ms:
        return options.deadline_ms / 1000
    return MAX_BATCH_DEADLINE_MS / 1000


def _empty() -> dict[str, Any]:
    return {
        "jobs_waiting": 0,
        "oldest_wait_s": 0.0,
        "batches_sent": 0,
        "batches_unacknowledged": 0,
        "jobs_in_batches": 0,
    }
