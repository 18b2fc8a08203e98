"""Every call on the bill, even a killed worker's: a worker SIGKILLed with its calls under
way, a second worker that finishes the jobs, and the dead worker's calls estimated once from
their write-ahead records, in the ledger, the statistics, the report and the budgets."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from devstack.harness import SimulatorThread, worker_process
from streams.config.settings import load_settings
from streams.config.slices import KafkaCluster
from streams.kafka.admin import read_to_end
from streams.models import ControlCommand, ProviderCall, RawJob
from streams.providers.build import build_providers
from streams.routing.router import request_for
from tests.conftest import run_cli
from tests.eventually import eventually
from tests.kafka_helpers import job_record, produce, send_command

pytestmark = pytest.mark.slow

IN_FLIGHT = 16
LATENCY_MS = 20_000


def _ledger(env: dict[str, str]) -> list[ProviderCall]:
    cluster = KafkaCluster.plaintext(env["KAFKA_BOOTSTRAP_SERVERS"])
    records = asyncio.run(read_to_end(cluster, env["LLM_TOPIC_CALLS"], committed_only=True))
    return [ProviderCall.model_validate_json(r.value) for r in records]


def _outputs(env: dict[str, str]) -> set[str]:
    cluster = KafkaCluster.plaintext(env["KAFKA_BOOTSTRAP_SERVERS"])
    found = set()
    for topic in (env["LLM_TOPIC_ENRICHED"], env["LLM_TOPIC_DEAD_LETTER"]):
        found |= {json.loads(r.value)["job_id"] for r in asyncio.run(read_to_end(cluster, topic))}
    return found


def _estimates_of(jobs: list[str]) -> float:
    """What the dead worker's calls are billed at: each job's prompt and the whole output
    allowance, at the list price (the router's own estimate)."""
    settings = load_settings()
    adapter = build_providers(settings.provider)["openai"]
    routing = settings.routing()
    return sum(
        adapter.cut_off_usage(
            request_for(RawJob.model_validate_json(job_record(j)[1]), routing), adapter.model
        ).cost_usd
        for j in jobs
    )


def test_a_killed_worker_s_calls_are_estimated_once_and_count_everywhere(
    worker_env: dict[str, str],
    tmp_path: Path,
    sim: SimulatorThread,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sim.set_faults("openai", latency_ms=LATENCY_MS)
    env = worker_env | {
        "LLM_PROVIDER_CHAIN": "openai",
        "LLM_WORKER_CONCURRENCY": str(IN_FLIGHT),
        "LLM_BROKER_SESSION_TIMEOUT_S": "6",
        "LLM_CACHE_ENABLED": "false",
        "LLM_JOB_DEADLINE_S": "30",
        "LLM_ATTEMPT_TIMEOUT_S": "25",
        # the dead worker's calls are taken for lost 30 + 25 s after they were sent: after
        # the second worker has done the jobs again (about 35 s)
        "LLM_UNSETTLED_GRACE_S": "25",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    bootstrap, raw = env["KAFKA_BOOTSTRAP_SERVERS"], env["LLM_TOPIC_RAW"]
    jobs = [f"wal-{n}" for n in range(IN_FLIGHT)]
    before = sim.requests().get("openai", 0)
    with worker_process(env, tmp_path / "first.log") as first:
        asyncio.run(produce(bootstrap, raw, [job_record(j) for j in jobs]))
        eventually(
            lambda: sim.requests().get("openai", 0) - before,
            lambda sent: sent == IN_FLIGHT,
            timeout_s=30,
            what=f"{IN_FLIGHT} calls under way",
        )
        time.sleep(0.5)  # their write-ahead records acknowledged, as they are within ms
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    with worker_process(env, tmp_path / "second.log"):
        eventually(lambda: _outputs(env), lambda done: done >= set(jobs), timeout_s=90)
        redone = _ledger(env)
        assert not [c for c in redone if c.outcome == "worker_lost"], "not before their time"
        paid = sum(c.usage.cost_usd for c in redone)
        estimated = _estimates_of(jobs)
        # A budget that the second worker's own calls do not reach, and the dead one's do.
        budget = paid + estimated / 2
        command = ControlCommand(action="set_config", config={"LLM_BUDGETS": {"openai": budget}})
        asyncio.run(send_command(load_settings(), command))
        ledger = eventually(
            lambda: _ledger(env),
            lambda calls: Counter(c.outcome for c in calls)["worker_lost"] >= IN_FLIGHT,
            timeout_s=90,
            what="the dead worker's calls estimated",
        )
        url = f"http://127.0.0.1:{env['LLM_SERVICE_PORT']}"
        paused = eventually(
            lambda: httpx.get(f"{url}/status").json(),
            lambda status: status["intake_paused"],
            timeout_s=30,
            what="intake paused by the estimates",
        )
        statistics = httpx.get(f"{url}/statistics").json()["totals"]["openai"]
        today = datetime.now(UTC).date().isoformat()
        report = run_cli("report", "--from", today, "--to", today, "--format", "json", env=env)
        asked = sim.requests().get("openai", 0) - before
        asyncio.run(produce(bootstrap, raw, [job_record("after-the-budget")]))
        time.sleep(3)
        asked_after = sim.requests().get("openai", 0) - before
    lost = [c for c in ledger if c.outcome == "worker_lost"]
    print(
        f"\n[write-ahead] calls the simulator received {asked}, ledger events {len(ledger)} "
        f"({len(lost)} estimated for the killed worker), in /statistics {statistics['calls']}"
    )
    assert asked == 2 * IN_FLIGHT, "each job called twice: by the killed worker and again"
    assert asked <= len(ledger) <= asked + IN_FLIGHT
    assert len(lost) == IN_FLIGHT, "each of the dead worker's calls estimated once"
    assert {c.job_id for c in lost} == set(jobs)
    assert all(c.usage_estimated and c.call_id for c in lost)
    assert len({c.call_id for c in ledger}) == len(ledger), "no call billed twice"
    assert sum(c.usage.cost_usd for c in lost) == pytest.approx(estimated, rel=1e-6)
    assert statistics["calls"] == len(ledger)
    assert statistics["estimated_calls"] == IN_FLIGHT
    assert report.returncode == 0, report.stderr
    assert _total(json.loads(report.stdout))["calls"] == len(ledger)
    assert paused["providers"]["openai"]["budget"]["over_budget"]
    assert asked_after == asked, "no call once the estimates spent the budget"


def _total(report: dict[str, Any]) -> dict[str, Any]:
    total: dict[str, Any] = report["providers"]["openai"]["total"]
    return total
