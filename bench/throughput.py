"""End-to-end throughput on a real broker against the ideal and a hand-written baseline.

    .venv/bin/python -m bench.throughput [--latency-ms 0 50 200] [--concurrency 16 64 256]
                                         [--jobs N] [--tracing] [--schema-registry]
                                         [--shadow] [--tenants] [--no-write-ahead]
                                         [--sasl-cluster]

For each provider latency L and worker concurrency C, the same N jobs go through
(1) the pipeline (the Faust worker in this process) and (2) a minimal aiokafka consume →
httpx call → produce loop at the same concurrency, against the same broker and simulator (its
own process). Reports jobs/s, the ratio to the ideal (C / L; at L = 0 there is no ideal but
the CPU), the ratio to the baseline, produced→consumed latency p50/p99, CPU seconds per 1,000
jobs and peak RSS. ``--tracing`` runs the pipeline again with traces and metrics exported
over OTLP/HTTP (to a receiver in its own process that keeps nothing), ``--schema-registry``
with every record framed for a Schema Registry (Apicurio, in its own process), ``--shadow``
with a shadow candidate sent half the jobs after their live answers (and the plain run
again, for the run-to-run spread), ``--tenants`` with tenants configured (each job then
within its tenant's share of the calls, those beyond it through the waiting lane; the plain
run again too), ``--no-write-ahead`` without each call's write-ahead record on ``llm.sent``
(the plain run again too), ``--sasl-cluster`` on a local three-broker cluster over
SASL_SSL (SCRAM-SHA-512, topics replicated 3 times, min.insync.replicas 2) instead of the one
plaintext broker; each reports its ratios to the plain run, throughput, CPU and
produced→consumed p50.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from httpx_aiohttp import AiohttpTransport

from bench.common import BENCH_APP_PREFIX, broker, job_line, percentile, settings_for, simulator
from devstack.broker import LocalKafka
from devstack.registry import LocalRegistry
from streams.app import create_app
from streams.config.settings import Settings
from streams.config.slices import KafkaCluster
from streams.kafka.admin import ensure_topic, partitions_when_created
from streams.kafka.security import client_options
from streams.models import RawJob
from streams.providers.base import EnrichRequest
from streams.providers.openai import OpenAIProvider
from streams.telemetry.sdk import from_env as telemetry_from_env
from streams.worker import collect_less, use_uvloop


def produce_elsewhere(settings: Settings, topic: str, jobs: int) -> subprocess.Popen[bytes]:
    """``llm-streams produce`` in its own process, so the measured event loop only runs
    the thing measured."""
    lines = "\n".join(job_line(n) for n in range(jobs))
    source = Path(tempfile.mkdtemp(prefix="bench-jobs-")) / "jobs.jsonl"
    source.write_text(lines + "\n", encoding="utf-8")
    return subprocess.Popen(
        [sys.executable, "-m", "streams", "produce", str(source), "--topic", topic],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def wait_for_records(cluster: KafkaCluster, topic: str, count: int) -> None:
    """Return once ``topic`` holds ``count`` records (polling its end offsets: cheap)."""
    consumer = AIOKafkaConsumer(**client_options(cluster), group_id=None)
    await consumer.start()
    try:
        # Found once: a client per look would cost the measured process CPU of its own.
        partitions = await partitions_when_created(cluster, topic, every_s=0.1)
        while sum((await consumer.end_offsets(partitions)).values()) < count:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
    finally:
        await consumer.stop()


async def e2e_latencies(
    cluster: KafkaCluster, raw_topic: str, out_topic: str
) -> tuple[list[float], float]:
    """Per job, the output record's timestamp minus the input record's (ms), read after
    the run from both topics; and the steady rate (jobs/s between the 10th and the 90th
    percentile of output times, so start-up does not count)."""

    async def read(topic: str) -> dict[str, int]:
        consumer = AIOKafkaConsumer(
            topic, **client_options(cluster), group_id=None, auto_offset_reset="earliest"
        )
        await consumer.start()
        stamps: dict[str, int] = {}
        try:
            while batches := await consumer.getmany(timeout_ms=1000):
                for records in batches.values():
                    for record in records:
                        stamps[record.key.decode()] = record.timestamp
        finally:
            await consumer.stop()
        return stamps

    sent, done = await read(raw_topic), await read(out_topic)
    finished = sorted(done.values())
    first, last = finished[len(finished) // 10], finished[len(finished) * 9 // 10]
    steady = (len(finished) * 0.8) / max((last - first) / 1000, 1e-3)
    return [float(done[k] - sent[k]) for k in done if k in sent], steady


async def _measure(run: Callable[[], Awaitable[None]]) -> dict[str, float]:
    """Wall time, this process's CPU time and peak RSS while ``run`` runs."""
    process = psutil.Process()
    peak = process.memory_info().rss

    async def sample() -> None:
        nonlocal peak
        while True:
            peak = max(peak, process.memory_info().rss)
            await asyncio.sleep(0.25)

    sampler = asyncio.create_task(sample())
    cpu = process.cpu_times()
    began = time.perf_counter()
    try:
        await run()
    finally:
        sampler.cancel()
    elapsed = time.perf_counter() - began
    used = process.cpu_times()
    return {
        "seconds": elapsed,
        "cpu_seconds": (used.user - cpu.user) + (used.system - cpu.system),
        "peak_rss_mb": peak / 2**20,
    }


async def pipeline(settings: Settings, jobs: int) -> dict[str, Any]:
    """The worker in this process, as the environment configures it (OTEL_*, the registry)."""
    app = await create_app(settings, telemetry=telemetry_from_env(install=False))
    cluster = settings.cluster()

    async def run() -> None:
        async with app.running():
            collect_less()  # as llm-streams worker, once started
            producer = produce_elsewhere(settings, settings.llm_topic_raw, jobs)
            await wait_for_records(cluster, settings.llm_topic_enriched, jobs)
            producer.wait()

    figures = await _measure(run)
    latencies, steady = await e2e_latencies(
        cluster, settings.llm_topic_raw, settings.llm_topic_enriched
    )
    return figures | {"latencies": latencies, "steady": steady}


async def baseline(settings: Settings, jobs: int, concurrency: int) -> dict[str, Any]:
    """What a careful person would write by hand: no router, no validation, no audit events."""
    adapter = OpenAIProvider(settings.provider("openai"))
    out_topic = f"{settings.llm_topic_enriched}.baseline"
    in_topic = f"{settings.llm_topic_raw}.baseline"
    cluster = settings.cluster()
    # Both made first: a cluster need not create topics on a first send.
    for topic in (in_topic, out_topic):
        await ensure_topic(cluster, topic, partitions=settings.llm_topic_partitions)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    client = httpx.AsyncClient(
        base_url=settings.provider("openai").base_url,
        headers=adapter.auth_headers(),
        transport=AiohttpTransport(limits=limits),
        # As the adapters: no read timeout (httpx's default 5 s cut every call off at L=5 s).
        timeout=httpx.Timeout(None, connect=5.0),
    )

    async def run() -> None:
        # The worker's collector settings for the loop too, as its event loop: at 4,096 calls
        # in flight the default ones cost the loop 2.3 CPU-ms per job against 0.7.
        collect_less()
        consumer = AIOKafkaConsumer(
            in_topic,
            **client_options(cluster),
            group_id=f"{settings.llm_app_id}-baseline",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        producer = AIOKafkaProducer(**client_options(cluster))
        await consumer.start()
        await producer.start()
        slots = asyncio.Semaphore(concurrency)
        done = 0

        async def handle(value: bytes) -> None:
            nonlocal done
            try:
                job = RawJob.model_validate_json(value)
                path, body = adapter.build(EnrichRequest(job=job), adapter.model)
                answer = (await client.post(path, json=body)).json()
                text = answer["choices"][0]["message"]["content"]
                result = json.dumps({"job_id": job.job_id, "enrichment": json.loads(text)})
                await producer.send_and_wait(out_topic, result.encode(), key=job.job_id.encode())
                done += 1
            finally:
                slots.release()

        tasks: set[asyncio.Task[None]] = set()
        producing = produce_elsewhere(settings, in_topic, jobs)
        while done < jobs:
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                for record in records:
                    await slots.acquire()
                    task = asyncio.create_task(handle(record.value))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
            if batches:
                await consumer.commit()
        await asyncio.gather(*tasks)
        producing.wait()
        await consumer.stop()
        await producer.stop()

    figures = await _measure(run)
    await client.aclose()
    await adapter.aclose()
    latencies, steady = await e2e_latencies(cluster, in_topic, out_topic)
    return figures | {"latencies": latencies, "steady": steady}


@contextlib.contextmanager
def variants(
    *,
    tracing: bool,
    registry: bool,
    shadow: bool,
    tenants: bool,
    no_write_ahead: bool,
    sasl_cluster: bool,
) -> Iterator[dict[str, dict[str, str]]]:
    """The pipeline's runs besides the plain one, by name: the variables each sets (for the
    worker and the producer alike): traces and metrics exported over OTLP/HTTP to a receiver
    in its own process; records framed for a Schema Registry (Apicurio, in its own); a
    shadow candidate on half the jobs, and the plain run again; a three-broker cluster over
    SASL_SSL (its brokers in processes of their own)."""
    with contextlib.ExitStack() as stack:
        runs: dict[str, dict[str, str]] = {}
        if tracing:
            sink = subprocess.Popen(
                [sys.executable, "-m", "devstack.otlp"], stdout=subprocess.PIPE, text=True
            )
            stack.callback(sink.wait)
            stack.callback(sink.terminate)
            assert sink.stdout is not None
            runs["pipeline+otlp"] = {"OTEL_EXPORTER_OTLP_ENDPOINT": sink.stdout.readline().strip()}
        if registry:
            log = Path(tempfile.mkdtemp(prefix="bench-registry-")) / "registry.log"
            url = stack.enter_context(LocalRegistry(log=log)).url
            runs["pipeline+registry"] = {"LLM_SCHEMA_REGISTRY_URL": url}
        if shadow:
            runs["pipeline again"] = {}
            candidate = {"provider": "openai", "model": "gpt-5.4-nano", "sample": 0.5}
            runs["pipeline+shadow"] = {"LLM_SHADOW": json.dumps([candidate])}
        if tenants:
            runs["pipeline again"] = {}
            policies = {"bulk": {"daily_budget_usd": 1000}, "fresh": {"weight": 2}}
            runs["pipeline+tenants"] = {"LLM_TENANTS": json.dumps(policies)}
        if no_write_ahead:
            runs["pipeline again"] = {}
            runs["pipeline, no write-ahead"] = {"LLM_WRITE_AHEAD": "false"}
        if sasl_cluster:
            data = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
            cluster = LocalKafka(data_dir=data, nodes=3, sasl=True, app_id=BENCH_APP_PREFIX)
            runs["pipeline+sasl_ssl x3"] = stack.enter_context(cluster).client_env()
        yield runs


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                del os.environ[name]
            else:
                os.environ[name] = value


def _row(name: str, figures: dict[str, Any], jobs: int) -> dict[str, Any]:
    latencies = figures["latencies"]
    return {
        "run": name,
        "jobs_per_s": round(jobs / figures["seconds"], 1),
        "steady_jobs_per_s": round(figures["steady"], 1),
        "e2e_p50_ms": round(percentile(latencies, 50), 1),
        "e2e_p99_ms": round(percentile(latencies, 99), 1),
        "cpu_s_per_1000": round(figures["cpu_seconds"] / jobs * 1000, 2),
        "peak_rss_mb": round(figures["peak_rss_mb"], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--latency-ms", type=float, nargs="+", default=[0, 50, 200])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--jobs", type=int, default=3000, help="jobs per run")
    parser.add_argument(
        "--tracing", action="store_true", help="also the pipeline exporting traces and metrics"
    )
    parser.add_argument(
        "--schema-registry", action="store_true", help="also the pipeline with framed records"
    )
    parser.add_argument(
        "--shadow", action="store_true", help="also the pipeline shadowing half the jobs"
    )
    parser.add_argument(
        "--tenants", action="store_true", help="also the pipeline with tenants configured"
    )
    parser.add_argument(
        "--no-write-ahead",
        action="store_true",
        help="also the pipeline without each call's write-ahead record",
    )
    parser.add_argument(
        "--sasl-cluster",
        action="store_true",
        help="also the pipeline on a local three-broker cluster over SASL_SSL",
    )
    args = parser.parse_args()
    use_uvloop()  # the worker's event loop, for both (the baseline's author would use it too)
    rows = []
    with (
        broker() as kafka,
        simulator() as sim,
        variants(
            tracing=args.tracing,
            registry=args.schema_registry,
            shadow=args.shadow,
            tenants=args.tenants,
            no_write_ahead=args.no_write_ahead,
            sasl_cluster=args.sasl_cluster,
        ) as others,
    ):
        for latency in args.latency_ms:
            sim.set_faults("openai", latency_ms=latency)
            for concurrency in args.concurrency:
                ideal = concurrency / (latency / 1000) if latency else None
                jobs = args.jobs
                overrides = {
                    "llm_provider_chain": ["openai"],
                    "llm_worker_concurrency": concurrency,
                    "llm_provider_limits": {"openai": {"concurrency": max(64, concurrency)}},
                }
                settings = settings_for(kafka, sim, **overrides)
                ours = _row("pipeline", asyncio.run(pipeline(settings, jobs)), jobs)
                run = [ours]
                for name, values in others.items():  # the same again: topics of its own
                    with environment(values):
                        fresh = settings_for(kafka | values, sim, **overrides)
                        row = _row(name, asyncio.run(pipeline(fresh, jobs)), jobs)
                    row["ratio_to_plain"] = round(
                        row["steady_jobs_per_s"] / ours["steady_jobs_per_s"], 3
                    )
                    row["cpu_ratio_to_plain"] = round(
                        row["cpu_s_per_1000"] / ours["cpu_s_per_1000"], 3
                    )
                    row["p50_ratio_to_plain"] = round(row["e2e_p50_ms"] / ours["e2e_p50_ms"], 3)
                    run.append(row)
                theirs = _row("baseline", asyncio.run(baseline(settings, jobs, concurrency)), jobs)
                run.append(theirs)
                for row in run:
                    row |= {"latency_ms": latency, "concurrency": concurrency, "jobs": jobs}
                    row["ratio_to_ideal"] = (
                        round(row["steady_jobs_per_s"] / ideal, 3) if ideal else None
                    )
                    row["ratio_to_baseline"] = round(
                        row["steady_jobs_per_s"] / theirs["steady_jobs_per_s"], 3
                    )
                    print(json.dumps(row), flush=True)
                rows += run
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
