"""1, 2 and 4 worker processes on this machine: jobs per second and CPU per job.

    .venv/bin/python -m bench.scaling [--jobs 4000] [--latency-ms 50] [--concurrency 64]
                                      [--processes 1 2 4]

Each run is ``llm-streams worker --processes N`` (one consumer group) on the same broker and
simulator (its own process), with 8 partitions. CPU is the workers' own (their user + system
time) and, apart, everything else the machine did meanwhile (the broker, the simulator, this
script): these machines have 2 cores shared by all of them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from aiokafka import AIOKafkaConsumer

from bench.common import broker, produce_jobs, settings_for, simulator
from devstack.harness import SimulatorClient
from devstack.supervisor import wait_until_consuming
from streams.config.settings import Settings
from streams.kafka.admin import ensure_topic
from streams.kafka.security import client_options

PARTITIONS = 8


async def _drain(settings: Settings, jobs: int) -> float:
    """Seconds from the first job produced to the last enriched job consumed."""
    consumer = AIOKafkaConsumer(
        settings.llm_topic_enriched,
        **client_options(settings.cluster()),
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


def _ready(ports: list[int], fleet: subprocess.Popen[bytes]) -> None:
    for port in ports:
        if not wait_until_consuming(f"http://127.0.0.1:{port}/health", fleet, timeout_s=180):
            raise SystemExit(f"worker on port {port} not ready")


def _cpu_s(fleet: psutil.Process) -> float:
    """The workers' CPU: with one process the parent is the worker, with more its children
    (the parent only waits)."""
    return sum(sum(p.cpu_times()[:2]) for p in [fleet, *fleet.children(recursive=True)])


def run(
    kafka: dict[str, str], sim: SimulatorClient, processes: int, args: argparse.Namespace
) -> dict[str, float]:
    settings = settings_for(
        kafka,
        sim,
        llm_provider_chain=["openai"],
        llm_worker_concurrency=args.concurrency,
        llm_topic_partitions=PARTITIONS,
    )
    asyncio.run(ensure_topic(settings.cluster(), settings.llm_topic_raw, partitions=PARTITIONS))
    env = dict(os.environ) | {
        "LLM_WORKER_CONCURRENCY": str(args.concurrency),
        "LLM_TOPIC_PARTITIONS": str(PARTITIONS),
        "LLM_PROVIDER_CHAIN": "openai",
        "LLM_DATA_DIR": tempfile.mkdtemp(prefix="bench-scaling-"),
    }
    log = Path(env["LLM_DATA_DIR"]) / "workers.log"
    with log.open("ab") as out:
        fleet = subprocess.Popen(
            [sys.executable, "-m", "streams", "worker", "--processes", str(processes)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _ready([settings.llm_service_port + n for n in range(processes)], fleet)
        time.sleep(3)  # let the group settle on its final assignment
        parent = psutil.Process(fleet.pid)
        cpu_before, machine_before = _cpu_s(parent), sum(psutil.cpu_times()[:3])
        seconds = asyncio.run(_drain(settings, args.jobs))
        workers_cpu = _cpu_s(parent) - cpu_before
        machine_cpu = sum(psutil.cpu_times()[:3]) - machine_before
    finally:
        fleet.send_signal(signal.SIGTERM)
        fleet.wait(120)
    return {
        "processes": processes,
        "jobs_per_s": round(args.jobs / seconds, 1),
        "worker_cpu_ms_per_job": round(workers_cpu / args.jobs * 1000, 2),
        "other_cpu_ms_per_job": round((machine_cpu - workers_cpu) / args.jobs * 1000, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--jobs", type=int, default=4000)
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()
    rows = []
    with broker() as kafka, simulator() as sim:
        sim.set_faults("openai", latency_ms=args.latency_ms)
        for processes in args.processes:
            rows.append(run(kafka, sim, processes, args))
            print(json.dumps(rows[-1]), flush=True)
    base = rows[0]["jobs_per_s"]
    for row in rows:
        row["over_first"] = round(row["jobs_per_s"] / base, 3)
    print(json.dumps({"jobs": args.jobs, "latency_ms": args.latency_ms, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
