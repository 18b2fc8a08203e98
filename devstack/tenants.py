"""Fresh jobs behind a backlog: the scenario the tenants' fair share is for, run by its test
and its benchmark. Two worker processes on four partitions, one provider at a group rate
limit; tenant ``bulk`` publishes a backlog, a few seconds later tenant ``fresh`` publishes a
handful of jobs; how long each fresh job took from its publication to its outcome, and the
provider's arrivals, say whether the fresh jobs waited behind the backlog."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from devstack.broker.launcher import free_port
from devstack.harness import SimulatorClient, worker_process
from streams.config.slices import KafkaCluster
from streams.kafka.admin import read_to_end
from streams.kafka.clients import producer

__all__ = ["FreshBehindBulk", "fresh_behind_bulk"]

PARTITIONS = 4
WORKERS = 2


@dataclass(frozen=True, kw_only=True)
class FreshBehindBulk:
    fresh_latency_s: list[float]  # per fresh job: publication to outcome
    finished: Counter[str]  # outcomes per job id (enriched or dead-lettered)
    arrivals: list[float]  # the provider's, in the simulator's clock (seconds)
    bulk_rpm_alone: float  # the provider's calls a minute once the fresh jobs were done
    dead_letters: int

    def latency(self, q: float) -> float:
        ordered = sorted(self.fresh_latency_s)
        return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def _tenant_env(env: dict[str, str], *, rpm: int, tenants: bool) -> dict[str, str]:
    return env | {
        "LLM_TOPIC_PARTITIONS": str(PARTITIONS),
        "LLM_PROVIDER_CHAIN": "openai",
        "LLM_PROVIDER_LIMITS": json.dumps({"openai": {"rpm": rpm}}),
        "LLM_TENANTS": json.dumps({"bulk": {}, "fresh": {}} if tenants else {}),
        "LLM_CACHE_ENABLED": "false",
        "LLM_BROKER_SESSION_TIMEOUT_S": "6",
        "LLM_JOB_DEADLINE_S": "300",
    }


def _settled(ports: list[int], rpm: int) -> bool:
    """Every worker through the last rebalance, holding its part of the rate limit."""
    try:
        statuses = [httpx.get(f"http://127.0.0.1:{p}/status", timeout=2).json() for p in ports]
    except httpx.HTTPError:
        return False
    shares = sum(s["providers"]["openai"]["limits_here"]["rpm"] or 0 for s in statuses)
    return shares == rpm and not any(s["rebalancing"] for s in statuses)


def _job(job_id: str, tenant: str) -> bytes:
    return json.dumps(
        {
            "job_id": job_id,
            "title": f"Senior Python Engineer {job_id}",
            "description": f"Job {job_id}: 5+ years Python and Kafka. Remote (EU). EUR 80-95k.",
            "tenant": tenant,
        }
    ).encode()


async def _publish(cluster: KafkaCluster, topic: str, ids: list[str], tenant: str) -> None:
    async with producer(cluster) as send:
        sent = [await send.send(topic, _job(i, tenant), key=i.encode()) for i in ids]
        await asyncio.gather(*sent)


def _outcomes(cluster: KafkaCluster, env: dict[str, str]) -> tuple[list[Any], list[Any]]:
    enriched = asyncio.run(read_to_end(cluster, env["LLM_TOPIC_ENRICHED"]))
    dead = asyncio.run(read_to_end(cluster, env["LLM_TOPIC_DEAD_LETTER"]))
    return enriched, dead


def fresh_behind_bulk(
    env: dict[str, str],
    sim: SimulatorClient,
    workdir: Path,
    *,
    bulk: int,
    fresh: int,
    fresh_after_s: float = 10.0,
    rpm: int = 600,
    latency_ms: int = 200,
    tenants: bool = True,
) -> FreshBehindBulk:
    """The scenario, with ``tenants`` configured (each its share) or not (one pool)."""
    env = _tenant_env(env, rpm=rpm, tenants=tenants)
    cluster = KafkaCluster.plaintext(env["KAFKA_BOOTSTRAP_SERVERS"])
    ports = [int(env["LLM_SERVICE_PORT"]), *(free_port() for _ in range(WORKERS - 1))]
    with contextlib.ExitStack() as stack:
        for n, port in enumerate(ports):
            worker = env | {"LLM_SERVICE_PORT": str(port), "LLM_DATA_DIR": str(workdir / f"w{n}")}
            stack.enter_context(worker_process(worker, workdir / f"worker{n}.log"))
        deadline = time.monotonic() + 90
        while not _settled(ports, rpm):
            if time.monotonic() > deadline:
                raise AssertionError("the workers did not settle on the partitions")
            time.sleep(0.5)
        sim.reset()
        sim.set_faults("openai", latency_ms=latency_ms)
        raw = env["LLM_TOPIC_RAW"]
        asyncio.run(_publish(cluster, raw, [f"bulk-{n}" for n in range(bulk)], "bulk"))
        time.sleep(fresh_after_s)
        asyncio.run(_publish(cluster, raw, [f"fresh-{n}" for n in range(fresh)], "fresh"))
        limit = time.monotonic() + bulk / rpm * 60 * 1.5 + 120
        while sum(map(len, _outcomes(cluster, env))) < bulk + fresh:
            if time.monotonic() > limit:
                raise AssertionError("not every job finished in time")
            time.sleep(1)
        arrivals = sorted(sim.stats()["arrivals"]["openai"])
    enriched, dead = _outcomes(cluster, env)
    published = {r.key.decode(): r.timestamp for r in asyncio.run(read_to_end(cluster, raw))}
    finished: Counter[str] = Counter(json.loads(r.value)["job_id"] for r in (*enriched, *dead))
    ended = {json.loads(r.value)["job_id"]: r.timestamp for r in enriched}
    fresh_ids = [f"fresh-{n}" for n in range(fresh)]
    latencies = [(ended[i] - published[i]) / 1000 for i in fresh_ids if i in ended]
    # The simulator stamps arrivals on the monotonic clock, the broker records on the wall's.
    fresh_done = max(ended[i] for i in fresh_ids if i in ended) / 1000 - time.time()
    return FreshBehindBulk(
        fresh_latency_s=latencies,
        finished=finished,
        arrivals=arrivals,
        bulk_rpm_alone=_rate(a for a in arrivals if a >= time.monotonic() + fresh_done),
        dead_letters=len(dead),
    )


def _rate(arrivals: Iterable[float]) -> float:
    """Arrivals a minute from the first to the last of them."""
    times = sorted(arrivals)
    if len(times) < 2 or times[-1] == times[0]:
        return 0.0
    return (len(times) - 1) / (times[-1] - times[0]) * 60
