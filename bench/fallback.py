"""1,000 jobs through a real broker with the primary provider failing 30% of the time.

    .venv/bin/python -m bench.fallback [--jobs 1000] [--failure-rate 0.3] [--latency-ms 50]

Prints how many jobs were enriched, by which provider, the average attempts per job, and
the job latency (router time, and produced-to-consumed through Kafka) at p50/p95/p99.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import Counter

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.common import broker, percentile, settings_for, simulator
from streams.app import create_app
from streams.config.settings import Settings
from streams.kafka.security import client_options


async def run(settings: Settings, jobs: int) -> dict[str, object]:
    app = await create_app(settings)
    kafka = client_options(settings.cluster())
    async with app.running():
        consumer = AIOKafkaConsumer(
            settings.llm_topic_enriched,
            settings.llm_topic_dead_letter,
            **kafka,
            group_id=None,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        producer = AIOKafkaProducer(**kafka, linger_ms=5)
        await producer.start()
        started = time.time()
        sent_at: dict[str, float] = {}
        for n in range(jobs):
            job = {
                "job_id": f"job-{n}",
                "title": f"Senior Python Engineer {n}",
                "description": "5+ years Python and Kafka on AWS. Remote (EU). EUR 80-95k.",
            }
            sent_at[job["job_id"]] = time.time()
            await producer.send(
                settings.llm_topic_raw, json.dumps(job).encode(), key=job["job_id"].encode()
            )
        await producer.flush()
        await producer.stop()
        enriched: list[dict[str, object]] = []
        end_to_end_ms: list[float] = []
        dead = 0
        while len(enriched) + dead < jobs:
            for tp, records in (await consumer.getmany(timeout_ms=1000)).items():
                for record in records:
                    if tp.topic == settings.llm_topic_dead_letter:
                        dead += 1
                        continue
                    value = json.loads(record.value)
                    enriched.append(value)
                    end_to_end_ms.append((time.time() - sent_at[value["job_id"]]) * 1000)
        elapsed = time.time() - started
        await consumer.stop()
    attempts = [len(v["attempts"]) for v in enriched]  # type: ignore[arg-type]
    router_ms = [float(v["latency_ms"]) for v in enriched]  # type: ignore[arg-type]
    return {
        "jobs": jobs,
        "enriched": len(enriched),
        "dead_lettered": dead,
        "by_provider": dict(Counter(str(v["provider"]) for v in enriched)),
        "attempts_per_job": round(sum(attempts) / len(attempts), 3),
        "router_latency_ms": {q: round(percentile(router_ms, q), 1) for q in (50, 95, 99)},
        "end_to_end_ms": {q: round(percentile(end_to_end_ms, q), 1) for q in (50, 95, 99)},
        "seconds": round(elapsed, 2),
        "jobs_per_second": round(jobs / elapsed, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--failure-rate", type=float, default=0.3)
    parser.add_argument("--latency-ms", type=float, default=50)
    args = parser.parse_args()
    with broker() as kafka, simulator() as sim:
        for provider in ("openai", "deepseek"):
            sim.set_faults(provider, latency_ms=args.latency_ms, latency_jitter_ms=args.latency_ms)
        sim.set_faults(
            "openai",
            latency_ms=args.latency_ms,
            latency_jitter_ms=args.latency_ms,
            errors={500: args.failure_rate},
        )
        settings = settings_for(
            kafka,
            sim,
            llm_provider_chain=["openai", "deepseek"],
            llm_worker_concurrency=64,
        )
        result = asyncio.run(run(settings, args.jobs))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
