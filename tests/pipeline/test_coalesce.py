"""Identical jobs in flight together make one provider call; a follower whose leader failed
takes over instead of failing with it."""

from __future__ import annotations

import asyncio
import json

import pytest

from devstack.harness import SimulatorThread
from streams.app import create_app
from streams.config.settings import Settings
from streams.deadline import Deadline
from streams.errors import EnrichmentFailed
from streams.providers.base import EnrichRequest
from streams.providers.build import build_providers
from streams.routing.router import Routed, Router
from tests.kafka_helpers import consume, job_record, produce

pytestmark = pytest.mark.slow

POSTING = {
    "title": "Data Engineer",
    "description": "Spark, Kafka and Python; hybrid in Berlin; EUR 75-90k a year.",
}


def _reposts(count: int, prefix: str) -> list[tuple[bytes | None, bytes]]:
    return [job_record(f"{prefix}{n}", **POSTING) for n in range(count)]


async def test_fifty_identical_jobs_at_once_make_one_provider_request(
    settings: Settings, sim: SimulatorThread
) -> None:
    sim.set_faults("openai", latency_ms=500)  # long enough for all 50 to arrive meanwhile
    settings = settings.model_copy(update={"llm_cache_enabled": False})  # coalescing alone
    app = await create_app(settings)
    async with app.running():
        before = sim.requests().get("openai", 0)
        await produce(settings.kafka_bootstrap_servers, settings.llm_topic_raw, _reposts(50, "r"))
        enriched = await consume(
            settings.kafka_bootstrap_servers, settings.llm_topic_enriched, count=50
        )
        assert sim.requests().get("openai", 0) - before == 1
    values = [json.loads(r.value) for r in enriched]
    assert len({v["job_id"] for v in values}) == 50
    assert sum(v["cached"] for v in values) == 49, "all but the leader served by its call"
    assert len({json.dumps(v["enrichment"], sort_keys=True) for v in values}) == 1


class FailingFirst(Router):
    """The first call fails (after a while, so that followers queue up behind it)."""

    failed = False

    async def enrich(self, request: EnrichRequest, *, deadline: Deadline) -> Routed:
        if not self.failed:
            self.failed = True
            await asyncio.sleep(0.5)
            raise EnrichmentFailed("the leader's provider failed")
        return await super().enrich(request, deadline=deadline)


async def test_when_the_leader_fails_a_follower_takes_over(
    settings: Settings, sim: SimulatorThread
) -> None:
    router = FailingFirst(settings.routing(), build_providers(settings.provider))
    app = await create_app(settings, router=router)
    async with app.running():
        await produce(settings.kafka_bootstrap_servers, settings.llm_topic_raw, _reposts(10, "f"))
        dead = await consume(
            settings.kafka_bootstrap_servers, settings.llm_topic_dead_letter, count=1
        )
        enriched = await consume(
            settings.kafka_bootstrap_servers, settings.llm_topic_enriched, count=9
        )
    assert json.loads(dead[0].value)["error"]["message"] == "the leader's provider failed"
    leader = json.loads(dead[0].value)["job_id"]
    assert {json.loads(r.value)["job_id"] for r in enriched} == {f"f{n}" for n in range(10)} - {
        leader
    }, "no follower is dead-lettered because its leader was"
