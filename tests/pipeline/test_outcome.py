"""The outcome sink: what each ending publishes, in one round trip, and that it counts once.

The producer here is the in-memory broker: these tests are about which records make an
outcome; the agent's tests publish them to the real broker."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest

from streams.config.settings import Settings
from streams.config.slices import CacheConfig, KafkaCluster
from streams.enrichment import Enrichment
from streams.errors import DeadlineExceeded, RecordRejected, failed_attempt
from streams.kafka.topics import Topics
from streams.models import RawJob, Usage
from streams.pipeline.cache import CachedEnrichment, RepostCache
from streams.pipeline.once import PublishedBefore
from streams.pipeline.outcome import Outcomes
from streams.pipeline.ticket import Intake
from streams.providers.build import build_providers
from streams.routing.router import Router
from tests.memory_broker import MemoryBroker

ANSWER = CachedEnrichment(
    enrichment=Enrichment(
        summary="s",
        seniority="mid",
        role_family="engineering",
        skills=["Go"],
        tech_stack=[],
        years_experience=None,
        remote_policy="remote",
        salary=None,
        key_requirements=[],
    ),
    provider="openai",
    model="gpt-5.4-mini",
    usage=Usage(input_tokens=10, output_tokens=5, cost_usd=0.001),
)
JOB = {"job_id": "j1", "title": "Engineer", "description": "Build things."}


TOPICS = Topics.of(Settings().kafka())
CALLS, CACHE, ENRICHED, DEAD_LETTER = (
    TOPICS.calls.name,
    TOPICS.cache.name,
    TOPICS.enriched.name,
    TOPICS.dead_letter.name,
)


@pytest.fixture
def producer() -> MemoryBroker:
    return MemoryBroker()


@pytest.fixture
def outcomes(producer: MemoryBroker) -> Outcomes:
    cache = RepostCache(
        CacheConfig(
            cluster=KafkaCluster.plaintext("127.0.0.1:1"),
            topic=CACHE,
            max_entries=10,
            max_age_s=1e9,
        )
    )
    return Outcomes(topics=TOPICS, producer=producer, price_version="p1", cache=cache)


@pytest.fixture
async def intake() -> Any:
    settings = Settings()
    providers = build_providers(settings.provider)
    yield Intake(router=Router(settings.routing(), providers), default_lane="live")
    for provider in providers.values():
        await provider.aclose()


def _record(*, headers: list[tuple[str, bytes]] | None = None) -> Any:
    return SimpleNamespace(
        topic="jobs.raw",
        partition=0,
        offset=3,
        key=b"j1",
        value=json.dumps(JOB).encode(),
        timestamp=None,
        headers=headers or [],
    )


async def test_an_answer_of_its_own_publishes_result_calls_and_cache_entry(
    outcomes: Outcomes, producer: MemoryBroker, intake: Intake
) -> None:
    ticket = intake.take(_record(), since=0)
    attempt = failed_attempt(
        DeadlineExceeded("slow"), provider="openai", model="m", attempt=1, latency_ms=5
    )
    await outcomes.enriched(ticket, ANSWER, attempts=[attempt], latency_ms=9, cache_key="k")
    assert producer.topics() == [CALLS, CACHE, ENRICHED]
    (enriched,) = producer.on(ENRICHED)
    assert enriched["cached"] is False
    assert enriched["usage"]["cost_usd"] == 0.001
    assert producer.sent[-1].headers == {"llm-source": b"jobs.raw/0/3"}
    assert producer.on(CALLS)[0]["outcome"] == "deadline_exceeded"
    assert outcomes.counts == {"enriched": 1}
    assert outcomes.cache is not None
    assert outcomes.cache.get("k") == ANSWER, "in memory at once, for a repost right behind"


async def test_an_answer_served_without_a_call_is_a_cache_hit_on_the_ledger(
    outcomes: Outcomes, producer: MemoryBroker, intake: Intake
) -> None:
    await outcomes.enriched(intake.take(_record(), since=0), ANSWER)
    (call,) = producer.on(CALLS)
    assert call["outcome"] == "cache_hit"
    assert call["usage"]["cost_usd"] == 0.001, "what the call it replaced cost"
    assert producer.on(ENRICHED)[0]["cached"] is True
    assert producer.on(CACHE) == []


async def test_a_failed_record_is_one_dead_letter_with_its_calls(
    outcomes: Outcomes, producer: MemoryBroker, intake: Intake
) -> None:
    attempt = failed_attempt(
        DeadlineExceeded("slow"), provider="openai", model="m", attempt=1, latency_ms=5
    )
    failure = DeadlineExceeded("deadline of 45s exceeded", attempts=[attempt])
    await outcomes.failed_for_good(intake.take(_record(), since=0), failure, stage="enrich")
    (letter,) = producer.on(DEAD_LETTER)
    assert letter["error"]["type"] == "DeadlineExceeded"
    assert len(letter["attempts"]) == 1
    assert letter["original"]["offset"] == 3
    assert len(producer.on(CALLS)) == 1
    assert outcomes.counts == {"dead_lettered": 1}


async def test_the_tenant_a_record_names_is_on_its_calls_result_and_dead_letter(
    outcomes: Outcomes, producer: MemoryBroker, intake: Intake
) -> None:
    ticket = intake.take(_record(headers=[("tenant", b"jobs-board")]), since=0)
    attempt = failed_attempt(
        DeadlineExceeded("slow"), provider="openai", model="m", attempt=1, latency_ms=5
    )
    await outcomes.enriched(ticket, ANSWER, attempts=[attempt], latency_ms=9, cache_key="k")
    failure = DeadlineExceeded("deadline of 45s exceeded", attempts=[attempt])
    await outcomes.failed_for_good(ticket, failure, stage="enrich")
    assert [c["tenant"] for c in producer.on(CALLS)] == ["jobs-board", "jobs-board"]
    assert producer.on(ENRICHED)[0]["job"]["tenant"] == "jobs-board"
    assert producer.on(DEAD_LETTER)[0]["tenant"] == "jobs-board"


async def test_a_callers_job_that_fails_is_counted_without_a_dead_letter(
    outcomes: Outcomes, producer: MemoryBroker, intake: Intake
) -> None:
    ticket = intake.ticket(RawJob.model_validate(JOB))
    await outcomes.failed_for_good(ticket, DeadlineExceeded("no"), stage="enrich")
    assert producer.on(DEAD_LETTER) == []
    assert outcomes.counts == {"failed": 1}
    await outcomes.enriched(ticket, ANSWER, cache_key="k")
    assert producer.on(ENRICHED) == [], "a caller's job is answered, not published"
    assert outcomes.finished == 2


async def test_a_result_the_broker_refuses_becomes_a_dead_letter(
    outcomes: Outcomes, producer: MemoryBroker, intake: Intake
) -> None:
    producer.too_large = {ENRICHED}
    result = await outcomes.enriched(intake.take(_record(), since=0), ANSWER, cache_key="k")
    assert type(result).__name__ == "PublishRejected"
    (letter,) = producer.on(DEAD_LETTER)
    assert letter["stage"] == "publish"
    assert outcomes.counts == {"dead_lettered": 1}


async def test_a_record_that_is_not_a_job_is_dead_lettered_by_its_cause(
    outcomes: Outcomes, producer: MemoryBroker
) -> None:
    try:
        json.loads("{")
    except json.JSONDecodeError as cause:
        failure = RecordRejected("not JSON", stage="decode", job_id=None)
        failure.__cause__ = cause
    await outcomes.rejected(failure, message=_record())
    (letter,) = producer.on(DEAD_LETTER)
    assert letter["error"]["type"] == "JSONDecodeError"
    assert letter["stage"] == "decode"
    assert outcomes.counts == {"dead_lettered": 1}


async def test_pay_once_is_told_each_record_whose_outcome_is_published(
    producer: MemoryBroker, intake: Intake
) -> None:
    remembered: list[str] = []
    outcomes = Outcomes(
        topics=TOPICS, producer=producer, price_version="p1", cache=None, remember=remembered.append
    )
    await outcomes.enriched(intake.take(_record(), since=0), ANSWER, cache_key="k")
    await outcomes.enriched(intake.ticket(RawJob.model_validate(JOB)), ANSWER, cache_key="k")
    assert remembered == ["jobs.raw/0/3"], "a record's source; a caller's job has none"


async def test_a_record_this_worker_published_is_known_without_reading_the_topics() -> None:
    """After a rebalance Faust seeks to the committed offsets once the stream has started:
    a record finished in between comes round again."""
    published = PublishedBefore(
        cluster=KafkaCluster.plaintext("127.0.0.1:1"),  # never asked
        group_id="g",
        raw_topic="jobs.raw",
        outcome_topics=("jobs.enriched",),
        longest_look_back_s=60,
    )
    published.remember("jobs.raw/0/3")
    assert await published.published(_record())
