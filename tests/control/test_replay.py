"""``llm-streams replay`` against a worker process on the real broker."""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from devstack.harness import SimulatorThread, worker_process
from streams.config.settings import Settings
from streams.config.slices import KafkaCluster
from streams.kafka.admin import read_to_end
from streams.observe.estimate import totals_so_far
from tests.conftest import run_cli
from tests.eventually import eventually
from tests.kafka_helpers import end_offsets, job_record, produce

pytestmark = pytest.mark.slow


def _job_ids(bootstrap: str, topic: str) -> Counter[str | None]:
    records = asyncio.run(read_to_end(KafkaCluster.plaintext(bootstrap), topic))
    return Counter(json.loads(r.value).get("job_id") for r in records)


def _await_job(bootstrap: str, topic: str, job_id: str | None, *, count: int) -> None:
    eventually(
        lambda: _job_ids(bootstrap, topic)[job_id] >= count,
        timeout_s=60,
        what=f"{job_id} {count}x in {topic}",
    )


def test_a_dead_letter_is_replayed_once_after_the_provider_recovers(
    worker_env: dict[str, str], tmp_path: Path, sim: SimulatorThread
) -> None:
    env = worker_env
    bootstrap = env["KAFKA_BOOTSTRAP_SERVERS"]
    dead, enriched = env["LLM_TOPIC_DEAD_LETTER"], env["LLM_TOPIC_ENRICHED"]
    for provider in ("openai", "deepseek"):
        sim.set_faults(provider, errors={401: 1.0})  # final: dead-lettered at once
    with worker_process(env, tmp_path / "worker.log"):
        records = [job_record("again"), (b"junk", b"not json")]
        asyncio.run(produce(bootstrap, env["LLM_TOPIC_RAW"], records))
        _await_job(bootstrap, dead, "again", count=1)
        _await_job(bootstrap, dead, None, count=1)  # the junk: not selected below
        sim.reset()

        dry = run_cli("replay", "--stage", "enrich", "--dry-run", env=env)
        assert dry.returncode == 0, dry.stderr
        assert "job again" in dry.stdout
        assert "1 dead letters selected: 1 would replay" in dry.stdout
        assert _job_ids(bootstrap, enriched)["again"] == 0, "a dry run publishes nothing"
        by_cause = run_cli("replay", "--error", "AuthenticationError", "--dry-run", env=env)
        assert "1 dead letters selected: 1 would replay" in by_cause.stdout, by_cause.stdout

        first = run_cli("replay", "--stage", "enrich", env=env)
        assert "1 dead letters selected: 1 replayed" in first.stdout, first.stdout + first.stderr
        _await_job(bootstrap, enriched, "again", count=1)

        raw_before = asyncio.run(end_offsets(bootstrap, env["LLM_TOPIC_RAW"]))
        second = run_cli("replay", "--stage", "enrich", env=env)
        assert "1 already replayed" in second.stdout, second.stdout + second.stderr
        assert asyncio.run(end_offsets(bootstrap, env["LLM_TOPIC_RAW"])) == raw_before, (
            "nothing republished, so it is enriched exactly once"
        )
        assert _job_ids(bootstrap, enriched)["again"] == 1

        forced = run_cli("replay", "--job-id", "again", "--force", env=env)
        assert "1 replayed" in forced.stdout, forced.stdout + forced.stderr
        _await_job(bootstrap, enriched, "again", count=2)


def test_replay_rejects_a_bad_time(worker_env: dict[str, str]) -> None:
    result = run_cli("replay", "--since", "yesterday-ish", env=worker_env)
    assert result.returncode == 2
    assert "not an ISO 8601 time" in result.stderr


def test_a_dry_run_estimates_the_cost_from_the_statistics(
    worker_env: dict[str, str], settings: Settings, tmp_path: Path, sim: SimulatorThread
) -> None:
    env = worker_env
    bootstrap = env["KAFKA_BOOTSTRAP_SERVERS"]
    with worker_process(env, tmp_path / "worker.log"):
        asyncio.run(
            produce(bootstrap, env["LLM_TOPIC_RAW"], [job_record(f"ok{n}") for n in range(3)])
        )
        for n in range(3):
            _await_job(bootstrap, env["LLM_TOPIC_ENRICHED"], f"ok{n}", count=1)
        enriched = asyncio.run(
            read_to_end(KafkaCluster.plaintext(bootstrap), env["LLM_TOPIC_ENRICHED"])
        )
        per_job = sum(json.loads(r.value)["usage"]["cost_usd"] for r in enriched) / 3

        eventually(
            lambda: asyncio.run(totals_so_far(settings)).get("openai", {}).get("calls", 0) >= 3,
            every_s=0.5,
            what="the calls in the statistics",
        )
        for provider in ("openai", "deepseek"):
            sim.set_faults(provider, errors={401: 1.0})
        asyncio.run(produce(bootstrap, env["LLM_TOPIC_RAW"], [job_record("failed")]))
        _await_job(bootstrap, env["LLM_TOPIC_DEAD_LETTER"], "failed", count=1)

        dry = run_cli("replay", "--job-id", "failed", "--dry-run", env=env)
    assert dry.returncode == 0, dry.stderr
    line = re.search(
        r"openai: 1 jobs x \$([0-9.]+) a job, 0% served by the repost cache", dry.stdout
    )
    assert line is not None, dry.stdout
    assert float(line.group(1)) == pytest.approx(per_job, abs=1e-6)
    assert "estimated cost of the replay: about $" in dry.stdout
