"""The stats aggregator on a real broker: a worker that lost its partition without a
rebalance telling it (its session expired while it was stuck) cannot commit the batch it was
summing once the partition's new owner has started, so every attempt is summed once."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import ProducerFenced

from streams.config.slices import KafkaCluster
from streams.kafka.admin import ensure_topic, read_to_end
from streams.kafka.topics import Topic
from streams.models import ProviderCall, Usage
from streams.observe.aggregate import Aggregator, StatsBatch
from tests.eventually import eventually_async
from tests.kafka_helpers import produce

pytestmark = pytest.mark.broker

CALLS = 50


def _call(n: int) -> bytes:
    return (
        ProviderCall.model_validate(
            {
                "provider": "openai",
                "model": "m",
                "job_id": f"j{n}",
                "attempt": 1,
                "outcome": "success",
                "latency_ms": 100.0,
                "usage": Usage(input_tokens=10, output_tokens=5, cost_usd=0.001),
                "price_version": "v",
                "at": datetime.now(UTC),
            }
        )
        .model_dump_json()
        .encode()
    )


class _Stuck(Aggregator):
    """Blocks its whole event loop (its heartbeats too) before committing its first batch,
    until the other aggregator holds the partition."""

    def __init__(self, *, taken_over: threading.Event, **options: Any) -> None:
        super().__init__(**options)
        self.taken_over = taken_over
        self.summing = threading.Event()

    async def _commit(self, tp: TopicPartition, records: list[Any]) -> None:
        if records:
            self.summing.set()
            self.taken_over.wait(timeout=120)  # blocking on purpose: the session expires
        await super()._commit(tp, records)


class _Successor(Aggregator):
    def __init__(self, *, took_over: threading.Event, **options: Any) -> None:
        super().__init__(**options)
        self.took_over = took_over

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        await super().on_partitions_assigned(assigned)
        if assigned:
            self.took_over.set()


async def _summed(cluster: KafkaCluster, topic: str) -> int:
    records = await read_to_end(cluster, topic, committed_only=True)
    batches = [StatsBatch.model_validate_json(r.value) for r in records]
    return sum(p.stats["calls"] for b in batches for p in b.partials)


async def test_a_zombie_cannot_commit_what_the_new_owner_sums(
    kafka_bootstrap: str, unique: str
) -> None:
    cluster = KafkaCluster.plaintext(kafka_bootstrap)
    options: dict[str, Any] = {
        "cluster": cluster,
        "calls": Topic(name=f"{unique}.calls", model=ProviderCall, partitions=1),
        "stats_topic": f"{unique}.stats",
        "group_id": f"{unique}.stats",
    }
    calls = options["calls"].name
    await ensure_topic(cluster, calls, partitions=1)
    await produce(kafka_bootstrap, calls, [(None, _call(n)) for n in range(CALLS)])
    handed_over = threading.Event()
    zombie = _Stuck(taken_over=handed_over, **options)
    outcome: list[BaseException | None] = []

    def run_zombie() -> None:
        async def follow() -> None:
            await asyncio.wait_for(zombie.follow(), timeout=60)

        try:
            asyncio.run(follow())
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run_zombie, daemon=True)
    thread.start()
    await asyncio.to_thread(zombie.summing.wait, 60)
    successor = _Successor(took_over=handed_over, **options)
    following = asyncio.create_task(successor.follow())
    try:
        await asyncio.to_thread(thread.join, 90)
        await eventually_async(
            lambda: _summed(cluster, options["stats_topic"]),
            lambda summed: summed >= CALLS,
            timeout_s=30,
            what="the successor summed the calls",
        )
        await asyncio.sleep(2)  # anything committed late would be read now
        assert await _summed(cluster, options["stats_topic"]) == CALLS
        assert [type(exc) for exc in outcome] == [ProducerFenced], "the zombie's commit failed"
    finally:
        following.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await following
