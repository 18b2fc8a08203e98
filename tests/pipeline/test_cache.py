"""Reposts: the key, the bounds, and a repost served from the cache on the real broker."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import pytest

from devstack.harness import SimulatorThread
from llm_sim.enrichment import derive_enrichment
from streams.app import StreamsApp, create_app
from streams.config.settings import Settings
from streams.enrichment import Enrichment
from streams.models import JobOptions, RawJob, Usage
from streams.pipeline.cache import CachedEnrichment, RepostCache, repost_key
from tests.eventually import eventually_async
from tests.kafka_helpers import consume, job_record, produce

JOB = RawJob(
    job_id="a",
    title="Senior Python Engineer",
    company="Acme",
    description="Build pipelines.\nRemote, EUR 80k.",
)


def test_the_key_ignores_case_spacing_and_ids_but_not_content_or_options() -> None:
    repost = JOB.model_copy(
        update={
            "job_id": "b",
            "title": "  senior PYTHON   engineer ",
            "description": "Build  pipelines. Remote,\tEUR 80k.",
        }
    )
    assert repost_key(repost) == repost_key(JOB)
    other_text = JOB.model_copy(update={"description": "Build pipelines. Remote, EUR 90k."})
    other_model = JOB.model_copy(update={"options": JobOptions(model="gpt-5-mini")})
    assert repost_key(other_text) != repost_key(JOB)
    assert repost_key(other_model) != repost_key(JOB)


ENRICHMENT = Enrichment.model_validate(derive_enrichment("Senior Python Engineer, remote"))


def _entry(*, age_s: float = 0.0) -> CachedEnrichment:
    return CachedEnrichment(
        enrichment=ENRICHMENT,
        provider="openai",
        model="m",
        usage=Usage(input_tokens=100, output_tokens=20, cost_usd=0.001),
        stored_at=datetime.now(UTC) - timedelta(seconds=age_s),
    )


def _put(cache: RepostCache, key: str, entry: CachedEnrichment) -> None:
    cache.put(key, entry.model_dump_json().encode(), stored_at=entry.stored_at.timestamp())


def test_the_cache_keeps_the_most_recently_used_and_forgets_old_entries(
    settings: Settings,
) -> None:
    config = settings.model_copy(update={"llm_cache_max_entries": 2, "llm_cache_max_age_s": 60})
    cache_config = config.cache()
    assert cache_config is not None
    cache = RepostCache(cache_config)
    _put(cache, "one", _entry())
    _put(cache, "two", _entry())
    assert cache.get("one") is not None  # now the most recently used
    _put(cache, "three", _entry())
    assert cache.get("two") is None, "the least recently used went first"
    assert cache.get("one") is not None
    _put(cache, "old", _entry(age_s=120))
    assert cache.get("old") is None, "older than the maximum age"


class _Record(NamedTuple):  # what the follower hands apply(): aiokafka's ConsumerRecord
    key: bytes
    value: bytes | None
    timestamp: int  # ms


def test_entries_read_from_the_topic_are_decoded_when_a_repost_asks_and_bad_ones_are_a_miss(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    cache_config = settings.model_copy(update={"llm_cache_max_age_s": 60}).cache()
    assert cache_config is not None
    cache = RepostCache(cache_config)
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    entry = _entry()
    cache.apply(_Record(b"theirs", entry.model_dump_json().encode(), now_ms))
    cache.apply(_Record(b"stale", entry.model_dump_json().encode(), now_ms - 120_000))
    cache.apply(_Record(b"garbled", b'{"enrichment": {"summary": 1}}', now_ms))
    assert cache.get("theirs") == entry
    assert cache.get("stale") is None, "written longer ago than the maximum age"
    with caplog.at_level(logging.WARNING, logger="streams.pipeline.cache"):
        assert cache.get("garbled") is None
    assert "ignoring an invalid entry" in caplog.text
    assert cache.entries == 1, "the stale and the invalid entries are dropped"
    cache.apply(_Record(b"theirs", None, now_ms))
    assert cache.get("theirs") is None, "a tombstone deletes the entry"


async def test_a_repost_is_served_from_the_cache_without_a_provider_call(
    settings: Settings, sim: SimulatorThread
) -> None:
    bootstrap = settings.kafka_bootstrap_servers
    original = job_record("first", company="Acme")
    repost_value = json.loads(original[1]) | {"job_id": "repost", "company": "ACME "}
    repost = (b"repost", json.dumps(repost_value).encode())

    app = await create_app(settings)
    async with app.running():
        await produce(bootstrap, settings.llm_topic_raw, [original])
        (first,) = await consume(bootstrap, settings.llm_topic_enriched, count=1)
        calls_before = sim.requests()
        await produce(bootstrap, settings.llm_topic_raw, [repost])
        records = await consume(bootstrap, settings.llm_topic_enriched, count=2)
        assert sim.requests() == calls_before, "no provider was called for the repost"

        async def hit_counted() -> bool:
            return app.stats.totals_by_provider().get("openai", {}).get("cache_hits") == 1

        await eventually_async(hit_counted)
        totals = app.stats.totals_by_provider()["openai"]
    first_value: dict[str, Any] = json.loads(first.value)
    served = json.loads(next(r.value for r in records if r.key == b"repost"))
    assert served["cached"] is True
    assert served["attempts"] == []
    assert served["enrichment"] == first_value["enrichment"]
    assert totals["saved_usd"] == first_value["usage"]["cost_usd"] > 0
    assert totals["calls"] == 1, "a cache hit is not a provider call"

    # A new worker reads the cache topic: the repost of a repost hits there too.
    again = (b"again", json.dumps(repost_value | {"job_id": "again"}).encode())
    restarted = await create_app(settings)
    async with restarted.running():
        await eventually_async(lambda: _replayed(restarted))
        await produce(bootstrap, settings.llm_topic_raw, [again])
        records = await consume(bootstrap, settings.llm_topic_enriched, count=3)
    assert json.loads(next(r.value for r in records if r.key == b"again"))["cached"] is True
    assert sim.requests() == calls_before


async def _replayed(app: StreamsApp) -> bool:
    assert app.cache is not None
    return app.cache.ready.is_set()


async def test_with_the_cache_off_a_repost_is_enriched_again(
    settings: Settings, sim: SimulatorThread
) -> None:
    settings = settings.model_copy(update={"llm_cache_enabled": False})
    bootstrap = settings.kafka_bootstrap_servers
    app = await create_app(settings)
    async with app.running():
        await produce(bootstrap, settings.llm_topic_raw, [job_record("x1")])
        await consume(bootstrap, settings.llm_topic_enriched, count=1)
        before = sum(sim.requests().values())
        same = json.loads(job_record("x1")[1]) | {"job_id": "x2"}
        await produce(bootstrap, settings.llm_topic_raw, [(b"x2", json.dumps(same).encode())])
        records = await consume(bootstrap, settings.llm_topic_enriched, count=2)
    assert sum(sim.requests().values()) == before + 1
    assert all(json.loads(r.value)["cached"] is False for r in records)
