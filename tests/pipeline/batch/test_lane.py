"""The batch lane on the real broker against the simulator's Batch APIs: jobs that can wait go
out in one batch per provider and model, at the batch rate, and end enriched or
dead-lettered like live ones; a failed batch goes live."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from devstack.harness import SimulatorThread, worker_process
from streams.app import create_app
from streams.config.settings import Settings
from streams.config.slices import KafkaCluster
from streams.kafka.admin import ensure_topic, read_to_end
from streams.models import OriginalRecord, RawJob
from streams.pipeline.batch.records import LaneBatch, LaneJob, batch_key
from streams.providers.batch import batch_apis
from streams.providers.build import build_providers
from tests.eventually import eventually, eventually_async
from tests.kafka_helpers import consume, job_record, produce

pytestmark = pytest.mark.slow


@pytest.fixture
def lane_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "llm_provider_chain": ["openai", "anthropic", "gemini", "deepseek"],
            "llm_batch_max_age_s": 0.5,
            "llm_batch_poll_s": 0.2,
            "llm_cache_enabled": False,
        }
    )


def _batch_job(job_id: str, provider: str, **options: Any) -> tuple[bytes, bytes]:
    return job_record(job_id, options={"lane": "batch", "preferred_provider": provider, **options})


def _by_job(records: list[Any]) -> dict[str, dict[str, Any]]:
    return {json.loads(r.value)["job_id"]: json.loads(r.value) for r in records}


async def _outcomes(
    settings: Settings, records: list[tuple[bytes, bytes]], counts: dict[str, int]
) -> list[dict[str, dict[str, Any]]]:
    """Run a worker over ``records``: what it published on each topic, by job."""
    bootstrap = settings.kafka_bootstrap_servers
    async with (await create_app(settings)).running():
        await produce(bootstrap, settings.llm_topic_raw, records)
        return [
            _by_job(await consume(bootstrap, topic, count=count)) for topic, count in counts.items()
        ]


async def test_batch_lane_jobs_go_out_in_one_batch_per_vendor_at_half_price(
    lane_settings: Settings, sim: SimulatorThread
) -> None:
    settings = lane_settings
    sim.set_faults("openai", batch_delay_s=0.5)
    sim.set_faults("anthropic", batch_delay_s=0.5)
    sim.set_faults("gemini", batch_delay_s=0.5)
    records = [
        _batch_job(f"{provider}-{n}", provider)
        for provider in ("openai", "anthropic", "gemini")
        for n in range(3)
    ]
    records += [_batch_job("deepseek-0", "deepseek"), job_record("live-0")]
    enriched, calls = await _outcomes(
        settings, records, {settings.llm_topic_enriched: 11, settings.llm_topic_calls: 11}
    )
    stats = sim.stats()
    # one batch per vendor for each raw partition its jobs are on (each partition's lane
    # is its owner's)
    partitions = settings.llm_topic_partitions
    assert all(
        1 <= stats["batches_created"][p] <= partitions for p in ("openai", "anthropic", "gemini")
    )
    assert stats["batch_requests"] == {"openai": 3, "anthropic": 3, "gemini": 3}
    assert stats["requests"].get("anthropic", 0) == 0, "no live call for a batch-lane job"
    assert stats["requests"].get("gemini", 0) == 0
    assert stats["requests"]["openai"] == 1, "the one live job"
    assert stats["requests"]["deepseek"] == 1, "DeepSeek has no Batch API: live"
    assert set(enriched) == {r[0].decode() for r in records}
    for job_id, result in enriched.items():
        call = calls[job_id]
        batched = job_id.split("-")[0] in ("openai", "anthropic", "gemini")
        assert result["provider"] == job_id.split("-")[0] or job_id == "live-0"
        assert call["lane"] == ("batch" if batched else "live")
        assert (call["batch_id"] is not None) is batched
        if batched:  # half the list price: what it saved equals what it cost
            usage = call["usage"]
            assert usage["cost_usd"] > 0
            assert usage["batch_saved_usd"] == pytest.approx(usage["cost_usd"], rel=1e-6)


async def test_auto_sends_a_job_without_a_deadline_live_and_a_day_long_one_to_a_batch(
    lane_settings: Settings, sim: SimulatorThread
) -> None:
    settings = lane_settings.model_copy(update={"llm_lane": "auto"})
    sim.set_faults("openai", batch_delay_s=0.3)
    day_ms = 24 * 3600 * 1000
    records = [job_record("plain"), job_record("day", options={"deadline_ms": day_ms})]
    enriched, calls = await _outcomes(
        settings, records, {settings.llm_topic_enriched: 2, settings.llm_topic_calls: 2}
    )
    assert set(enriched) == {"plain", "day"}
    assert calls["plain"]["lane"] == "live", "no deadline of its own: the live default"
    assert calls["plain"]["latency_ms"] < 5000
    assert calls["day"]["lane"] == "batch"
    assert calls["day"]["batch_id"] is not None
    assert sim.stats()["batch_requests"] == {"openai": 1}


async def test_a_failed_batch_goes_live_and_an_expired_one_past_its_deadline_is_dead_lettered(
    lane_settings: Settings, sim: SimulatorThread
) -> None:
    settings = lane_settings
    sim.set_faults("openai", batch_delay_s=0.3, batch_end="failed")
    sim.set_faults("anthropic", batch_delay_s=0.3, batch_end="expired")
    records = [_batch_job(f"openai-{n}", "openai") for n in range(2)]
    # deadlines too short to go live after the batch: dead-lettered, with the batch named
    records += [_batch_job(f"anthropic-{n}", "anthropic", deadline_ms=1500) for n in range(2)]
    enriched, dead = await _outcomes(
        settings, records, {settings.llm_topic_enriched: 2, settings.llm_topic_dead_letter: 2}
    )
    assert set(enriched) == {"openai-0", "openai-1"}
    assert all(e["provider"] == "openai" for e in enriched.values())
    assert sim.stats()["requests"]["openai"] == 2, "retried live after the batch failed"
    assert set(dead) == {"anthropic-0", "anthropic-1"}
    for letter in dead.values():
        assert letter["error"]["type"] == "BatchFailed"
        assert "msgbatch_" in letter["error"]["message"]
        assert "expired" in letter["error"]["message"]
        assert letter["original"]["topic"] == settings.llm_topic_raw


def test_a_worker_killed_with_batches_out_never_sends_them_again(
    worker_env: dict[str, str], sim: SimulatorThread, tmp_path: Path
) -> None:
    """SIGKILL once the batches are at the vendor; the next worker polls them, publishes
    every job once and sends nothing again."""
    jobs = 20
    sim.set_faults("openai", batch_delay_s=6)
    env = worker_env | {
        "LLM_BATCH_MAX_AGE_S": "0.3",
        "LLM_BATCH_POLL_S": "0.3",
        "LLM_CACHE_ENABLED": "false",
        "LLM_BROKER_SESSION_TIMEOUT_S": "6",
    }
    bootstrap = env["KAFKA_BOOTSTRAP_SERVERS"]
    records = [_batch_job(f"j{n}", "openai") for n in range(jobs)]
    with worker_process(env, tmp_path / "first.log") as first:
        asyncio.run(produce(bootstrap, env["LLM_TOPIC_RAW"], records))
        eventually(
            lambda: sim.stats()["batch_requests"].get("openai", 0) >= jobs,
            timeout_s=60,
            every_s=0.1,
            what=f"{jobs} jobs sent in batches",
        )
        _check_the_operators_view(env, jobs=jobs)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    sent = sim.stats()["batches_created"]["openai"]
    with worker_process(env, tmp_path / "second.log"):
        enriched = asyncio.run(consume(bootstrap, env["LLM_TOPIC_ENRICHED"], count=jobs))
    stats = sim.stats()
    ids = [json.loads(r.value)["job_id"] for r in enriched]
    assert sorted(ids) == sorted(f"j{n}" for n in range(jobs)), "each job once"
    assert stats["batches_created"]["openai"] == sent, "no batch sent twice"
    assert stats["batch_requests"]["openai"] == jobs
    assert stats["requests"].get("openai", 0) == 0, "nothing went live"
    assert "taken over" in (tmp_path / "second.log").read_text()


def _check_the_operators_view(env: dict[str, str], *, jobs: int) -> None:
    """While the batches are out: /status, /metrics and ``llm-streams batches`` show them."""
    url = f"http://127.0.0.1:{env['LLM_SERVICE_PORT']}"
    lane = eventually(  # the vendor's id is recorded just after the vendor answers
        lambda: httpx.get(f"{url}/status").json()["batch_lane"]["openai"],
        lambda lane: lane["jobs_in_batches"] == jobs and not lane["batches_unacknowledged"],
        timeout_s=10,
        every_s=0.1,
        what="the batches acknowledged",
    )
    assert lane["batches_sent"] >= 1
    assert lane["jobs_waiting"] == 0
    assert 'llm_batches_out{provider="openai"}' in httpx.get(f"{url}/metrics").text
    listing = subprocess.run(
        [sys.executable, "-m", "streams", "batches", "--provider", "openai"],
        env=os.environ | env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    rows = [line for line in listing.splitlines() if " batch_" in line]
    assert rows, listing
    assert sum(int(row.split()[-2]) for row in rows) == jobs, listing


async def test_a_batch_sent_but_not_acknowledged_is_found_at_the_vendor_not_sent_again(
    lane_settings: Settings, sim: SimulatorThread
) -> None:
    """What a worker killed between sending a batch and recording the vendor's id leaves:
    the batch with its jobs on llm.batch, no vendor id, and the batch at the vendor."""
    settings = lane_settings
    sim.set_faults("openai", batch_delay_s=0.3)
    app = await create_app(settings)
    job = RawJob.model_validate_json(job_record("orphan")[1])
    entry = LaneJob(
        source=f"{settings.llm_topic_raw}/0/0",
        job=job,
        original=OriginalRecord(
            topic=settings.llm_topic_raw, partition=0, offset=0, key="orphan", value="{}"
        ),
        provider="openai",
        model="gpt-5.4-mini",
        size=1,
        due_at=datetime.now(UTC) + timedelta(hours=1),
    )
    batch = LaneBatch(
        local_id="llm-streams-orphan",
        provider="openai",
        model="gpt-5.4-mini",
        jobs={"llm-streams-orphan_0": entry},
    )
    api = batch_apis(build_providers(settings.provider))["openai"]
    request = app.router.request_for(job)
    await api.submit(
        label=batch.local_id, model=batch.model, requests=[("llm-streams-orphan_0", request)]
    )
    await api.provider.aclose()
    await ensure_topic(
        settings.cluster(),
        settings.llm_topic_batch,
        partitions=settings.llm_topic_partitions,
        compacted=True,
    )
    await produce(
        settings.kafka_bootstrap_servers,
        settings.llm_topic_batch,
        [(batch_key(batch.local_id).encode(), batch.model_dump_json().encode())],
        partition=0,
    )
    async with app.running():
        (result,) = await consume(
            settings.kafka_bootstrap_servers, settings.llm_topic_enriched, count=1
        )
    assert json.loads(result.value)["job_id"] == "orphan"
    assert sim.stats()["batches_created"] == {"openai": 1}, "found, not sent again"


async def test_a_batch_the_vendor_refuses_is_split_until_it_is_taken(
    lane_settings: Settings, sim: SimulatorThread
) -> None:
    settings = lane_settings
    sim.set_faults("gemini", batch_delay_s=0.2, batch_max_requests=1)
    records = [_batch_job(f"gemini-{n}", "gemini") for n in range(4)]
    (enriched,) = await _outcomes(settings, records, {settings.llm_topic_enriched: 4})
    assert set(enriched) == {f"gemini-{n}" for n in range(4)}
    stats = sim.stats()
    assert stats["batches_created"] == {"gemini": 4}, "halved until one job a batch"
    assert stats["requests"].get("gemini", 0) == 0, "none went live"


async def test_a_batch_finished_halfway_by_a_stopped_worker_publishes_each_result_once(
    lane_settings: Settings, sim: SimulatorThread
) -> None:
    """What a worker stopped while publishing a finished batch's results leaves: the batch
    marked finishing on llm.batch and one of its three results published. The next owner
    publishes the other two, and that one not again."""
    settings = lane_settings
    bootstrap, raw = settings.kafka_bootstrap_servers, settings.llm_topic_raw
    app = await create_app(settings)
    jobs = {f"half-{n}": RawJob.model_validate_json(job_record(f"half-{n}")[1]) for n in range(3)}
    entries = {
        f"llm-streams-half_{n}": LaneJob(
            source=f"{raw}/0/{n}",
            job=job,
            original=OriginalRecord(topic=raw, partition=0, offset=n, key=job_id, value="{}"),
            provider="openai",
            model="gpt-5.4-mini",
            size=1,
            due_at=datetime.now(UTC) + timedelta(hours=1),
        )
        for n, (job_id, job) in enumerate(jobs.items())
    }
    api = batch_apis(build_providers(settings.provider))["openai"]
    vendor_id = await api.submit(
        label="llm-streams-half",
        model="gpt-5.4-mini",
        requests=[(key, app.router.request_for(e.job)) for key, e in entries.items()],
    )
    await api.provider.aclose()
    now = datetime.now(UTC)
    batch = LaneBatch(
        local_id="llm-streams-half",
        provider="openai",
        model="gpt-5.4-mini",
        jobs=entries,
        vendor_id=vendor_id,
        submitted_at=now,
        finishing_at=now,
    )
    partitions = settings.llm_topic_partitions
    await ensure_topic(
        KafkaCluster.plaintext(bootstrap),
        settings.llm_topic_batch,
        partitions=partitions,
        compacted=True,
    )
    await ensure_topic(
        KafkaCluster.plaintext(bootstrap), settings.llm_topic_enriched, partitions=partitions
    )
    await produce(
        bootstrap,
        settings.llm_topic_batch,
        [(batch_key(batch.local_id).encode(), batch.model_dump_json().encode())],
        partition=0,
    )
    published_before = json.dumps({"job_id": "half-0", "published": "before the stop"})
    await produce(
        bootstrap,
        settings.llm_topic_enriched,
        [(b"half-0", published_before.encode())],
        headers=[("llm-source", f"{raw}/0/0".encode())],
    )
    async with app.running():
        await consume(bootstrap, settings.llm_topic_enriched, count=3)

        async def forgotten() -> bool:  # the batch is done: nothing more will come of it
            records = await read_to_end(KafkaCluster.plaintext(bootstrap), settings.llm_topic_batch)
            latest = {r.key: r.value for r in records}
            return latest.get(batch_key(batch.local_id).encode(), b"") is None

        await eventually_async(forgotten, timeout_s=30)
    results = [
        json.loads(r.value)["job_id"]
        for r in await read_to_end(KafkaCluster.plaintext(bootstrap), settings.llm_topic_enriched)
    ]
    assert sorted(results) == ["half-0", "half-1", "half-2"], "each result once"
