"""Guarantees under failure, on the real broker: nothing is lost."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer

from streams.simulator.harness import SimulatorThread
from streams.supervisor import worker_process
from tests.kafka_helpers import end_offsets, job_record, produce

pytestmark = pytest.mark.slow


async def _job_ids(bootstrap: str, topic: str) -> Counter[str]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    seen: Counter[str] = Counter()
    try:
        while batches := await consumer.getmany(timeout_ms=1500):
            for records in batches.values():
                for record in records:
                    seen[json.loads(record.value)["job_id"]] += 1
    finally:
        await consumer.stop()
    return seen


def _records(bootstrap: str, topic: str) -> int:
    return sum(asyncio.run(end_offsets(bootstrap, topic)).values())


def test_a_killed_worker_loses_nothing(
    worker_env: dict[str, str], tmp_path: Path, sim: SimulatorThread
) -> None:
    """SIGKILL with hundreds of jobs in flight, then a new worker: every job ends enriched
    or dead-lettered; jobs in flight at the kill are redone (duplicates, counted)."""
    jobs = 2000
    sim.set_faults("openai", latency_ms=300, latency_jitter_ms=300)
    env = worker_env | {
        "LLM_WORKER_CONCURRENCY": "256",
        "LLM_PROVIDER_LIMITS": '{"openai": {"concurrency": 256}}',
        "LLM_BROKER_SESSION_TIMEOUT_S": "6",
    }
    bootstrap = env["KAFKA_BOOTSTRAP_SERVERS"]
    with worker_process(env, tmp_path / "first.log") as first:
        asyncio.run(
            produce(bootstrap, env["LLM_TOPIC_RAW"], [job_record(f"k{n}") for n in range(jobs)])
        )
        deadline = time.monotonic() + 60
        while (done := _records(bootstrap, env["LLM_TOPIC_ENRICHED"])) < 300:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        at_kill = _records(bootstrap, env["LLM_TOPIC_ENRICHED"])
    with worker_process(env, tmp_path / "second.log"):
        deadline = time.monotonic() + 120
        while True:
            enriched = asyncio.run(_job_ids(bootstrap, env["LLM_TOPIC_ENRICHED"]))
            dead = asyncio.run(_job_ids(bootstrap, env["LLM_TOPIC_DEAD_LETTER"]))
            if len(set(enriched) | set(dead)) == jobs or time.monotonic() > deadline:
                break
    lost = {f"k{n}" for n in range(jobs)} - set(enriched) - set(dead)
    duplicates = sum(count - 1 for count in enriched.values())
    print(
        f"\n[crash] jobs {jobs}, enriched when killed {at_kill} (seen {done}), "
        f"enriched {len(enriched)}, dead-lettered {len(dead)}, lost {len(lost)}, "
        f"duplicates {duplicates}"
    )
    assert at_kill < jobs, "the kill came while jobs were in flight"
    assert lost == set()
    assert dead == Counter(), "no job failed: the simulator was healthy"
