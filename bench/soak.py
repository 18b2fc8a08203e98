"""Memory under load: a worker process through 100,000 jobs, its RSS sampled all along.

    .venv/bin/python -m bench.soak [--jobs 100000] [--latency-ms 0] [--concurrency 64]

Prints the worker's RSS at each tenth of the run and the growth over the second half: about
1 KB per job while the repost cache fills (every distinct answer, up to LLM_CACHE_MAX_ENTRIES),
flat once it is full and the buffers are warm.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path

import psutil
from aiokafka import AIOKafkaConsumer

from bench.common import broker, produce_jobs, settings_for, simulator
from devstack.broker.launcher import free_port
from devstack.harness import worker_process
from streams.config.settings import Settings
from streams.kafka.security import client_options


async def _run(settings: Settings, worker: psutil.Process, jobs: int) -> list[tuple[int, float]]:
    """(jobs enriched so far, worker RSS in MB), sampled as the run goes."""
    consumer = AIOKafkaConsumer(
        settings.llm_topic_enriched,
        **client_options(settings.cluster()),
        group_id=None,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    producing = asyncio.create_task(produce_jobs(settings, jobs))
    samples: list[tuple[int, float]] = []
    seen, next_sample = 0, 0.0
    try:
        while seen < jobs:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                seen += len(records)
            if time.monotonic() >= next_sample:
                samples.append((seen, worker.memory_info().rss / 2**20))
                next_sample = time.monotonic() + 1.0
        samples.append((seen, worker.memory_info().rss / 2**20))
        await producing
    finally:
        await consumer.stop()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--latency-ms", type=float, default=0)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    with broker() as kafka, simulator() as sim:
        sim.set_faults("openai", latency_ms=args.latency_ms)
        settings = settings_for(
            kafka, sim, llm_provider_chain=["openai"], llm_worker_concurrency=args.concurrency
        )
        env = dict(os.environ) | {
            "LLM_SERVICE_PORT": str(free_port()),
            "LLM_PROVIDER_CHAIN": "openai",
            "LLM_WORKER_CONCURRENCY": str(args.concurrency),
        }
        log = Path(tempfile.mkdtemp(prefix="bench-soak-")) / "worker.log"
        began = time.perf_counter()
        with worker_process(env, log) as process:
            samples = asyncio.run(_run(settings, psutil.Process(process.pid), args.jobs))
        elapsed = time.perf_counter() - began

    def rss_at(fraction: float) -> float:
        target = args.jobs * fraction
        return round(next(rss for done, rss in samples if done >= target), 1)

    tenths = {
        f"{int(f * 100)}%": rss_at(f) for f in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
    }
    half_growth = rss_at(1.0) - rss_at(0.5)
    result = {
        "jobs": args.jobs,
        "seconds": round(elapsed, 1),
        "jobs_per_s": round(args.jobs / elapsed, 1),
        "worker_rss_mb_by_progress": tenths,
        "rss_growth_second_half_mb": round(half_growth, 1),
        "rss_growth_per_10k_jobs_second_half_mb": round(half_growth / (args.jobs / 2) * 10_000, 2),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
