"""How many attempt events a second the statistics path absorbs.

    .venv/bin/python -m bench.stats_path [--events 100000] [--worker-checkout DIR]

A worker runs alone (no jobs); the script publishes synthetic ``llm.calls`` events as fast as
it can and measures the time until the worker's ``/statistics`` totals count all of them.
``--worker-checkout`` runs the worker from another checkout (its own ``.venv``), e.g. an
earlier commit, for a before/after in one run on one broker.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from aiokafka import AIOKafkaProducer

from bench.common import broker, settings_for, simulator
from devstack.harness import worker_process
from streams.config.settings import Settings
from streams.kafka.admin import partitions_of
from streams.kafka.security import client_options
from streams.models import ProviderCall, Usage


def _event(n: int) -> bytes:
    call = ProviderCall(
        provider="openai",
        model="gpt-5.4-mini",
        job_id=f"job-{n}",
        attempt=1,
        outcome="success" if n % 10 else "rate_limited",
        http_status=200,
        latency_ms=float(n % 900),
        usage=Usage(input_tokens=300, output_tokens=120, cost_usd=0.0008),
        price_version="bench",
        at=datetime.now(UTC),
    )
    return call.model_dump_json().encode()


def _counted(port: int) -> int:
    with contextlib.suppress(httpx.HTTPError, ValueError):
        totals = httpx.get(f"http://127.0.0.1:{port}/statistics", timeout=5).json()["totals"]
        return int(totals.get("openai", {}).get("calls", 0))
    return 0


async def _publish(settings: Settings, events: int) -> float:
    topic = settings.llm_topic_calls
    partitions = await partitions_of(settings.cluster(), topic)
    payloads = [_event(n) for n in range(events)]
    producer = AIOKafkaProducer(
        **client_options(settings.cluster()), linger_ms=20, max_batch_size=512_000
    )
    await producer.start()
    began = time.perf_counter()
    try:
        for n, payload in enumerate(payloads):
            await producer.send(
                topic, payload, key=f"job-{n}".encode(), partition=n % len(partitions)
            )
        await producer.flush()
    finally:
        await producer.stop()
    return began


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--worker-checkout", type=Path, default=None)
    args = parser.parse_args()
    with broker() as kafka, simulator() as sim:
        settings = settings_for(kafka, sim, llm_topic_partitions=4)
        port = settings.llm_service_port
        log = Path(settings.llm_data_dir) / "worker.log"
        with worker_process({"LLM_SERVICE_PORT": str(port)}, log, checkout=args.worker_checkout):
            began = asyncio.run(_publish(settings, args.events))
            published = time.perf_counter() - began
            deadline = time.monotonic() + 600
            while _counted(port) < args.events and time.monotonic() < deadline:
                time.sleep(0.2)
            elapsed = time.perf_counter() - began
            counted = _counted(port)
    print(
        json.dumps(
            {
                "worker": str(args.worker_checkout or "this checkout"),
                "events": args.events,
                "counted": counted,
                "publish_s": round(published, 2),
                "absorbed_s": round(elapsed, 2),
                "events_per_s": round(counted / elapsed, 1),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
