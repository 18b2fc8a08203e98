"""One worker against two on this machine: jobs per second through real worker processes.

    .venv/bin/python -m bench.scaling [--jobs 4000] [--latency-ms 50] [--concurrency 64]

Both runs use the same broker, simulator (its own process) and 4 partitions; the workers are
``llm-streams worker`` processes in one consumer group.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import tempfile
import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer

from bench.common import broker, produce_jobs, settings_for, simulator
from devstack.broker.launcher import free_port
from devstack.harness import SimulatorClient, worker_process
from streams.config.settings import Settings
from streams.kafka.admin import ensure_topic


async def _drain(settings: Settings, jobs: int) -> float:
    """Seconds from the first job produced to the last enriched job consumed."""
    consumer = AIOKafkaConsumer(
        settings.llm_topic_enriched,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=None,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    began = time.perf_counter()
    await produce_jobs(settings, jobs)
    seen = 0
    try:
        while seen < jobs:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                seen += len(records)
    finally:
        await consumer.stop()
    return time.perf_counter() - began


def run(bootstrap: str, sim: SimulatorClient, workers: int, args: argparse.Namespace) -> float:
    settings = settings_for(
        bootstrap,
        sim,
        llm_provider_chain=["openai"],
        llm_worker_concurrency=args.concurrency,
        llm_topic_partitions=4,
    )
    asyncio.run(ensure_topic(bootstrap, settings.llm_topic_raw, partitions=4))
    logs = Path(tempfile.mkdtemp(prefix="bench-scaling-"))
    with contextlib.ExitStack() as stack:
        for n in range(workers):
            env = dict(os.environ) | {
                "LLM_SERVICE_PORT": str(free_port()),
                "LLM_DATA_DIR": str(logs / f"worker-{n}"),
                "LLM_WORKER_CONCURRENCY": str(args.concurrency),
                "LLM_TOPIC_PARTITIONS": "4",
                "LLM_PROVIDER_CHAIN": "openai",
            }
            stack.enter_context(worker_process(env, logs / f"worker-{n}.log"))
        time.sleep(3)  # let the group settle on its final assignment
        rate: float = args.jobs / asyncio.run(_drain(settings, args.jobs))
        return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--jobs", type=int, default=4000)
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    with broker() as bootstrap, simulator() as sim:
        sim.set_faults("openai", latency_ms=args.latency_ms)
        one = run(bootstrap, sim, 1, args)
        two = run(bootstrap, sim, 2, args)
    result = {
        "jobs": args.jobs,
        "latency_ms": args.latency_ms,
        "concurrency_per_worker": args.concurrency,
        "one_worker_jobs_per_s": round(one, 1),
        "two_workers_jobs_per_s": round(two, 1),
        "two_over_one": round(two / one, 3),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
