"""The waiting lane with worker processes on the real broker: a tenant over its budget waits
alone (none of its jobs paid or dead-lettered, another tenant's jobs in the same partitions go
on), also when its first jobs spend the budget; a worker killed while jobs wait loses none of
them; the budget raised, the waiting jobs are enriched in their order, each once."""

from __future__ import annotations

import asyncio
import json
import signal
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from devstack.broker.launcher import free_port
from devstack.harness import SimulatorThread, worker_process
from streams.kafka.admin import read_to_end
from tests.conftest import run_cli
from tests.eventually import eventually
from tests.kafka_helpers import cluster_of, job_record, produce

pytestmark = pytest.mark.slow

BULK, FRESH = 40, 20


def _read(env: dict[str, str], topic: str) -> list[Any]:
    return asyncio.run(read_to_end(cluster_of(env["KAFKA_BOOTSTRAP_SERVERS"]), env[topic]))


def _finished(env: dict[str, str]) -> Counter[str]:
    records = [*_read(env, "LLM_TOPIC_ENRICHED"), *_read(env, "LLM_TOPIC_DEAD_LETTER")]
    return Counter(json.loads(r.value)["job_id"] for r in records)


def _every_job_finished(env: dict[str, str]) -> Counter[str]:
    return eventually(
        lambda: _finished(env),
        lambda done: len(done) >= BULK + FRESH,
        timeout_s=120,
        what="every job finished",
    )


def _waiting(env: dict[str, str]) -> set[str]:
    latest: dict[bytes, bytes | None] = {}
    for record in _read(env, "LLM_TOPIC_WAITING"):
        latest[record.key] = record.value
    return {json.loads(v)["job"]["job_id"] for v in latest.values() if v is not None}


def _source_offsets(records: list[Any]) -> dict[int, list[int]]:
    """Per raw partition, the raw offsets of the records' jobs, in the order published."""
    by_partition: dict[int, list[int]] = defaultdict(list)
    for record in records:
        source = dict(record.headers)["llm-source"].decode()
        _, partition, offset = source.rsplit("/", 2)
        by_partition[int(partition)].append(int(offset))
    return by_partition


def test_a_tenant_over_budget_waits_alone_survives_a_kill_and_goes_on_in_order(
    worker_env: dict[str, str], tmp_path: Path, sim: SimulatorThread
) -> None:
    env = worker_env | {
        "LLM_TOPIC_PARTITIONS": "4",
        "LLM_TENANTS": json.dumps({"bulk": {"daily_budget_usd": 0}}),
        # one call at a time per worker: the released jobs' order is their outcomes' order
        "LLM_WORKER_CONCURRENCY": "1",
        "LLM_BROKER_SESSION_TIMEOUT_S": "6",
        "LLM_CACHE_ENABLED": "false",
    }
    other = env | {"LLM_SERVICE_PORT": str(free_port()), "LLM_DATA_DIR": str(tmp_path / "w1")}
    bootstrap, raw = env["KAFKA_BOOTSTRAP_SERVERS"], env["LLM_TOPIC_RAW"]
    calls_before = sim.requests().get("openai", 0)
    with (
        worker_process(env, tmp_path / "first.log"),
        worker_process(other, tmp_path / "second.log") as second,
    ):
        bulk = [job_record(f"bulk-{n}", tenant="bulk") for n in range(BULK)]
        fresh = [job_record(f"fresh-{n}") for n in range(FRESH)]
        for n in range(BULK):  # the tenants' jobs side by side in the partitions
            asyncio.run(produce(bootstrap, raw, [bulk[n]]))
            if n % 2 == 0:
                asyncio.run(
                    produce(bootstrap, raw, [fresh[n // 2]], headers=[("tenant", b"fresh")])
                )
        eventually(
            lambda: _finished(env),
            lambda done: len(done) >= FRESH,
            timeout_s=60,
            what="the fresh jobs finished",
        )
        eventually(
            lambda: _waiting(env),
            lambda waiting: len(waiting) == BULK,
            timeout_s=30,
            what="every bulk job in the waiting lane",
        )
        assert set(_finished(env)) == {f"fresh-{n}" for n in range(FRESH)}, "none of bulk's"
        assert sim.requests().get("openai", 0) - calls_before == FRESH, "none of bulk's paid"

        second.send_signal(signal.SIGKILL)
        second.wait(10)
        raised = run_cli(
            "config", "set", 'LLM_TENANTS={"bulk": {"daily_budget_usd": 1000}}', env=env
        )
        assert raised.returncode == 0, raised.stderr
        finished = _every_job_finished(env)
    assert set(finished) == {f"bulk-{n}" for n in range(BULK)} | {
        f"fresh-{n}" for n in range(FRESH)
    }
    assert max(finished.values()) == 1, "each once"
    assert _read(env, "LLM_TOPIC_DEAD_LETTER") == []
    assert sim.requests().get("openai", 0) - calls_before == BULK + FRESH, "each paid once"
    assert _waiting(env) == set()
    enriched = _read(env, "LLM_TOPIC_ENRICHED")
    bulk_out = [r for r in enriched if json.loads(r.value)["job"]["tenant"] == "bulk"]
    for partition, offsets in _source_offsets(bulk_out).items():
        assert offsets == sorted(offsets), f"partition {partition}'s bulk jobs in their order"


def test_a_budget_spent_mid_run_holds_the_rest_of_the_tenant_s_jobs(
    worker_env: dict[str, str], tmp_path: Path, sim: SimulatorThread
) -> None:
    """A budget the first calls spend: the tenant's later jobs wait (none dead-lettered),
    the other tenant's go on; raised, they are enriched, each once."""
    sim.set_faults("openai", latency_ms=200)  # slower than the spend takes to be summed
    env = worker_env | {
        "LLM_TOPIC_PARTITIONS": "4",
        "LLM_TENANTS": json.dumps({"bulk": {"daily_budget_usd": 0.000001}}),
        "LLM_WORKER_CONCURRENCY": "2",
        "LLM_CACHE_ENABLED": "false",
    }
    bootstrap, raw = env["KAFKA_BOOTSTRAP_SERVERS"], env["LLM_TOPIC_RAW"]
    calls_before = sim.requests().get("openai", 0)
    with worker_process(env, tmp_path / "worker.log"):
        jobs = [job_record(f"bulk-{n}", tenant="bulk") for n in range(BULK)]
        jobs += [job_record(f"fresh-{n}", tenant="fresh") for n in range(FRESH)]
        asyncio.run(produce(bootstrap, raw, jobs))
        done = eventually(
            lambda: _finished(env),
            lambda done: {f"fresh-{n}" for n in range(FRESH)} <= set(done),
            timeout_s=60,
            what="the fresh jobs finished",
        )
        waiting = eventually(
            lambda: _waiting(env),
            lambda waiting: len(waiting) + len(done) - FRESH == BULK,
            timeout_s=30,
            what="bulk's jobs finished or waiting",
        )
        paid = len(done) - FRESH
        assert paid >= 1, "the budget was spent by bulk's first jobs"
        assert waiting, "and the rest wait"
        assert _read(env, "LLM_TOPIC_DEAD_LETTER") == []
        raised = run_cli("config", "set", 'LLM_TENANTS={"bulk": {}}', env=env)
        assert raised.returncode == 0, raised.stderr
        finished = _every_job_finished(env)
    print(f"\n[budget mid-run] bulk jobs enriched before the budget held them: {paid} of {BULK}")
    assert max(finished.values()) == 1, "each once"
    assert sim.requests().get("openai", 0) - calls_before == BULK + FRESH, "each paid once"
