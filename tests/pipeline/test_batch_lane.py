"""The batch lane on the real broker against the simulator's Batch APIs: jobs that can wait go
out in one batch per provider and model, at the batch rate, and end enriched or
dead-lettered like live ones; a failed batch goes live."""

from __future__ import annotations

import json
from typing import Any

import pytest

from devstack.harness import SimulatorThread
from streams.app import create_app
from streams.config.settings import Settings
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
    app = create_app(settings)
    async with app.running():
        await produce(settings.kafka_bootstrap_servers, settings.llm_topic_raw, records)
        enriched = _by_job(
            await consume(settings.kafka_bootstrap_servers, settings.llm_topic_enriched, count=11)
        )
        calls = _by_job(
            await consume(settings.kafka_bootstrap_servers, settings.llm_topic_calls, count=11)
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


async def test_a_failed_batch_goes_live_and_an_expired_one_past_its_deadline_is_dead_lettered(
    lane_settings: Settings, sim: SimulatorThread
) -> None:
    settings = lane_settings
    sim.set_faults("openai", batch_delay_s=0.3, batch_end="failed")
    sim.set_faults("anthropic", batch_delay_s=0.3, batch_end="expired")
    records = [_batch_job(f"openai-{n}", "openai") for n in range(2)]
    # deadlines too short to go live after the batch: dead-lettered, with the batch named
    records += [_batch_job(f"anthropic-{n}", "anthropic", deadline_ms=1500) for n in range(2)]
    app = create_app(settings)
    async with app.running():
        await produce(settings.kafka_bootstrap_servers, settings.llm_topic_raw, records)
        enriched = _by_job(
            await consume(settings.kafka_bootstrap_servers, settings.llm_topic_enriched, count=2)
        )
        dead = _by_job(
            await consume(settings.kafka_bootstrap_servers, settings.llm_topic_dead_letter, count=2)
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
